"""Segments that remember: what the campaign's earlier runs did with each number.

For every segment ``S`` of the rules, a customer's values get ``sent_S`` (an
earlier run's message of S to this number was queued or went out: not
skipped, cancelled or failed), ``delivered_S``, ``clicked_S``, ``replied_S``
(true/false) and ``days_since_sent_S`` (whole days from the day that message
was enqueued, or its not_before when later, to the --as-of day, in
[defaults] timezone; missing when never sent). They are read from the store
by the customer's number (its per-number contacts of the campaign's steps), a
chunk of customers per read transaction; a campaign with no batch in the
store yet reads nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from engine.segment.customers import Customer
    from engine.segment.rules import Segment
    from engine.store import Store

MEMORY = ("sent", "delivered", "clicked", "replied", "days_since_sent")  # per segment


def memory_names(segments: Sequence[Segment]) -> list[str]:
    """The memory values conditions may test: ``sent_S`` ... for every segment S."""
    return [f"{value}_{seg.name}" for seg in segments for value in MEMORY]


def remembers(segments: Sequence[Segment]) -> bool:
    """Whether a run needs the store's memory: a segment that may not repeat itself,
    or a condition that tests a memory value."""
    if any(seg.action == "send" and not seg.repeat for seg in segments):
        return True
    names = set(memory_names(segments))
    return any(names & _keys(seg.when) for seg in segments)


def _keys(spec: Any) -> set[str]:
    """Every variable a condition table names, at any depth."""
    if isinstance(spec, list):
        return set().union(*(_keys(item) for item in spec))
    if not isinstance(spec, dict):
        return set()
    out: set[str] = set()
    for key, value in spec.items():
        out |= _keys(value) if key in ("all", "any", "not") else {key}
    return out


class Recall:
    """Fills customers' memory values from ``store`` (None: nothing was ever sent)."""

    def __init__(
        self,
        store: Store | None,
        campaign: str,
        segments: Sequence[str],
        as_of: date,
        zone: ZoneInfo,
        needed: bool = True,
    ) -> None:
        self.store, self.campaign, self.zone = store, campaign, zone
        self.segments = frozenset(segments)
        self.as_of = as_of.toordinal()
        self.defaults: dict[str, Any] = {
            f"{value}_{seg}": None if value == "days_since_sent" else False
            for seg in segments
            for value in MEMORY
        }
        self.active = needed and store is not None and bool(store.batch_infos(campaign))

    def fill(self, customers: Sequence[Customer]) -> None:
        """Set every customer's memory values (their phones are E.164)."""
        for customer in customers:
            customer.values.update(self.defaults)
        if not self.active or not customers or self.store is None:
            return
        memory = self.store.memory([c.phone for c in customers], self.campaign)
        for customer in customers:
            for segment, m in memory.get(customer.phone, {}).items():
                if segment not in self.segments:
                    continue  # a segment the rules no longer have
                values = customer.values
                values[f"sent_{segment}"] = m.sent
                values[f"delivered_{segment}"] = m.delivered
                values[f"clicked_{segment}"] = m.clicked
                values[f"replied_{segment}"] = m.replied
                if m.sent_at is not None:
                    day = datetime.fromtimestamp(m.sent_at, self.zone).date().toordinal()
                    values[f"days_since_sent_{segment}"] = self.as_of - day
