"""The recipient's zone: table, then phonenumbers' single answer, then the default."""

from zoneinfo import ZoneInfo

import pytest

from engine.sched.zones import ZoneResolver, ZoneTableError, load_table


@pytest.fixture
def resolver():
    return ZoneResolver("Europe/Moscow")


@pytest.mark.parametrize(
    ("number", "zone", "source"),
    [
        ("+74951234567", "Europe/Moscow", "number"),
        ("+74232123456", "Asia/Vladivostok", "number"),
        ("+74012123456", "Europe/Kaliningrad", "table"),  # phonenumbers says Bucharest
        ("+14155552671", "America/Los_Angeles", "number"),
        ("+40721234567", "Europe/Bucharest", "number"),
        ("+447911123456", "Europe/London", "table"),
        ("+79161234567", "Europe/Moscow", "default"),  # 16 candidates: never the first
    ],
)
def test_resolution(resolver, number, zone, source):
    assert resolver.resolve(number) == (ZoneInfo(zone), source)


def test_a_russian_mobile_resolved_by_a_table_row(tmp_path):
    path = tmp_path / "zones.csv"
    path.write_text("# mine\n7914,Asia/Vladivostok\n+7916,Europe/Moscow\n")
    r = ZoneResolver("Europe/Moscow", load_table(path))
    assert r.resolve("+79141234567") == (ZoneInfo("Asia/Vladivostok"), "table")
    assert r.resolve("+79501234567") == (ZoneInfo("Europe/Moscow"), "default")


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("7914", "expected prefix,zone"),
        ("x,Europe/Moscow", "expected prefix,zone"),
        ("7914,Mars/Olympus", "unknown time zone"),
    ],
)
def test_bad_table_names_the_line(tmp_path, line, error):
    path = tmp_path / "zones.csv"
    path.write_text("# header\n" + line + "\n")
    with pytest.raises(ZoneTableError, match=f"zones.csv:2: {error}"):
        load_table(path)
