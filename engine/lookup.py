"""One message as the upstream sees it, and exports of a batch's messages for a CRM.

``message_view`` is what `volley message --json` prints and what
``GET /v1/batches/B/messages/ID`` answers; ``export_rows`` streams a batch's
messages (filtered by state and by the time of their last change) as flat rows
for CSV or JSON Lines, one message at a time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from engine.config import seconds
from engine.store import Message, Store
from engine.store.records import FINAL, Click, Engagement, Transition

# a final state that came from a delivery receipt, and the receipt's stat for it
RECEIPT_STAT = {
    "delivered": "DELIVRD",
    "undelivered": "UNDELIV",
    "expired": "EXPIRED",
    "rejected": "REJECTD",
    "deleted": "DELETED",
}
EXPORT_COLUMNS = (
    "batch",
    "id",
    "number",
    "state",
    "parts",
    "smsc_ids",
    "attempts",
    "error",
    "submit_status",
    "receipt_err",
    "network_error",
    "created",
    "updated",
)


def iso(t: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with milliseconds; None stays None."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def message_view(
    msg: Message,
    engagement: tuple[Engagement, list[Click]] | None = None,
    transitions: list[Transition] | None = None,
) -> dict[str, Any]:
    """Everything the store knows of one message, in the upstream's words (with
    ``engagement``, from :meth:`Store.engagement`: its links, clicks, replies; with
    ``transitions``, from :meth:`Store.message_history`: its history)."""
    receipt = None
    if msg.state in RECEIPT_STAT or msg.err is not None:
        receipt = {
            "stat": RECEIPT_STAT.get(msg.state, "UNKNOWN"),
            "err": msg.err,
            "network_error": msg.network_error,
        }
    return {
        "batch": msg.batch,
        "id": msg.ext_id,
        "key": msg.id,
        "to": msg.to,
        "from": msg.sender,
        "kind": msg.kind,
        "route": msg.route,
        "state": msg.state,
        "parts": msg.parts,
        "part_states": list(msg.part_states),
        "smsc_ids": list(msg.smsc_ids),
        "attempts": msg.attempts,
        "error": error_of(msg),
        "reason": msg.reason,
        "submit_status": f"0x{msg.status:02X}" if msg.status else None,
        "receipt": receipt,
        "text": msg.text,
        "zone": msg.zone,
        "created": iso(msg.created),
        "updated": iso(msg.updated),
        "due": iso(msg.due) if msg.state == "scheduled" else None,
        "not_before": iso(msg.not_before),
        "expires": iso(msg.expires),
        "claimed": iso(msg.claimed or None),
        "sent": iso(msg.sent or None),
        "links": [{"code": link.code, "url": link.url} for link in msg.links],
        **({} if engagement is None else _engagement(*engagement)),
        **({} if transitions is None else {"history": history(msg, transitions)}),
    }


def history(msg: Message, transitions: list[Transition]) -> list[dict[str, Any]]:
    """Its states with times and reasons, oldest first: enqueued, the rare transitions the
    store noted (requeued, scheduled, re-routed, intermediate receipts, unknown), claimed,
    sent (with its SMSC ids), final. A message given back (requeued, or scheduled again:
    a throttle's retry, a window that closed) is shown at the time of the claim it left."""
    steps: list[tuple[float, dict[str, Any]]] = [(msg.created, {"event": "enqueued"})]
    if msg.not_before and msg.not_before > msg.created:
        steps[0][1]["not_before"] = iso(msg.not_before)
    for t in transitions:
        step: dict[str, Any] = {"event": _label(t), "state": t.new, "reason": t.reason}
        if t.new == "scheduled":
            step["due"] = iso(t.due)
        if t.attempts:
            step["attempts"] = t.attempts
        steps.append((t.at, step))
    if msg.claimed:
        steps.append((msg.claimed, {"event": "claimed", "route": msg.route}))
    if msg.sent:
        sent = {"event": "sent", "smsc_ids": list(msg.smsc_ids), "operator": msg.operator}
        steps.append((msg.sent, sent))
    if msg.state in FINAL:
        final: dict[str, Any] = {"event": msg.state}
        if msg.state in RECEIPT_STAT and msg.sent:
            final["receipt"] = RECEIPT_STAT[msg.state]
        why = error_of(msg) or ("" if msg.state in RECEIPT_STAT else msg.reason)
        if why:
            final["reason"] = why
        steps.append((msg.updated, final))
    steps.sort(key=lambda s: s[0])
    return [{"at": iso(at), **step} for at, step in steps]


def _label(t: Transition) -> str:
    if t.new == "unknown":
        return "unknown"
    if t.old == t.new == "sent":
        return "receipt"
    if t.reason == "re-routed":
        return "rerouted"
    if t.new == "scheduled":
        return "scheduled"
    return "requeued"


def _engagement(eng: Engagement, clicks: list[Click]) -> dict[str, Any]:
    return {
        "clicks": [{"at": iso(c.at), "agent": c.agent, "code": c.code} for c in clicks],
        "click_count": eng.clicks,
        "replies": eng.replies,
        "last_reply": iso(eng.last_reply or None),
        "opted_out": iso(eng.optout or None),
    }


def error_of(msg: Message) -> str:
    """Why a message did not arrive, in one phrase; "" while it may still arrive or it did."""
    if msg.state in ("failed", "skipped"):
        return msg.reason
    if msg.state == "unknown":
        return msg.reason or "receipt UNKNOWN"
    if msg.state in RECEIPT_STAT and msg.state != "delivered":
        err = "" if msg.err is None else f" err {msg.err:03d}"
        net = "" if msg.network_error is None else f" network error {msg.network_error}"
        return f"receipt {RECEIPT_STAT[msg.state]}{err}{net}"
    return ""


def export_row(msg: Message) -> dict[str, Any]:
    return {
        "batch": msg.batch,
        "id": msg.ext_id,
        "number": msg.to,
        "state": msg.state,
        "parts": msg.parts,
        "smsc_ids": " ".join(msg.smsc_ids),
        "attempts": msg.attempts,
        "error": error_of(msg),
        "submit_status": f"0x{msg.status:02X}" if msg.status else "",
        "receipt_err": "" if msg.err is None else msg.err,
        "network_error": "" if msg.network_error is None else msg.network_error,
        "created": iso(msg.created),
        "updated": iso(msg.updated),
    }


def export_rows(
    store: Store, batch: str, states: Iterable[str] = (), since: float | None = None
) -> Iterator[dict[str, Any]]:
    """The batch's messages in id order, one at a time: those in ``states`` (all if
    empty) whose last change is at or after ``since``."""
    wanted = frozenset(states)
    for msg in store.messages(batch):
        if wanted and msg.state not in wanted:
            continue
        if since is not None and msg.updated < since:
            continue
        yield export_row(msg)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_since(text: str, now: float | None = None) -> float:
    """``2026-11-23T10:00:00+03:00``, ``2026-11-23`` (UTC midnight) or ``2h`` (ago)."""
    text = text.strip()
    now = time.time() if now is None else now
    if _DATE.match(text):
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    try:
        return now - seconds(text)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r}: expected a time with offset (2026-11-23T10:00:00+03:00), "
            "a date (2026-11-23, UTC) or a duration ago (2h, 7d)"
        ) from None
    if t.tzinfo is None:
        raise ValueError(f"{text!r}: needs a UTC offset, e.g. +03:00")
    return t.timestamp()
