"""The pacer under trio's MockClock: smooth, strict per sliding second, AIMD."""

import bisect

import pytest
import trio
import trio.testing

from engine.sched.pacing import Pacer


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


def _max_in_any_second(times: list[float]) -> int:
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


def _run(coro_fn, *args):
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(coro_fn, *args, clock=clock)


@pytest.mark.parametrize("tps", [100, 37, 500])
def test_sixty_seconds_are_smooth_and_within_one_percent(tps):
    sends: list[float] = []

    async def main():
        start = trio.current_time()
        pacer = Pacer(tps)
        async with trio.open_nursery() as nursery:
            for _ in range(3):  # three binds share the operator's pacer
                nursery.start_soon(_paced_sends, pacer, start + 60, sends)

    _run(main)
    sends.sort()
    assert _max_in_any_second(sends) <= int(tps)
    assert abs(len(sends) / 60 - tps) / tps < 0.01


def test_late_wakeups_never_break_the_one_second_cap():
    pacer = Pacer(10)
    now, sends = 0.0, []
    for i in range(2000):
        t = max(now, pacer.next_time(now))
        now = t + (0.3 if i % 7 == 0 else 0.0)  # a late wake-up, then catch-up
        if pacer.next_time(now) <= now:
            pacer.take(now)
            sends.append(now)
    assert _max_in_any_second(sends) <= 10


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


def test_live_tps_change_keeps_the_recent_log():
    pacer = Pacer(5)
    for _ in range(5):
        pacer.take(0.0)
    pacer.set_tps(3)
    assert pacer.next_time(0.5) >= 1.0


def test_multi_part_reservation_counts_every_part():
    pacer = Pacer(10, tolerance=0)
    assert pacer.next_time(0.0, 3) <= 0.0
    assert pacer.take(0.0, 3) == 3
    assert pacer.next_time(0.0) == pytest.approx(0.3)
    assert pacer.take(5.0, 50) == 10  # never more than one second of TPS at once
