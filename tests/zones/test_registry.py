"""Reading the numbering registry's CSV, region names, and the range table."""

import pytest

from engine.zones import registry, table
from engine.zones.regions import AmbiguousRegion, match

OLD = (  # to ~2021: six columns, cp1251
    "АВС/ DEF;От;До;Емкость;Оператор;Регион\r\n"
    '914;0650000;0799999;150000;ПАО "Мобильные ТелеСистемы";Приморский край\r\n'
    '900;3450000;3549999;100000;ООО "Т2 Мобайл";Калининградская обл.\r\n'
    '958;0000000;0999999;1000000;ООО "Т2 Мобайл";Российская Федерация\r\n'
)
NEW = (  # 2023 on: UTF-8 with BOM, "Территория ГАР" and "ИНН"
    "\ufeffАВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН\n"
    '913;0000000;0199999;200000;ПАО "МТС";Новосибирская обл.;Новосибирская область;7740000076\n'
    '978;1500000;1599999;100000;ООО "Т-МОБ";-;Республика Крым, Город Севастополь;7743200179\n'
    '922;1000000;2299999;1300000;ПАО "МЕГАФОН";Свердловская обл.;Свердловская область;78\n'
    '922;2300000;2399999;100000;ПАО "МЕГАФОН";Свердловская обл.;Свердловская область;78\n'
)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Калининградская обл.", "Калининградская область"),
        ("г. Москва * Московская область", "Москва"),
        ("Московская область * Москва|Московская область * Москва", "Московская область"),
        ("Ханты - Мансийский - Югра АО", "Ханты-Мансийский автономный округ — Югра"),
        ("Ямало-Ненецкий АО", "Ямало-Ненецкий автономный округ"),
        ("Ненецкий АО", "Ненецкий автономный округ"),
        ("Архангельская область и Ненецкий автономный округ", "Архангельская область"),
        ("г. Норильск|г.о. город Норильск|Красноярский край", "Красноярский край"),
        ("Республика Саха /Якутия/", "Республика Саха (Якутия)"),
        ("Сахалинская обл.", "Сахалинская область"),
        ("Томская обл.", "Томская область"),  # not Omsk
        ("Омская обл.", "Омская область"),
        ("Алтайский край", "Алтайский край"),
        ("Республика Алтай", "Республика Алтай"),
        ("Нижегородская обл.", "Нижегородская область"),
        ("Новгородская обл.", "Новгородская область"),
        ("Курская обл.", "Курская область"),
        ("Курганская обл.", "Курганская область"),
        ("Кемеровская область - Кузбасс обл.", "Кемеровская область — Кузбасс"),
        ("Республика Донецкая Народная", "Донецкая Народная Республика"),
        ("Сургутский район * г. Сургут", "Ханты-Мансийский автономный округ — Югра"),
    ],
)
def test_the_registry_s_spellings_of_a_region(text, name):
    assert match(text).name == name


def test_a_region_naming_subjects_in_different_zones_is_ambiguous():
    with pytest.raises(AmbiguousRegion, match="different time zones"):
        match("Приморский край * Калининградская обл.")


def test_nationwide_and_unknown_texts_match_nothing():
    assert match("Российская Федерация") is None
    assert match("Атлантида") is None


def test_the_old_cp1251_file():
    parsed = registry.read(OLD.encode("cp1251"), "DEF-9xx.csv")
    assert parsed.errors == []
    assert [r[:3] for r in parsed.ranges] == [
        (9140650000, 9140799999, 25),
        (9003450000, 9003549999, 39),
    ]
    assert parsed.ranges[0][3] == "DEF-9xx.csv:2"
    assert parsed.skipped == {"nationwide": 1}


def test_the_new_utf8_file_reads_the_gar_territory_first():
    parsed = registry.read(NEW.encode("utf-8"), "DEF-9xx.csv")
    assert parsed.errors == []
    assert [r[2] for r in parsed.ranges] == [54, 82, 66, 66]  # "-" region: GAR says Crimea
    merged, errors = registry.merge(parsed.ranges)
    assert errors == []
    assert (9221000000, 9222399999, 66) in merged  # adjacent rows of one region joined


