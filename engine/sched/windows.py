"""Send windows in the recipient's local time, DST-correct.

A :class:`Window` is allowed weekdays, daily ranges ``HH:MM-HH:MM`` (start
inclusive, end exclusive, ``24:00`` allowed, an end before the start wraps past
midnight and belongs to the day it starts on), closed dates (holidays) and
open dates (open even on a weekday not listed). Everything is computed on
instants: a range's start and end are local wall times made aware in the
recipient's zone. A start inside a spring-forward gap opens at the first valid
instant after it; in a fall-back overlap both start and end take the first
occurrence (the stricter reading for an end). :class:`Windows` combines a
kind's window with the narrower ones that apply to a destination: a time is
open only if every applicable window is open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON_DAYS = 800


def parse_range(text: str) -> tuple[int, int]:
    """'10:00-18:00' -> (600, 1080) minutes; an end before the start wraps (+1440)."""
    try:
        a, b = text.split("-")
        start, end = _minutes(a), _minutes(b)
    except ValueError:
        raise ValueError(f"{text!r}: expected HH:MM-HH:MM, e.g. 10:00-18:00") from None
    if start >= 1440:
        raise ValueError(f"{text!r}: a range cannot start at 24:00")
    if end == start:
        raise ValueError(f"{text!r}: an empty range")
    return start, end if end > start else end + 1440


def _minutes(hhmm: str) -> int:
    h, m = hhmm.strip().split(":")
    value = int(h) * 60 + int(m)
    if not (0 <= int(m) < 60 and 0 <= value <= 1440):
        raise ValueError(hhmm)
    return value


def _instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time (minutes may pass 1440 into the next day)."""
    day = day + timedelta(days=minutes // 1440)
    wall = datetime.combine(day, time(minutes % 1440 // 60, minutes % 60), tzinfo=zone)
    utc = wall.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
        # in a spring-forward gap: the first instant whose wall time is not before it
        probe = wall.replace(fold=1).astimezone(UTC)
        while probe.astimezone(zone).replace(tzinfo=None) < wall.replace(tzinfo=None):
            probe += timedelta(minutes=1)
        return probe
    return utc


def _ranges(hours: str | Sequence[str]) -> tuple[tuple[int, int], ...]:
    return tuple(sorted(parse_range(r) for r in ([hours] if isinstance(hours, str) else hours)))


@dataclass(frozen=True)
class Window:
    days: frozenset[int]
    ranges: tuple[tuple[int, int], ...]
    closed: frozenset[date] = frozenset()
    opened: frozenset[date] = frozenset()
    by_day: tuple[tuple[int, tuple[tuple[int, int], ...]], ...] = ()

    @classmethod
    def build(
        cls,
        days: Sequence[str] = DAYS,
        hours: str | Sequence[str] = "00:00-24:00",
        closed_dates: Sequence[str] = (),
        open_dates: Sequence[str] = (),
        hours_by_day: Mapping[str, str | Sequence[str]] | None = None,
    ) -> Window:
        """``hours_by_day`` gives some weekdays their own hours (those days are allowed)."""
        special = {DAYS.index(d): _ranges(h) for d, h in (hours_by_day or {}).items()}
        return cls(
            days=frozenset(DAYS.index(d) for d in days) | frozenset(special),
            ranges=_ranges(hours),
            closed=frozenset(date.fromisoformat(d) for d in closed_dates),
            opened=frozenset(date.fromisoformat(d) for d in open_dates),
            by_day=tuple(sorted(special.items())),
        )

    def _day_allowed(self, day: date) -> bool:
        if day in self.opened:
            return True
        return day.weekday() in self.days and day not in self.closed

    def _ranges_on(self, day: date) -> tuple[tuple[int, int], ...]:
        for weekday, ranges in self.by_day:
            if weekday == day.weekday():
                return ranges
        return self.ranges

    def _spans(self, first: date, zone: ZoneInfo, days: int):
        """Open spans (start, end) as UTC instants, for days starting at ``first``."""
        for i in range(days):
            day = first + timedelta(days=i)
            if self._day_allowed(day):
                for start, end in self._ranges_on(day):
                    yield _instant(day, start, zone), _instant(day, end, zone)

    def current(self, at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
        """The open span containing ``at``, if any."""
        local = at.astimezone(zone).date()
        for start, end in self._spans(local - timedelta(days=1), zone, 2):
            if start <= at < end:
                return start, end
        return None

    def is_open(self, at: datetime, zone: ZoneInfo) -> bool:
        return self.current(at, zone) is not None

    def next_open(self, at: datetime, zone: ZoneInfo) -> datetime | None:
        """``at`` if open, else the next opening (None if there is none within two years)."""
        local = at.astimezone(zone).date()
        for start, end in self._spans(local - timedelta(days=1), zone, HORIZON_DAYS):
            if end > at:
                return max(start, at)
        return None

    def closes_at(self, at: datetime, zone: ZoneInfo) -> datetime | None:
        span = self.current(at, zone)
        return span[1] if span else None


def next_open_all(windows: Sequence[Window], at: datetime, zone: ZoneInfo) -> datetime | None:
    """The first instant >= ``at`` at which every window is open (their intersection)."""
    t: datetime | None = at
    for _ in range(10_000):
        if t is None:
            return None
        moved = False
        for w in windows:
            nxt = w.next_open(t, zone)
            if nxt is None:
                return None
            if nxt > t:
                t, moved = nxt, True
        if not moved:
            return t
    return None


def closes_at_all(windows: Sequence[Window], at: datetime, zone: ZoneInfo) -> datetime | None:
    ends = [w.closes_at(at, zone) for w in windows]
    return None if any(e is None for e in ends) else min(ends)


def validity_period(closes_at: datetime, now: datetime, margin: timedelta) -> str:
    """SMPP relative validity ("YYMMDDhhmmss000R") ending ``margin`` before the window closes."""
    left = max(timedelta(minutes=1), closes_at - now - margin)
    secs = int(left.total_seconds())
    days, rest = divmod(secs, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    years, days = divmod(days, 365)
    months, days = divmod(days, 30)
    return f"{years:02d}{months:02d}{days:02d}{hours:02d}{minutes:02d}{seconds:02d}000R"
