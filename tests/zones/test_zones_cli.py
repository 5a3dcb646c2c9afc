"""`volley zones import` and `volley zones lookup` as an operator runs them."""

import json

import pytest

from engine import cli, config
from engine.sched.schedule import Scheduler

REGISTRY = (
    "АВС/ DEF;От;До;Емкость;Оператор;Регион;ИНН\n"
    "914;0000000;0999999;1;X;Калининградская обл.;1\n"  # not so in reality: a test table
    "913;0000000;0199999;1;X;Новосибирская обл.;1\n"
)


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "engine.toml"
    path.write_text('[store]\npath = "db"\n')
    return str(path)


def run(cfg, *args):
    return cli.main(["zones", "--config", cfg, *args])


def test_import_replaces_the_table_in_the_store_folder(tmp_path, cfg, capsys):
    src = tmp_path / "DEF-9xx.csv"
    src.write_bytes(REGISTRY.encode("cp1251"))
    assert Scheduler(config.load(cfg)).zones.resolve("+79140701234")[0].key == "Asia/Vladivostok"
    assert run(cfg, "import", str(src)) == 0
    out = capsys.readouterr().out
    assert "2 ranges from 2 rows written to" in out and "ru-def-ranges.csv" in out
    written = tmp_path / "db" / "ru-def-ranges.csv"
    assert "imported" in written.read_text()
    zones = Scheduler(config.load(cfg)).zones
    assert zones.resolve("+79140701234")[0].key == "Europe/Kaliningrad"
    assert zones.resolve("+79161234567")[1] == "default"  # not in the imported table
    assert sorted(p.name for p in written.parent.iterdir()) == ["ru-def-ranges.csv"]


def test_a_bad_row_replaces_nothing_unless_skipped(tmp_path, cfg, capsys):
    src = tmp_path / "DEF-9xx.csv"
    src.write_text(REGISTRY + "915;0000000;0999999;1;X;Атлантида;1\n", encoding="utf-8")
    assert run(cfg, "import", str(src)) == 2
    err = capsys.readouterr().err
    assert f"{src}:4: Регион: 'Атлантида': no federal subject recognised" in err
    assert "the table was not replaced" in err
    assert not (tmp_path / "db" / "ru-def-ranges.csv").exists()
    assert run(cfg, "import", str(src), "--skip-bad") == 0
    assert "1 bad row(s) left out" in capsys.readouterr().out
    assert (tmp_path / "db" / "ru-def-ranges.csv").exists()


def test_import_to_the_configured_path(tmp_path, capsys):
    path = tmp_path / "engine.toml"
    path.write_text('[store]\npath = "db"\n[defaults]\nzone_ranges = "tables/ranges.csv"\n')
    with pytest.raises(config.ConfigError, match=r"ranges.csv: No such file .*zones import"):
        Scheduler(config.load(path))
    src = tmp_path / "DEF-9xx.csv"
    src.write_text(REGISTRY, encoding="utf-8")
    assert run(str(path), "import", str(src)) == 0
    assert (tmp_path / "tables" / "ranges.csv").exists()
    assert Scheduler(config.load(path)).zones.resolve("+79130012345")[1] == "range"


def test_not_a_registry_file_exits_2(tmp_path, cfg, capsys):
    src = tmp_path / "x.csv"
    src.write_text("phone,zone\n")
    assert run(cfg, "import", str(src)) == 2
    assert "header: no column for" in capsys.readouterr().err
    assert run(cfg, "import", str(tmp_path / "missing.csv")) == 2


def test_lookup_says_why(cfg, capsys):
    assert run(cfg, "lookup", "+79140701234", "+74012123456", "+79071234567", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["zone"], r["source"]) for r in rows] == [
        ("Asia/Vladivostok", "range"),
        ("Europe/Kaliningrad", "table"),
        ("Europe/Moscow", "default"),
    ]
    assert rows[0]["region"] == "Приморский край"
    assert run(cfg, "lookup", "not-a-number") == 2
