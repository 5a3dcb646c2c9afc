"""Frequency caps: at most N messages per recipient per rolling period, per kind.

``[caps.KIND]`` is one rule (``max``, ``period``) or a list of them (2 per day
AND 4 per 30 days). Counted from the send times the store records for the
number (at claim time: an attempt counts, which errs on the side of fewer
messages).
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.config import Config, seconds


class Caps:
    def __init__(self, cfg: Config) -> None:
        self._rules: dict[str, list[tuple[int, float]]] = {}
        for kind, rules in cfg.caps.items():
            items = rules if isinstance(rules, list) else [rules]
            self._rules[kind] = [(r.max, seconds(r.period)) for r in items]
        self.longest = max((p for rules in self._rules.values() for _, p in rules), default=0.0)

    def capped(self, kind: str) -> bool:
        return kind in self._rules

    def next_allowed(self, kind: str, sent: Sequence[float], now: float) -> float:
        """``now`` if one more may go now, else the earliest time every rule allows one."""
        t = now
        for limit, period in self._rules.get(kind, ()):
            recent = sorted(s for s in sent if s > now - period)
            if len(recent) >= limit:
                # the oldest of the last ``limit`` sends must leave the period
                t = max(t, recent[-limit] + period)
        return t
