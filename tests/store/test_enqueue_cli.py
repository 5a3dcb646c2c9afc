"""`volley enqueue` and `volley status` as users run them."""

import json
import subprocess
import sys

import pytest

from engine import cli

CONFIG = """
[store]
path = "db"
[defaults]
region = "RU"
[[operators]]
name = "ru"
prefixes = ["+7"]
[[operators]]
name = "world"
[windows.promo]
hours = "10:00-18:00"
"""


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "engine.toml"
    path.write_text(CONFIG)
    return str(path)


def run(cfg, *args):
    return cli.main([args[0], "--config", cfg, *args[1:]])


def write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(p)


GOOD = [
    '{"id": "1", "to": "+79161234567", "text": "Анна, мы соскучились!", "from": "Shop"}',
    '{"id": "2", "to": "89161234568", "text": "national format"}',
    '{"id": "3", "to": "14155552671", "text": "E.164 without +", "kind": "transactional"}',
    '{"id": "4", "to": "+40721234567", "text": "hi", "not_before": "2026-11-23T10:00:00+03:00",'
    ' "expires": "2026-11-24T00:00:00+03:00", "kind": "promo"}',
]


def test_enqueue_then_status_json(cfg, tmp_path, capsys):
    assert run(cfg, "enqueue", write(tmp_path, "c.jsonl", GOOD), "--batch", "b1") == 0
    assert "batch b1: 4 queued" in capsys.readouterr().out
    assert run(cfg, "enqueue", write(tmp_path, "c.jsonl", GOOD), "--batch", "b1") == 0
    assert "0 queued, 4 already there" in capsys.readouterr().out
    assert run(cfg, "status", "--json") == 0
    snap = json.loads(capsys.readouterr().out)
    assert sum(snap["batches"]["b1"].values()) == 4
    assert snap["kinds"]["transactional"] == {"queued": 1}
    assert set(snap) >= {"states", "batches", "binds"}
    (window,) = snap["windows"]
    assert (window["kind"], window["zone"]) == ("promo", "Europe/Moscow")
    assert window["open"] or window["next_open"]
    assert sum(snap["scheduled_by_hour"].values()) == snap["states"]["scheduled"]


def test_numbers_are_normalised_and_routed(cfg, tmp_path):
    from engine import config
    from engine.store import Store

    run(cfg, "enqueue", write(tmp_path, "c.jsonl", GOOD), "--batch", "b")
    c = config.load(cfg)
    store = Store.open(c.resolve(c.store.path))
    got = {m.ext_id: (m.to, m.route) for m in store.messages()}
    store.close()
    assert got == {
        "1": ("+79161234567", "ru"),
        "2": ("+79161234568", "ru"),
        "3": ("+14155552671", "world"),
        "4": ("+40721234567", "world"),
    }


def test_bad_lines_exit_2_name_the_line_and_field_and_enqueue_nothing(cfg, tmp_path, capsys):
    lines = [
        GOOD[0],
        '{"id": "x", "to": "12", "text": "hi"}',
        "{not json",
        '{"id": "y", "to": "+79161234567"}',
        '{"id": "z", "to": "+79161234567", "text": "' + "я" * 500 + '"}',
        '{"id": "w", "to": "+79161234567", "text": "hi", "kind": "spam"}',
        '{"id": "v", "to": "+79161234567", "text": "hi", "expires": "tomorrow"}',
        '{"id": "u", "to": "+79161234567", "text": "hi", "from": "AVeryLongSenderName"}',
        '{"id": "t", "to": "+79161234567", "text": "hi", "colour": "red"}',
    ]
    path = write(tmp_path, "bad.jsonl", lines)
    assert run(cfg, "enqueue", path) == 2
    err = capsys.readouterr().err
    for expected in (
        "bad.jsonl:2: to: '12' is not a valid number",
        "bad.jsonl:3: line: not valid JSON",
        "bad.jsonl:4: text: expected a non-empty string",
        "bad.jsonl:5: text: needs 8 ucs2 parts, the limit is 6",
        "bad.jsonl:6: kind: 'spam'",
        "bad.jsonl:7: expires: 'tomorrow': expected ISO 8601",
        "bad.jsonl:8: from:",
        "bad.jsonl:9: colour: unknown field",
    ):
        assert expected in err
    assert run(cfg, "status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["batches"] == {}


def test_csv_with_bom_and_stdin(cfg, tmp_path, capsys):
    p = tmp_path / "c.csv"
    p.write_text("\ufeffto,text,id\n+79161234567,Hello,a\n+79161234568,World,b\n", encoding="utf-8")
    assert run(cfg, "enqueue", str(p), "--batch", "csv") == 0
    assert "2 queued" in capsys.readouterr().out
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "enqueue", "-", "--config", cfg, "--batch", "in"],
        input=GOOD[0] + "\n",
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "batch in: 1 queued" in proc.stdout


def test_status_without_a_store_prints_zeros(tmp_path, capsys):
    cfg = tmp_path / "engine.toml"
    cfg.write_text('[store]\npath = "none"\n')
    assert cli.main(["status", "--config", str(cfg), "--json"]) == 0
    snap = json.loads(capsys.readouterr().out)
    assert snap["states"]["queued"] == 0
    assert not (tmp_path / "none").exists()


def test_missing_file_is_usage_error(cfg, capsys):
    assert run(cfg, "enqueue", "/nonexistent.jsonl") == 2
    assert "No such file" in capsys.readouterr().err


def test_status_counts_messages_timed_in_the_default_zone(tmp_path, capsys):
    path = tmp_path / "engine.toml"
    path.write_text(CONFIG.replace('hours = "10:00-18:00"', 'hours = "00:00-24:00"'))
    lines = [
        '{"id": "1", "to": "+79071234567", "text": "a", "kind": "promo"}',  # in no range: default
        '{"id": "2", "to": "+79071234568", "text": "b", "kind": "promo"}',
        '{"id": "3", "to": "+14155552671", "text": "c", "kind": "promo"}',  # Los Angeles
        '{"id": "4", "to": "+79161234569", "text": "d"}',  # no window: no zone needed
    ]
    assert run(str(path), "enqueue", write(tmp_path, "b.jsonl", lines), "--batch", "b") == 0
    assert "2 message(s) in a send window with no known zone" in capsys.readouterr().out
    assert run(str(path), "status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["default_zone"] == 2
    from engine import config
    from engine.store import MarkSent
    from engine.wiring import open_store

    store = open_store(config.load(path))
    (first,) = store.claim("ru", 1, 0.0)
    store.apply([MarkSent(id=first.id, smsc_ids=["x"], at=1.0)])
    assert store.counts().zone_default == 1
    store.close()
    assert run(str(path), "status") == 0
    assert "1 message(s) waiting to be sent are timed in Europe/Moscow" in capsys.readouterr().out


def test_on_a_terminal_a_progress_bar_with_rate_and_eta_goes_to_stderr(cfg, tmp_path, on_terminal):
    lines = [f'{{"id": "{i}", "to": "+7916{i:07d}", "text": "hi"}}' for i in range(120_000)]
    code, out, shown = on_terminal("enqueue", write(tmp_path, "big.jsonl", lines), "--config", cfg)
    assert code == 0
    assert b"120000 queued" in out
    assert "enqueueing" in shown and "/120000" in shown and "msg/s" in shown
