"""Dead-number pruning: classify receipt outcomes, decide when a number is dead.

Pure policy over recorded outcomes (``stat``, ``err``, ``at``), defaults from
../shared/docs/smpp.md §6: hard failures are the MAP errors that mean the
subscriber does not exist (1, 5, 9, 11, 44) and rejections; soft ones are
absences, busy, memory full, system failures, EXPIRED and UNKNOWN. A number is
pruned after ``after_failures`` hard failures, or ``soft_failures`` soft ones
in a row spanning at least ``soft_span``. A delivery resets its history (the
store does that), and a prune expires after ``prune_ttl``: numbers are recycled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from engine.config import Config, seconds

HARD, SOFT, OK = "hard", "soft", "ok"


class Outcome(Protocol):
    stat: str
    err: int | None
    at: float


class PrunePolicy:
    def __init__(self, cfg: Config) -> None:
        p = cfg.prune
        self.after_failures = p.after_failures
        self.soft_failures = p.soft_failures
        self.soft_span = seconds(p.soft_span)
        self.ttl = seconds(p.prune_ttl)
        self._default = (frozenset(p.hard_errors), frozenset(p.soft_errors))
        self._per_route = {
            op.name: (
                frozenset(p.hard_errors if op.hard_errors is None else op.hard_errors),
                frozenset(p.soft_errors if op.soft_errors is None else op.soft_errors),
            )
            for op in cfg.operators
        }

    def classify(self, stat: str, err: int | None, route: str = "") -> str:
        hard, soft = self._per_route.get(route, self._default)
        if stat == "DELIVRD":
            return OK
        if stat == "UNDELIV":
            return HARD if err in hard else SOFT
        if stat == "REJECTD":
            return SOFT if err in soft else HARD
        if stat in ("EXPIRED", "UNKNOWN", "DELETED"):
            return SOFT
        return OK

    def dead(self, outcomes: Sequence[Outcome], route: str = "") -> bool:
        """Whether this history (since the last delivery) proves the number dead."""
        kinds = [self.classify(o.stat, o.err, route) for o in outcomes]
        if kinds.count(HARD) >= self.after_failures:
            return True
        run = 0
        for kind in reversed(kinds):
            if kind != SOFT:
                break
            run += 1
        if run >= self.soft_failures:
            streak = outcomes[-run:]
            return streak[-1].at - streak[0].at >= self.soft_span
        return False
