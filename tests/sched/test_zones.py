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
        ("+79071234567", "Europe/Moscow", "default"),  # 16 candidates, in no range
    ],
)
def test_resolution(resolver, number, zone, source):
    assert resolver.resolve(number) == (ZoneInfo(zone), source)


# Numbers inside the shipped registry ranges of each region (engine/data/ru_def_ranges.csv:
# 914 0650000-0799999 Primorsky, 913 0000000-0199999 Novosibirsk, 922 1000000-2299999
# Sverdlovsk, 900 3450000-3549999 Kaliningrad, 916 0000000-9999999 Moscow).
@pytest.mark.parametrize(
    ("number", "zone", "region"),
    [
        ("+79140701234", "Asia/Vladivostok", "Приморский край"),
        ("+79130012345", "Asia/Novosibirsk", "Новосибирская область"),
        ("+79221012345", "Asia/Yekaterinburg", "Свердловская область"),
        ("+79003451234", "Europe/Kaliningrad", "Калининградская область"),  # not Bucharest
        ("+79161234567", "Europe/Moscow", "Москва"),
        ("+79141234567", "Asia/Chita", "Забайкальский край"),  # 914 is not all Primorsky
    ],
)
def test_russian_mobiles_take_their_range_s_region_zone(resolver, number, zone, region):
    assert resolver.resolve(number) == (ZoneInfo(zone), "range")
    assert resolver.region(number) == region


def test_range_boundaries_are_exact(resolver):
    # 914 0650000-0799999 is Primorsky, 914 0800000-0829999 Chukotka
    assert resolver.resolve("+79140799999")[0] == ZoneInfo("Asia/Vladivostok")
    assert resolver.resolve("+79140800000")[0] == ZoneInfo("Asia/Anadyr")
    assert resolver.resolve("+79140649999")[0] == ZoneInfo("Asia/Yakutsk")  # Amur


def test_a_prefix_row_overrides_the_ranges(tmp_path):
    path = tmp_path / "zones.csv"
    path.write_text("7914070,Europe/Moscow\n")
    r = ZoneResolver("Europe/Moscow", load_table(path))
    assert r.resolve("+79140701234") == (ZoneInfo("Europe/Moscow"), "table")
    assert r.resolve("+79140711234") == (ZoneInfo("Asia/Vladivostok"), "range")


def test_without_ranges_a_russian_mobile_falls_back_to_the_default():
    from engine.zones.table import RangeTable

    r = ZoneResolver("Europe/Moscow", ranges=RangeTable([]))
    assert r.resolve("+79140701234") == (ZoneInfo("Europe/Moscow"), "default")


def test_a_russian_mobile_resolved_by_a_table_row(tmp_path):
    path = tmp_path / "zones.csv"
    path.write_text("# mine\n7914,Asia/Vladivostok\n+7916,Europe/Moscow\n")
    r = ZoneResolver("Europe/Moscow", load_table(path))
    assert r.resolve("+79141234567") == (ZoneInfo("Asia/Vladivostok"), "table")
    assert r.resolve("+79071234567") == (ZoneInfo("Europe/Moscow"), "default")


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