def test_bad_rows_name_their_line_and_field():
    data = (
        "АВС/ DEF;От;До;Емкость;Оператор;Регион\n"
        "914;0650000;0799999;1;X;Приморский край\n"
        "91;0000000;0099999;1;X;Приморский край\n"
        "914;00x0000;0099999;1;X;Приморский край\n"
        "914;0200000;0100000;1;X;Приморский край\n"
        "914;0300000;0399999;1;X;Атлантида\n"
        "914;0400000\n"
    )
    parsed = registry.read(data.encode(), "f.csv")
    assert parsed.error_count == 5
    assert parsed.errors[0] == "f.csv:3: АВС/ DEF: '91': expected a 3-digit code"
    assert parsed.errors[1].startswith("f.csv:4: От: '00x0000'")
    assert parsed.errors[2].startswith("f.csv:5: До: 0100000 is before От 0200000")
    assert parsed.errors[3].startswith("f.csv:6: Регион: 'Атлантида': no federal subject")
    assert parsed.errors[4].startswith("f.csv:7: line: 2 columns")
    assert len(parsed.ranges) == 1


def test_overlapping_ranges_of_different_regions_are_errors_naming_both_lines():
    data = (
        "АВС/ DEF;От;До;Емкость;Оператор;Регион\n"
        "914;0000000;0499999;1;X;Приморский край\n"
        "914;0400000;0599999;1;X;Хабаровский край\n"
    )
    parsed = registry.read(data.encode(), "f.csv")
    _, errors = registry.merge(parsed.ranges)
    assert errors == [
        "f.csv:3: range: +7 914 0400000-0599999 overlaps f.csv:2's range of another region"
    ]


def test_a_file_without_the_registry_header_is_refused():
    with pytest.raises(registry.RegistryError, match=r"f\.csv:1: header: no column for"):
        registry.read(b"phone;zone\n1;2\n", "f.csv")
    with pytest.raises(registry.RegistryError, match="empty file"):
        registry.read(b"", "f.csv")


def test_the_table_round_trips_and_finds_by_bisection(tmp_path):
    rows = [(9140650000, 9140799999, 25), (9003450000, 9003549999, 39)]
    path = tmp_path / "t.csv"
    table.write_atomic(path, table.render(sorted(rows), ["a header"]))
    loaded = table.load(path)
    assert loaded.header == ["a header"]
    assert loaded.rows() == sorted(rows)
    assert loaded.find(9140650000).zone == "Asia/Vladivostok"
    assert loaded.find(9140799999).zone == "Asia/Vladivostok"
    assert loaded.find(9140800000) is None
    assert loaded.find(9003449999) is None
    assert loaded.find(1) is None


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("9140650000,9140799999", "expected first,last,region"),
        ("9140650000,9140799999,88", "unknown subject code 88"),
        ("9140799999,9140650000,25", "ends before it starts"),
    ],
)
def test_a_bad_table_names_its_line(tmp_path, line, error):
    path = tmp_path / "t.csv"
    path.write_text(f"# h\n{line}\n")
    with pytest.raises(table.RangeTableError, match=f"t.csv:2: .*{error}"):
        table.load(path)


def test_the_shipped_seed_is_sorted_and_says_where_it_came_from():
    seed = table.load()
    assert len(seed) > 10_000
    assert any("DEF-9xx.csv sha256" in h for h in seed.header)
    assert any("2026-04-20" in h for h in seed.header)
    assert all(a < b for a, b in zip(seed.ends, seed.starts[1:], strict=False))


def test_the_build_is_reproducible(tmp_path):
    from engine.zones import build

    src = tmp_path / "DEF-9xx.csv"
    src.write_bytes(OLD.encode("cp1251"))
    outs = []
    for i in range(2):
        out = tmp_path / f"out{i}.csv"
        assert build.main([str(src), "--source", "a test", "--output", str(out)]) == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    assert "9140650000,9140799999,25" in outs[0]


def test_every_federal_subject_has_a_real_zone_and_ranges_in_the_seed():
    from zoneinfo import ZoneInfo

    from engine.zones.regions import REGIONS

    assert len(REGIONS) == 89
    for region in REGIONS.values():
        assert ZoneInfo(region.zone).key == region.zone
        assert match(region.name) == region, region.name  # its own name reads back
    assert {r.code for r in table.load().regions} == set(REGIONS)
