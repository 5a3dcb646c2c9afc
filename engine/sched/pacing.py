"""Per-operator submit pacing: one GCRA schedule that keeps every one-second window, AIMD.

Pure logic: every method takes ``now`` (seconds, from whatever clock the caller
uses; the engine passes ``trio.current_time()``). Memory is a few floats,
whatever the rate.

The contract (interface.md, "tps"): no one-second window at the SMSC sees more
than ``tps`` submit_sm. A GCRA schedule with emission interval ``I`` and
tolerance ``tau`` lets n consecutive submits span no less than
``(n - 1) * I - tau``, so a half-open window of length ``W`` holds at most
``N`` of them when ``I = (W + tau) / N``. The pacer takes ``W = 1 s + MARGIN``:
a submit's way to the SMSC may vary by up to MARGIN (scheduling, the network)
and the SMSC's one-second windows still hold at most ``N = floor(tps)``. The
tolerance lets a late wake-up catch up without a burst beyond that bound. The
price is a rate of ``N / (1 + MARGIN + TOLERANCE)``: 95.2% of ``tps``.

Throttling (0x58/0x14) halves the rate at most once per ``cooldown``; each
second without a throttle adds ``recover_fraction`` of the target back (AIMD).
"""

from __future__ import annotations

import math

WINDOW = 1.0
MARGIN = 0.03  # seconds of jitter on the way to the SMSC that the bound survives
TOLERANCE = 0.02  # seconds a late sender may catch up
MAX_TPS = 1_000_000.0  # per operator: engine.toml and SetTps refuse more (memory is O(1))


def check_tps(tps: float) -> float:
    """``tps`` as a float if it is a rate the pacer can keep, else ValueError."""
    if isinstance(tps, bool) or not isinstance(tps, int | float):
        raise ValueError(f"tps must be a number, got {tps!r}")
    if not math.isfinite(tps) or tps <= 0 or tps > MAX_TPS:
        raise ValueError(f"tps must be > 0 and at most {MAX_TPS:,.0f}, got {tps!r}")
    return float(tps)


class Pacer:
    def __init__(
        self,
        tps: float,
        *,
        margin: float = MARGIN,
        tolerance: float = TOLERANCE,
        min_rate: float = 1.0,
        cooldown: float = 1.0,
        recover_fraction: float = 0.05,
    ) -> None:
        self._span = WINDOW + margin + tolerance
        self._tolerance = tolerance
        self._min_rate = min_rate
        self._cooldown = cooldown
        self._recover_fraction = recover_fraction
        self._tat = -math.inf
        self._last_throttle = -math.inf
        self._last_recover = -math.inf
        self.throttles = 0
        self.target = self.rate = 0.0
        self._cap = 1
        self._interval = math.inf
        self.set_tps(tps)

    @property
    def cap(self) -> int:
        """The most submits any one-second window may see."""
        return self._cap

    def set_tps(self, tps: float) -> None:
        """Change the contracted rate (live from the TUI): checked first, then all at once."""
        target = check_tps(tps)
        self.target = self.rate = target
        self._cap = max(1, math.floor(target))
        self._interval = self._interval_for(target)

    def _interval_for(self, rate: float) -> float:
        return self._span / min(rate, max(1, math.floor(self.target)))

    def next_time(self, now: float, n: int = 1) -> float:
        """The earliest time at which ``n`` more submits may go (``<= now`` means now)."""
        self._recover(now)
        return self._tat + (min(n, self.cap) - 1) * self._interval - self._tolerance

    def grant(self, now: float, n: int = 1) -> int:
        """Take as many of ``n`` submits as may go at ``now`` (0: wait for :meth:`next_time`)."""
        self._recover(now)
        tat = max(self._tat, now)
        # (the epsilon: a wake-up at exactly next_time() must find room, whatever the rounding)
        room = math.floor((now + self._tolerance - tat) / self._interval + 1e-9) + 1
        if room <= 0:
            return 0
        granted = min(n, room, self._cap)
        self._tat = tat + granted * self._interval
        return granted

    def take(self, now: float, n: int = 1) -> int:
        """Record ``n`` submits sent at ``now`` (after :meth:`next_time` allowed them)."""
        n = min(n, self.cap)
        self._tat = max(self._tat, now) + n * self._interval
        return n

    def throttled(self, now: float) -> None:
        """The SMSC said slow down: halve the rate, once per cooldown."""
        if now - self._last_throttle < self._cooldown:
            return
        self._last_throttle = now
        self._last_recover = now
        self.throttles += 1
        self._set_rate(max(min(self._min_rate, self.target), self.rate / 2), now)

    def _recover(self, now: float) -> None:
        if self.rate >= self.target or now - self._last_recover < WINDOW:
            return
        steps = math.floor((now - self._last_recover) / WINDOW)
        self._last_recover += steps * WINDOW
        step = max(1.0, self.target * self._recover_fraction)
        self._set_rate(min(self.target, self.rate + steps * step), now)

    def _set_rate(self, rate: float, now: float) -> None:
        self.rate = rate
        self._interval = self._interval_for(rate)
        self._tat = max(self._tat, now)
