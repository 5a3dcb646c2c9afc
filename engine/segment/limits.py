"""What a segment's messages may do, checked before the pass: caps and deadlines.

A segment cap counts the sends the store records per number, which it does
only for kinds that engine.toml's [caps] covers, and only for its longest
period: a cap that would silently see no sends (or too few) is refused.
``not_before``/``expires`` are resolved to epoch times; a deadline already past,
or crossed, is refused. Errors name the segment.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from engine.sched.caps import Caps
from engine.segment.rules import CompiledSegment, RulesError, moment


def check_cap(seg: CompiledSegment, caps: Caps) -> None:
    assert seg.cap is not None
    if not caps.capped(seg.kind):
        raise RulesError(
            f"segment {seg.name}: cap: sends are counted per number only for kinds that "
            f"engine.toml's [caps] covers, and it has no [caps.{seg.kind}]: this cap would "
            f'never see a send. Add [caps.{seg.kind}] (e.g. max = 4, period = "30d"), or '
            "remove the segment's cap"
        )
    if seg.cap[1] > caps.longest:
        raise RulesError(
            f"segment {seg.name}: cap: its period ({seg.cap[1] / 86400:g} days) is longer "
            f"than the longest [caps] period ({caps.longest / 86400:g} days), past which "
            "sends are not kept: give a [caps] rule that long a period, or shorten the cap"
        )


def deadlines(
    seg: CompiledSegment, reference: datetime, now: float, zone: ZoneInfo
) -> tuple[float | None, float | None]:
    """The segment's (not_before, expires) as epoch times; relative ones from ``reference``."""
    times = []
    for key in ("not_before", "expires"):
        at = moment(getattr(seg, key))
        if isinstance(at, timedelta):
            at = reference + at
        times.append(at.timestamp() if at is not None else None)
    not_before, expires = times
    if expires is not None and expires <= now:
        raise RulesError(
            f"segment {seg.name}: expires {seg.expires!r} "
            f"({show(expires, zone)}) is already past: nothing would be sent"
        )
    if not_before is not None and expires is not None and expires <= not_before:
        raise RulesError(
            f"segment {seg.name}: expires ({show(expires, zone)}) is not after "
            f"not_before ({show(not_before, zone)})"
        )
    return not_before, expires


def show(t: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(t, zone).isoformat(sep=" ", timespec="minutes")
