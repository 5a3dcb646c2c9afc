"""`volley enqueue` at its edges: idempotent batches, routes, lengths, bytes, cancel."""

import io
import json

import pytest

from engine import cli, config
from engine.store import Store

CONFIG = """
[store]
path = "db"
[[operators]]
name = "ru"
prefixes = ["+7"]
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
    p.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return str(p)


def stored(cfg):
    c = config.load(cfg)
    store = Store.open(c.resolve(c.store.path), readonly=True)
    try:
        return {(m.batch, m.ext_id): (m.to, m.state) for m in store.messages()}
    finally:
        store.close()


LINES = [{"to": "+79161234567", "text": "a"}, {"to": "+79161234568", "text": "b"}]


def test_the_same_file_without_ids_or_batch_is_queued_once_on_any_day(cfg, tmp_path, capsys):
    path = write(tmp_path, "spring.jsonl", LINES)
    assert run(cfg, "enqueue", path) == 0
    first = capsys.readouterr().out
    assert run(cfg, "enqueue", path) == 0
    again = capsys.readouterr().out
    batch = first.split()[1].rstrip(":")
    assert batch.startswith("spring-") and len(batch) == len("spring-") + 12
    assert f"batch {batch}: 0 queued, 2 already there" in again
    assert set(stored(cfg)) == {(batch, "1"), (batch, "2")}  # line numbers as ids
    write(tmp_path, "spring.jsonl", [*LINES, {"to": "+79161234569", "text": "c"}])
    assert run(cfg, "enqueue", path) == 0  # other content: another batch
    assert "3 queued" in capsys.readouterr().out


def test_stdin_needs_a_batch(cfg, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert run(cfg, "enqueue", "-") == 2
    assert "stdin needs --batch" in capsys.readouterr().err


def test_a_repeated_id_with_other_content_names_both_lines(cfg, tmp_path, capsys):
    lines = [
        {"id": "x", "to": "+79161234567", "text": "a"},
        {"id": "y", "to": "+79161234568", "text": "b"},
        {"id": "x", "to": "+79161234569", "text": "a"},
    ]
    path = write(tmp_path, "d.jsonl", lines)
    assert run(cfg, "enqueue", path, "--batch", "b") == 2
    err = capsys.readouterr().err
    assert f"{path}:3: id: 'x' is also on line 1, with different content" in err
    assert stored(cfg) == {}


def test_a_number_no_operator_routes_is_refused(cfg, tmp_path, capsys):
    path = write(tmp_path, "u.jsonl", [*LINES, {"to": "+14155552671", "text": "c"}])
    assert run(cfg, "enqueue", path, "--batch", "b") == 2
    err = capsys.readouterr().err
    assert f"{path}:3: to: no operator routes +14155552671" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--batch", "b" * 600], "--batch: batch id: 600 bytes, expected 1 to 128"),
        (["--batch", "a\tb"], "no control characters"),
    ],
)
def test_long_or_odd_batch_ids_are_usage_errors(cfg, tmp_path, capsys, args, why):
    assert run(cfg, "enqueue", write(tmp_path, "c.jsonl", LINES), *args) == 2
    assert why in capsys.readouterr().err


def test_a_long_id_names_its_line(cfg, tmp_path, capsys):
    path = write(
        tmp_path, "c.jsonl", [*LINES, {"id": "i" * 600, "to": "+79161234567", "text": "x"}]
    )
    assert run(cfg, "enqueue", path, "--batch", "b") == 2
    assert f"{path}:3: id: 600 characters, at most 64" in capsys.readouterr().err


@pytest.mark.slow
def test_invalid_utf8_far_into_a_file_names_its_line_and_true_offset(cfg, tmp_path, capsys):
    line = json.dumps({"to": "+79161234567", "text": "hello"}).encode() + b"\n"
    n = 200_000
    bad = b'{"to": "+79161234567", "text": "\xff"}\n'
    path = tmp_path / "big.jsonl"
    path.write_bytes(line * n + bad + line)
    assert run(cfg, "enqueue", str(path), "--batch", "b") == 2
    err = capsys.readouterr().err
    offset = len(line) * n + bad.index(b"\xff")
    assert (
        f"{path}:{n + 1}: line: not UTF-8 (invalid start byte at byte {offset} of the file" in err
    )
    assert stored(cfg) == {}


def test_cancel_with_no_engine_running(cfg, tmp_path, capsys):
    assert run(cfg, "enqueue", write(tmp_path, "c.jsonl", LINES), "--batch", "b") == 0
    assert run(cfg, "cancel", "b") == 0
    assert "batch b: 2 cancelled" in capsys.readouterr().out
    assert {state for _, state in stored(cfg).values()} == {"cancelled"}
    assert run(cfg, "cancel", "nope") == 1
    assert "no batch 'nope'" in capsys.readouterr().err
    assert run(cfg, "status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["states"]["cancelled"] == 2
