"""The shipped US TCPA example: the strictest applicable window wins, in local time."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from engine import config
from engine.sched.schedule import Scheduler

SUNDAY = (2026, 11, 22)
MONDAY = (2026, 11, 23)


@pytest.fixture(scope="module")
def scheduler():
    return Scheduler(config.load("examples/us-tcpa.toml"))


def at(zone, day, hour, minute=0):
    return datetime(*day, hour, minute, tzinfo=ZoneInfo(zone)).timestamp()


@pytest.mark.parametrize(
    ("number", "zone", "day", "hour", "minute", "is_open"),
    [
        ("+12145550100", "America/Chicago", SUNDAY, 11, 0, False),  # Texas, Sunday
        ("+12145550100", "America/Chicago", SUNDAY, 12, 0, True),
        ("+12145550100", "America/Chicago", MONDAY, 8, 30, False),  # Texas: 9:00 on weekdays
        ("+12035550100", "America/New_York", MONDAY, 8, 30, False),  # Connecticut
        ("+12035550100", "America/New_York", MONDAY, 19, 59, True),
        ("+13055550100", "America/New_York", MONDAY, 20, 30, False),  # Florida
        ("+14155552671", "America/Los_Angeles", MONDAY, 20, 30, True),  # California
        ("+14155552671", "America/Los_Angeles", MONDAY, 7, 59, False),
    ],
)
def test_state_windows(scheduler, number, zone, day, hour, minute, is_open):
    decision = scheduler.decide("marketing", number, at(zone, day, hour, minute))
    assert decision.open is is_open
    assert decision.zone == zone


def test_texas_sunday_morning_waits_for_noon(scheduler):
    decision = scheduler.decide("marketing", "+12145550100", at("America/Chicago", SUNDAY, 11))
    assert decision.due == at("America/Chicago", SUNDAY, 12)


def test_transactional_goes_at_any_hour(scheduler):
    assert scheduler.decide("transactional", "+12145550100", at("America/Chicago", SUNDAY, 3)).open
