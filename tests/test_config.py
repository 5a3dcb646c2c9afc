import pytest

from engine import config


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (b"[store]\npth = 1", "engine.toml: store.pth: unknown key"),
        (b"colour = 1", "engine.toml: colour: unknown key"),
        (b'[[operators]]\nname = "a"\nwindow = 0', "operators[0].window: expected an integer >= 1"),
        (b'[[operators]]\nname = "a"\nport = "x"', "operators[0].port: expected an integer"),
        (b"[[operators]]\nport = 1", "operators[0].name: required key missing"),
        (b'[defaults]\ntimezone = "Mars/Base"', "defaults.timezone: unknown time zone"),
        (b'[defaults]\nreceipt_timeout = "3x"', "defaults.receipt_timeout: expected a duration"),
        (
            b'[windows.marketing]\nhours = "10-18"',
            "windows.marketing.hours: '10-18': expected HH:MM",
        ),
        (
            b'[windows.m]\nclosed_dates = ["31.12"]',
            "windows.m.closed_dates: '31.12': expected a date",
        ),
        (b'[windows.m]\nzone = "Mars"', "windows.m.zone: 'Mars': expected \"recipient\""),
        (b"x =", "engine.toml: not valid TOML"),
        (
            b'[[operators]]\nname = "a"\nfailover = ["b"]',
            "operators[0].failover[0]: no operator named 'b'",
        ),
        (b'[[operators]]\nname = "a"\n[[operators]]\nname = "a"', "duplicate operator name"),
    ],
)
def test_bad_config_names_the_key(doc, expected):
    with pytest.raises(config.ConfigError) as exc:
        config.parse(doc)
    assert expected in str(exc.value)


def test_defaults_are_embedded():
    cfg = config.parse(b"")
    assert cfg.store.path == "var/volley.lmdb"
    assert cfg.defaults.timezone == "Europe/Moscow"
    assert cfg.prune.after_failures == 2


def test_shipped_engine_toml_is_valid():
    cfg = config.load("engine.toml")
    assert cfg.operators


@pytest.mark.parametrize(
    ("text", "secs"),
    [("48h", 172800.0), ("30s", 30.0), ("500ms", 0.5), ("7d", 604800.0), ("5", 5.0)],
)
def test_durations(text, secs):
    assert config.seconds(text) == secs


def test_paths_resolve_beside_the_config(tmp_path):
    p = tmp_path / "engine.toml"
    p.write_text('[store]\npath = "q/db"\n')
    cfg = config.load(p)
    assert cfg.resolve(cfg.store.path) == tmp_path / "q" / "db"


def test_processes_auto_follows_the_tps_the_cores_and_the_binds(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2, 3})

    def auto(ops: str) -> int:
        return config.engine_processes(config.parse(ops.encode()))

    one = '[[operators]]\nname = "a"\nbinds = {b}\ntps = {t}\n'
    assert auto("") == 1
    assert auto(one.format(b=4, t=100)) == 1  # a contracted TPS one process keeps
    assert auto(one.format(b=4, t=25_000)) == 3
    assert auto(one.format(b=2, t=1_000_000)) == 2  # no more than the binds
    assert auto(one.format(b=8, t=1_000_000)) == 4  # no more than the cores
    explicit = "[engine]\nprocesses = 3\n" + one.format(b=4, t=100)
    assert auto(explicit) == 3
