"""When a message may go: its kind's send window, narrowed for its destination, in its zone.

Built once from engine.toml; ``decide`` is pure over the epoch time it is
given (the engine passes its trio-driven wall clock, enqueue the real one).
Kinds without a ``[windows.KIND]`` table may send at any hour.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from engine.config import Config, WindowConfig, WindowOverride, seconds
from engine.sched.windows import Window, closes_at_all, next_open_all, validity_period
from engine.sched.zones import ZoneResolver, load_table
from engine.zones.table import configured_path
from engine.zones.table import load as load_ranges


class Decision(msgspec.Struct, frozen=True):
    open: bool
    due: float | None = None  # the next opening when closed (None: no opening within reach)
    closes_at: float | None = None  # when open inside a window: when it closes
    zone: str = ""
    zone_source: str = ""  # "table", "range", "number", "default" or "fixed"


def window_of(w: WindowConfig | WindowOverride) -> Window:
    """The compiled window of one config table."""
    return Window.build(w.days, w.hours, w.closed_dates, w.open_dates, w.hours_by_day)


class Scheduler:
    def __init__(self, cfg: Config) -> None:
        table = (
            load_table(cfg.resolve(cfg.defaults.zone_table)) if cfg.defaults.zone_table else None
        )
        self.zones = ZoneResolver(cfg.defaults.timezone, table, load_ranges(configured_path(cfg)))
        self._kinds = {
            kind: (
                window_of(w),
                [
                    (tuple(p.removeprefix("+") for p in o.prefixes), window_of(o))
                    for o in w.overrides
                ],
                None if w.zone == "recipient" else ZoneInfo(w.zone),
                timedelta(seconds=seconds(w.validity_margin)),
            )
            for kind, w in cfg.windows.items()
        }

    def windowed(self, kind: str) -> bool:
        return kind in self._kinds

    def decide(self, kind: str, number: str, now: float, also: str = "") -> Decision:
        """Open now, or when next; ``also`` names a window that must hold too (an operator's)."""
        spec = self._kinds.get(kind) or self._kinds.get(also)
        if spec is None:
            return Decision(True)
        _, _, fixed, _ = spec
        digits = number.removeprefix("+")
        windows = [
            w for name in {kind, also} & self._kinds.keys() for w in self._windows(name, digits)
        ]
        if fixed is not None:
            zone, source = fixed, "fixed"
        else:
            zone, source = self.zones.resolve(number)
        at = datetime.fromtimestamp(now, UTC)
        nxt = next_open_all(windows, at, zone)
        if nxt is None:
            return Decision(False, None, None, zone.key, source)
        if nxt > at:
            return Decision(False, nxt.timestamp(), None, zone.key, source)
        closes = closes_at_all(windows, at, zone)
        return Decision(True, None, closes.timestamp() if closes else None, zone.key, source)

    def _windows(self, kind: str, digits: str) -> list[Window]:
        """A kind's window with the overrides that apply to these digits."""
        base, overrides, _, _ = self._kinds[kind]
        return [base] + [w for prefixes, w in overrides if digits.startswith(prefixes)]

    def validity(self, kind: str, decision: Decision, now: float, also: str = "") -> str:
        """validity_period so the SMSC's own retries end before the window closes."""
        spec = self._kinds.get(kind) or self._kinds.get(also)
        if spec is None or decision.closes_at is None:
            return ""
        at = datetime.fromtimestamp(now, UTC)
        return validity_period(datetime.fromtimestamp(decision.closes_at, UTC), at, spec[3])


def windows_now(cfg: Config, now: float) -> list[dict[str, Any]]:
    """Each window's state now, with the next opening, in the default (or fixed) zone."""
    out = []
    at = datetime.fromtimestamp(now, UTC)
    for kind, w in cfg.windows.items():
        zone = ZoneInfo(cfg.defaults.timezone if w.zone == "recipient" else w.zone)
        window = window_of(w)
        nxt = window.next_open(at, zone)
        out.append(
            {
                "kind": kind,
                "zone": zone.key,
                "open": window.is_open(at, zone),
                "next_open": nxt.astimezone(zone).isoformat(timespec="minutes") if nxt else None,
                "overrides": len(w.overrides),
            }
        )
    return out
