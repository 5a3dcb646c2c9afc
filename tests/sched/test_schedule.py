"""The scheduler: a kind's window, narrowed by an operator's send window."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from engine import config
from engine.sched.schedule import Scheduler

MSK = ZoneInfo("Europe/Moscow")
CFG = """
[defaults]
timezone = "Europe/Moscow"
[windows.marketing]
hours = "09:00-21:00"
[windows.mts-marketing]
days = ["mon", "tue", "wed", "thu", "fri"]
hours = "10:00-18:00"
[[operators]]
name = "mts"
send_windows = { marketing = "mts-marketing" }
"""


def at(day, hour, minute=0):
    return datetime(2026, 11, day, hour, minute, tzinfo=MSK).timestamp()


@pytest.fixture(scope="module")
def scheduler():
    return Scheduler(config.parse(CFG))


def test_the_operators_window_narrows_the_kinds(scheduler):
    number = "+79161234567"  # Moscow
    assert scheduler.decide("marketing", number, at(23, 9, 30)).open
    narrowed = scheduler.decide("marketing", number, at(23, 9, 30), also="mts-marketing")
    assert not narrowed.open
    assert narrowed.due == at(23, 10)
    evening = scheduler.decide("marketing", number, at(23, 18, 30), also="mts-marketing")
    assert evening.due == at(24, 10)
    saturday = scheduler.decide("marketing", number, at(28, 12), also="mts-marketing")
    assert saturday.due == at(30, 10)  # Monday
    inside = scheduler.decide("marketing", number, at(23, 12), also="mts-marketing")
    assert inside.open and inside.closes_at == at(23, 18)


def test_an_operators_window_alone_applies_to_a_kind_without_one(scheduler):
    assert scheduler.decide("transactional", "+79161234567", at(23, 20)).open
    late = scheduler.decide("transactional", "+79161234567", at(23, 20), also="mts-marketing")
    assert late.due == at(24, 10)


def test_an_unknown_send_window_is_a_config_error():
    with pytest.raises(config.ConfigError, match=r"send_windows.marketing: no \[windows.nope\]"):
        config.parse('[[operators]]\nname = "a"\nsend_windows = { marketing = "nope" }\n')
