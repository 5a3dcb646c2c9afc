"""Logs: JSON lines with context fields, text with key=value, a rotated file per process."""

import json
import logging

import pytest

from engine import config, logs


@pytest.fixture
def volley_logger():
    yield logging.getLogger("volley.test")
    root = logging.getLogger(logs.ROOT)
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = []
    root.setLevel(logging.NOTSET)


def test_json_lines_carry_the_context(tmp_path, volley_logger):
    cfg = config.parse(
        f'[log]\nfile = "{tmp_path / "v.log"}"\njson = true\nlevel = "debug"'.encode()
    )
    logs.setup(cfg)
    volley_logger.info("paused", extra={"operator": "mts", "uid": 1000})
    logs.message_debug(volley_logger, "sent", batch="b", id="crm-1", number="+79161234567")
    try:
        raise ValueError("boom")
    except ValueError:
        volley_logger.exception("failed", extra={"bind": "mts#0"})
    lines = [json.loads(x) for x in (tmp_path / "v.log").read_text().splitlines()]
    assert lines[0]["msg"] == "paused"
    assert (lines[0]["operator"], lines[0]["uid"], lines[0]["level"]) == ("mts", 1000, "info")
    assert lines[0]["logger"] == "volley.test"
    assert lines[0]["t"].endswith("+00:00")
    assert (lines[1]["batch"], lines[1]["id"], lines[1]["number"]) == ("b", "crm-1", "+79161234567")
    assert lines[2]["bind"] == "mts#0" and "ValueError: boom" in lines[2]["exc"]


def test_text_lines_append_key_values_and_debug_costs_nothing_when_off(capsys, volley_logger):
    logs.setup(config.parse(b""))
    volley_logger.warning("submit failed", extra={"status": "0x0B Invalid dest", "key": 7})
    logs.message_debug(volley_logger, "sent", batch="b", id="x", number="+1")
    err = capsys.readouterr().err
    assert err.rstrip().endswith('submit failed status="0x0B Invalid dest" key=7')
    assert "WARNING volley.test" in err
    assert "sent" not in err  # level info: no per-message lines


def test_the_file_rotates_and_each_engine_process_has_its_own(tmp_path, volley_logger):
    cfg = config.parse(f'[log]\nfile = "{tmp_path / "v.log"}"\nmax_mb = 1\nkeep = 2'.encode())
    logs.setup(cfg, tag="w1")
    for _ in range(3000):
        volley_logger.info("x" * 1000)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["v.w1.log", "v.w1.log.1", "v.w1.log.2"]
    assert all(p.stat().st_size <= (1 << 20) + 2000 for p in tmp_path.iterdir())
