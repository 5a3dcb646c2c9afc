"""Per-operator submit pacing: GCRA for smoothness, a one-second log for the hard cap, AIMD.

Pure logic: every method takes ``now`` (seconds, from whatever clock the caller
uses; the engine passes ``trio.current_time()``). Two rules hold together:

- smooth: a GCRA schedule spaces submits ``1 / rate`` apart, with a small
  tolerance so that a late wake-up can catch up and the average stays on target;
- strict: no half-open one-second window ``(t - 1, t]`` sees more than ``tps``
  submits, checked against the log of the last ``tps`` send times. Sliding
  windows are what operators measure (interface.md: "tps").

Throttling (0x58/0x14) halves the rate at most once per ``cooldown``; each
second without a throttle adds ``recover_step`` of the target back (AIMD).
"""

from __future__ import annotations

import math

WINDOW = 1.0


class Pacer:
    def __init__(
        self,
        tps: float,
        *,
        tolerance: float = 0.05,
        min_rate: float = 1.0,
        cooldown: float = 1.0,
        recover_fraction: float = 0.05,
    ) -> None:
        self._tolerance_s = tolerance
        self._min_rate = min_rate
        self._cooldown = cooldown
        self._recover_fraction = recover_fraction
        self._tat = -math.inf
        self._last_throttle = -math.inf
        self._last_recover = -math.inf
        self.throttles = 0
        self.set_tps(tps)

    def set_tps(self, tps: float) -> None:
        """Change the contracted rate (config reload, or live from the TUI)."""
        if tps <= 0:
            raise ValueError(f"tps must be > 0, got {tps}")
        recent = self._recent() if hasattr(self, "_log") else []
        self.target = float(tps)
        self.rate = self.target
        self._cap = max(1, math.floor(self.target))
        recent = recent[-self._cap :]
        self._log = [-math.inf] * (self._cap - len(recent)) + recent
        self._head = 0
        self._interval = 1.0 / self.rate
        self._tolerance = min(self._tolerance_s, WINDOW)

    def _recent(self) -> list[float]:
        """The logged send times, oldest first."""
        return self._log[self._head :] + self._log[: self._head]

    def next_time(self, now: float, n: int = 1) -> float:
        """The earliest time at which ``n`` more submits may go (``<= now`` means now)."""
        self._recover(now)
        n = min(n, self._cap)
        gcra = self._tat + (n - 1) * self._interval - self._tolerance
        keep = self._cap - n
        oldest_to_expire = self._log[(self._head + self._cap - keep - 1) % self._cap]
        return max(gcra, oldest_to_expire + WINDOW)

    def take(self, now: float, n: int = 1) -> int:
        """Record ``n`` submits sent at ``now``; returns how many were granted (``<= cap``)."""
        n = min(n, self._cap)
        tat = max(self._tat, now)
        self._tat = tat + n * self._interval
        log, cap, head = self._log, self._cap, self._head
        for _ in range(n):
            log[head] = now
            head = (head + 1) % cap
        self._head = head
        return n

    def throttled(self, now: float) -> None:
        """The SMSC said slow down: halve the rate, once per cooldown."""
        if now - self._last_throttle < self._cooldown:
            return
        self._last_throttle = now
        self._last_recover = now
        self.throttles += 1
        self._set_rate(max(self._min_rate, self.rate / 2), now)

    def _recover(self, now: float) -> None:
        if self.rate >= self.target or now - self._last_recover < WINDOW:
            return
        steps = math.floor((now - self._last_recover) / WINDOW)
        self._last_recover += steps * WINDOW
        step = max(1.0, self.target * self._recover_fraction)
        self._set_rate(min(self.target, self.rate + steps * step), now)

    def _set_rate(self, rate: float, now: float) -> None:
        self.rate = rate
        self._interval = 1.0 / rate
        self._tat = max(self._tat, now)
