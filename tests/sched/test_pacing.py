"""The pacer under trio's MockClock: smooth, strict per sliding second, AIMD."""

import bisect
import math
import random
import sys

import pytest
import trio
import trio.testing

from engine.sched.pacing import MARGIN, MAX_TPS, TOLERANCE, Pacer


async def _paced_sends(pacer: Pacer, until: float, sends: list[float]) -> None:
    while True:
        now = trio.current_time()
        t = pacer.next_time(now)
        if t > now:
            if t >= until:
                return
            await trio.sleep_until(t)
            continue
        pacer.take(now)
        sends.append(now)


def _run(coro_fn, *args):
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(coro_fn, *args, clock=clock)


def _max_in_any_window(times: list[float], width: float = 1.0) -> int:
    """The most sends in any closed window ``[t, t + width - 1e-9]`` (floats: a hair less)."""
    return max(
        (bisect.bisect_right(times, t + width - 1e-9) - i for i, t in enumerate(times)), default=0
    )


def _sustained(tps: float) -> float:
    """The rate the pacer keeps: floor(tps) per one second and its margins."""
    return max(1, math.floor(tps)) / (1 + MARGIN + TOLERANCE)


@pytest.mark.parametrize(("tps", "binds"), [(100, 3), (37, 1), (500, 8), (1, 2), (10_000, 8)])
def test_paced_sends_keep_every_window_with_the_margin_and_the_rate(tps, binds):
    seconds = 20 if tps < 10_000 else 1.5
    sends: list[float] = []

    async def main():
        start = trio.current_time()
        pacer = Pacer(tps)
        async with trio.open_nursery() as nursery:
            for _ in range(binds):  # the binds share the operator's pacer
                nursery.start_soon(_paced_sends, pacer, start + seconds, sends)

    _run(main)
    sends.sort()
    # any window of one second plus the margin: jitter up to MARGIN keeps the SMSC's
    assert _max_in_any_window(sends, 1 + MARGIN) <= int(tps)
    assert len(sends) / seconds == pytest.approx(_sustained(tps), rel=0.02, abs=1)


@pytest.mark.parametrize("tps", [1, 2.5, 7, 200, 9_999])
def test_no_window_is_over_whatever_the_wake_ups(tps):
    """Late and early callers, explicit times: the bound is the schedule's, not the caller's."""
    rng = random.Random(int(tps))
    pacer = Pacer(tps)
    now, sends = 0.0, []
    while len(sends) < 3 * max(1, int(tps)) + 50:
        t = pacer.next_time(now)
        if t <= now:
            pacer.take(now)
            sends.append(now)
            now += rng.choice([0.0, 0.0, 1e-6])
        else:
            now = t + rng.choice([0.0, 0.0, 0.001, 0.05, 0.4])  # on time, or late
    assert _max_in_any_window(sends, 1 + MARGIN) <= max(1, math.floor(tps))


def test_a_late_wakeup_catches_up_within_the_tolerance_without_a_burst():
    pacer = Pacer(100)
    for k in range(100):
        pacer.take(k * 0.0105)
    late = pacer.next_time(1.0) + 0.015  # woke 15 ms late: still within the tolerance
    granted = 0
    while pacer.next_time(late) <= late:
        pacer.take(late)
        granted += 1
    assert 1 <= granted <= 3


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 0, -5, MAX_TPS + 1, 1e8, "10"])
def test_a_bad_tps_is_refused_and_changes_nothing(bad):
    pacer = Pacer(50)
    pacer.take(0.0)
    before = (pacer.target, pacer.rate, pacer.next_time(0.0))
    with pytest.raises(ValueError, match="tps must be"):
        pacer.set_tps(bad)
    assert (pacer.target, pacer.rate, pacer.next_time(0.0)) == before
    with pytest.raises(ValueError, match="tps must be"):
        Pacer(bad)


def test_memory_does_not_grow_with_tps():
    small, large = Pacer(1), Pacer(MAX_TPS)
    assert sys.getsizeof(small.__dict__) == sys.getsizeof(large.__dict__)
    assert all(not isinstance(v, list | dict | bytearray) for v in vars(large).values())


def test_throttle_halves_once_per_cooldown_then_recovers():
    pacer = Pacer(100)
    pacer.throttled(10.0)
    pacer.throttled(10.2)  # the rest of the window's 0x58s: no second halving
    assert pacer.rate == 50
    pacer.throttled(11.5)
    assert pacer.rate == 25
    pacer.next_time(12.5)
    assert pacer.rate == 30  # +5% of the target per quiet second
    pacer.next_time(30.0)
    assert pacer.rate == 100


def test_rate_never_falls_below_the_floor():
    pacer = Pacer(4, min_rate=1)
    for t in range(10):
        pacer.throttled(float(t * 2))
    assert pacer.rate == 1


def test_a_lower_tps_spaces_the_next_submits_further():
    pacer = Pacer(5)
    for _ in range(5):
        pacer.take(0.0)
    pacer.set_tps(3)
    assert pacer.next_time(0.5) >= 1.0


def test_multi_part_reservation_counts_every_part():
    pacer = Pacer(10, tolerance=0, margin=0)
    assert pacer.next_time(0.0, 3) <= 0.0
    assert pacer.take(0.0, 3) == 3
    assert pacer.next_time(0.0) == pytest.approx(0.3)
    assert pacer.take(5.0, 50) == 10  # never more than one second of TPS at once


@pytest.mark.parametrize("tps", [1, 7, 100, 2500, 1_000_000])
def test_grant_agrees_with_next_time_and_never_spins(tps):
    """A sender that sleeps until next_time() always gets a grant when it wakes."""
    pacer = Pacer(tps)
    now, sent = 1000.0, 0
    while sent < min(3 * tps, 30_000):
        granted = pacer.grant(now, 64)
        if granted:
            sent += granted
            continue
        wake = pacer.next_time(now)
        assert wake > now
        now = wake
        assert pacer.grant(now, 1) == 1
        sent += 1
    assert sent >= min(3 * tps, 30_000)
