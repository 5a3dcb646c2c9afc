"""One engine per store: what other commands may do while it sends, and a second engine."""

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine.test_crash_run import campaign, status, volley

pytestmark = pytest.mark.slow

DATA = Path(__file__).parents[2] / "engine" / "data"


def wire_counts(wire: Path) -> collections.Counter:
    """(destination, text) -> how many submit_sm carried it to the SMSC."""
    return collections.Counter(
        (e["destination_addr"], e["text"]) for e in map(json.loads, wire.read_text().splitlines())
    )


def wait_sending(cfg: Path) -> None:
    deadline = time.monotonic() + 20
    while status(cfg)["inflight"] == 0 and status(cfg)["sent"] == 0:
        assert time.monotonic() < deadline, "the engine never started sending"
        time.sleep(0.05)


def run_ok(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "engine", *args], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_enqueue_numbers_and_segment_during_a_full_speed_run_resend_nothing(tmp_path):
    n = 8000
    wire = tmp_path / "wire.jsonl"
    extra = tmp_path / "more.jsonl"
    extra.write_text(
        "".join(json.dumps({"to": f"+7917{i:07d}", "text": f"more {i}"}) + "\n" for i in range(50))
    )
    with campaign(tmp_path, n, 1500, "--record", str(wire)) as cfg:
        run = volley("run", "--config", str(cfg), "--until-drained", "--timeout", "90")
        wait_sending(cfg)
        for _ in range(2):
            run_ok("enqueue", str(extra), "--config", str(cfg))
            run_ok("numbers", "stop", "+79990000001", "--config", str(cfg))
            run_ok("numbers", "restore", "+79990000001", "--config", str(cfg))
        customers = str(DATA / "customers_sample.csv")
        rules = str(DATA / "reactivation.toml")
        run_ok("segment", customers, "--rules", rules, "--config", str(cfg),
               "--removal-list", str(tmp_path / "removal.csv"))  # fmt: skip
        assert run.poll() is None, "the engine was still sending all along"
        assert run.wait(timeout=120) == 0
        states = status(cfg)
    sent = wire_counts(wire)
    duplicates = {k: c for k, c in sent.items() if c > 1}
    assert not duplicates, f"{len(duplicates)} messages sent more than once"
    assert states["inflight"] == states["queued"] == 0
    assert sum(1 for dest, text in sent if text.startswith("more ")) == 50
    assert len(sent) > n + 50  # the segment's batches went out too


def test_a_second_engine_on_the_store_exits_1_naming_the_first(tmp_path):
    with campaign(tmp_path, 2000, 200) as cfg:
        first = volley("run", "--config", str(cfg), stderr=subprocess.PIPE, text=True)
        wait_sending(cfg)
        other = cfg.with_name("other.toml")  # the same store, another control socket
        other.write_text(cfg.read_text() + '[control]\nsocket = "other.sock"\n')
        second = subprocess.run(
            [sys.executable, "-m", "engine", "run", "--config", str(other)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert f"pid {first.pid}" in second.stderr
        assert "one engine per store" in second.stderr
        first.send_signal(signal.SIGTERM)  # a graceful drain
        _, err = first.communicate(timeout=30)
        assert first.returncode == 0, err
        states = status(cfg)
    assert "unbinding" in err
    assert states["inflight"] == 0
    assert not (cfg.parent / "var" / "volley.sock").exists()  # no stale socket
    assert not (cfg.parent / "other.sock").exists()


def test_a_second_engine_is_refused_while_a_supervisor_holds_the_store(tmp_path):
    tables = '[control]\nsocket = "v.sock"\n[engine]\nprocesses = 2\n'
    with campaign(tmp_path, 4000, 200, tables=tables, binds=2) as cfg:
        first = volley("run", "--config", str(cfg), stderr=subprocess.DEVNULL)
        wait_sending(cfg)
        single = cfg.with_name("single.toml")
        text = cfg.read_text().replace("processes = 2", "processes = 1")
        single.write_text(text.replace('socket = "v.sock"', 'socket = "single.sock"'))
        second = subprocess.run(
            [sys.executable, "-m", "engine", "run", "--config", str(single)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    assert second.returncode == 1
    assert f"pid {first.pid}" in second.stderr


def test_the_store_is_private_from_creation(tmp_path):
    with campaign(tmp_path, 10, 100) as cfg:
        db = cfg.parent / "db"
        assert os.stat(db).st_mode & 0o777 == 0o700
        for name in ("data.mdb", "lock.mdb"):
            assert os.stat(db / name).st_mode & 0o777 == 0o600, name
        os.chmod(db, 0o755)
        os.chmod(db / "data.mdb", 0o644)
        run_ok("status", "--config", str(cfg))  # opened by its owner: tightened again
        assert os.stat(db).st_mode & 0o777 == 0o700
        assert os.stat(db / "data.mdb").st_mode & 0o777 == 0o600
