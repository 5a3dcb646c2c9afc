"""Send windows in local time: weekdays, wraps, holidays, DST, intersections."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.sched.windows import (
    Window,
    closes_at_all,
    next_open_all,
    parse_range,
    validity_period,
)

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
LA = ZoneInfo("America/Los_Angeles")
NY = ZoneInfo("America/New_York")
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def local(zone, *args):
    return datetime(*args, tzinfo=zone)


def test_parse_ranges():
    assert parse_range("10:00-18:00") == (600, 1080)
    assert parse_range("22:00-02:00") == (1320, 1560)
    assert parse_range("00:00-24:00") == (0, 1440)
    for bad in ("10-18", "25:00-26:00", "10:00-10:00", "24:00-01:00", "10:61-11:00"):
        with pytest.raises(ValueError, match=r"HH:MM|range"):
            parse_range(bad)


def test_enqueued_at_1755_moscow_sends_until_18_then_next_weekday():
    w = Window.build(WEEKDAYS, "10:00-18:00")
    friday = local(MSK, 2026, 11, 20, 17, 55)
    assert w.is_open(friday, MSK)
    assert w.closes_at(friday, MSK) == local(MSK, 2026, 11, 20, 18, 0)
    assert not w.is_open(local(MSK, 2026, 11, 20, 18, 0), MSK)  # end exclusive
    assert w.next_open(local(MSK, 2026, 11, 20, 18, 0), MSK) == local(MSK, 2026, 11, 23, 10, 0)


def test_several_ranges_and_a_wrap_past_midnight():
    w = Window.build(["fri"], ["10:00-13:00", "14:00-20:00", "22:00-02:00"])
    fri = (2026, 11, 20)
    assert not w.is_open(local(BERLIN, *fri, 13, 30), BERLIN)
    assert w.next_open(local(BERLIN, *fri, 13, 30), BERLIN) == local(BERLIN, *fri, 14, 0)
    assert w.is_open(local(BERLIN, 2026, 11, 21, 1, 59), BERLIN)  # Saturday, from Friday's range
    assert not w.is_open(local(BERLIN, 2026, 11, 21, 2, 0), BERLIN)
    assert not w.is_open(local(BERLIN, 2026, 11, 21, 23, 0), BERLIN)


def test_holidays_and_open_dates():
    w = Window.build(
        WEEKDAYS, "09:00-21:00", closed_dates=["2026-12-31"], open_dates=["2027-01-02"]
    )
    assert not w.is_open(local(MSK, 2026, 12, 31, 12, 0), MSK)
    assert w.next_open(local(MSK, 2026, 12, 31, 12, 0), MSK) == local(MSK, 2027, 1, 1, 9, 0)
    assert w.is_open(local(MSK, 2027, 1, 2, 12, 0), MSK)  # a Saturday opened


def test_dst_spring_forward_start_in_the_gap_opens_at_the_first_valid_instant():
    w = Window.build(hours="02:30-04:00")
    day_before = local(BERLIN, 2027, 3, 27, 12, 0)
    opening = w.next_open(day_before, BERLIN)
    assert opening.astimezone(BERLIN).replace(tzinfo=None) == datetime(2027, 3, 28, 3, 0)
    assert opening == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)


def test_dst_fall_back_ends_at_the_first_occurrence():
    w = Window.build(hours="00:00-01:30")
    start = local(NY, 2026, 11, 1, 0, 0)
    assert w.closes_at(start, NY) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # EDT 01:30
    # the second 01:00-01:30 (EST) is outside
    assert not w.is_open(datetime(2026, 11, 1, 6, 15, tzinfo=UTC), NY)


def test_la_window_is_in_la_time():
    w = Window.build(hours="08:00-21:00")
    assert not w.is_open(datetime(2026, 11, 22, 15, 0, tzinfo=UTC), LA)  # 07:00 in LA
    assert w.is_open(datetime(2026, 11, 22, 17, 0, tzinfo=UTC), LA)


def test_strictest_window_wins_texas_sunday():
    federal = Window.build(hours="08:00-21:00")
    texas = Window(days=frozenset(range(6)), ranges=(parse_range("09:00-21:00"),))
    texas_sunday = Window.build(["sun"], "12:00-21:00")
    # Texas: Mon-Sat 9-21 and Sunday 12-21, expressed as one window per rule set
    texas_rule = Window(days=frozenset(range(7)), ranges=((540, 1260),))
    sunday_11 = local(ZoneInfo("America/Chicago"), 2026, 11, 22, 11, 0)
    tx = ZoneInfo("America/Chicago")
    assert texas_sunday.next_open(sunday_11, tx) == local(tx, 2026, 11, 22, 12, 0)
    assert next_open_all([federal, texas_rule, texas_sunday], sunday_11, tx) == local(
        tx, 2026, 11, 22, 12, 0
    )
    assert closes_at_all([federal, texas], local(tx, 2026, 11, 23, 10, 0), tx) == local(
        tx, 2026, 11, 23, 21, 0
    )


def test_disjoint_windows_never_open():
    a, b = Window.build(hours="08:00-10:00"), Window.build(hours="12:00-14:00")
    assert next_open_all([a, b], local(MSK, 2026, 11, 22, 9, 0), MSK) is None


def test_validity_period_ends_before_the_window_closes():
    now = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
    assert validity_period(now + timedelta(hours=1), now, timedelta(minutes=10)) == (
        "000000005000000R"
    )
    assert validity_period(now + timedelta(days=2, hours=3), now, timedelta(0)) == (
        "000002030000000R"
    )


@settings(max_examples=60, deadline=None)
@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 1, 1)),
    st.sampled_from([MSK, BERLIN, LA, NY]),
    st.sampled_from(["10:00-18:00", "22:00-06:00", "00:00-24:00", "09:15-09:45"]),
    st.sets(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1),
)
def test_next_open_is_open_and_nothing_earlier_is(naive, zone, hours, days):
    w = Window.build(sorted(days), hours)
    at = naive.replace(tzinfo=UTC)
    nxt = w.next_open(at, zone)
    assert nxt is not None
    assert nxt >= at
    assert w.is_open(nxt, zone)
    probe = at
    while probe < nxt:
        assert not w.is_open(probe, zone)
        probe += timedelta(minutes=37)
