"""`volley run` as a process: kill -9 at random moments, SIGTERM; nothing lost."""

import collections
import contextlib
import json
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

WINDOW = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("simulator did not start")


def started(tmp_path, timeout: float = 20.0) -> None:
    """Until the engine serves its control socket: it handles signals from then on (a busy
    machine may take more than a second to start a Python process)."""
    sock = tmp_path / "var" / "volley.sock"
    deadline = time.monotonic() + timeout
    while not sock.exists():
        assert time.monotonic() < deadline, "the engine did not start"
        time.sleep(0.02)


def volley(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine", *args], **kw)


@contextlib.contextmanager
def campaign(tmp_path, n: int, tps: int, *smsc_args: str, tables: str = "", binds: int = 1):
    """A simulator process and a config with ``n`` messages enqueued; yields the config path.

    ``tables``: more of engine.toml, before the operator's table."""
    port = free_port()
    cfg = tmp_path / "engine.toml"
    cfg.write_text(
        f'[store]\npath = "db"\n{tables}[[operators]]\nname = "local"\nport = {port}\n'
        f'password = "x"\ntps = {tps}\nwindow = {WINDOW}\nreconnect_min = "0.05s"\n'
        f"binds = {binds}\n"
    )
    batch = tmp_path / "batch.jsonl"
    batch.write_text(
        "".join(
            json.dumps({"id": str(i), "to": f"+7916{i:07d}", "text": f"msg {i}"}) + "\n"
            for i in range(n)
        )
    )
    smsc = volley(
        "smsc",
        "--port",
        str(port),
        *smsc_args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        enqueue = volley(
            "enqueue", str(batch), "--config", str(cfg), "--batch", "b", stdout=subprocess.DEVNULL
        )
        assert enqueue.wait() == 0
        yield cfg
    finally:
        smsc.terminate()
        smsc.wait()


def status(cfg) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-m", "engine", "status", "--json", "--config", str(cfg)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)["states"]


def check_store(cfg) -> None:
    """Store.check on the engine's store: counters equal what they count, every message
    waits in one place, nothing left in flight by a claim set."""
    from engine.store import Store

    store = Store.open(cfg.parent / "db", readonly=True)
    try:
        store.check()
    finally:
        store.close()


def test_kill_9_restart_drain(tmp_path):
    n, kills = 2000, 3
    wire = tmp_path / "wire.jsonl"
    with campaign(tmp_path, n, 1500, "--record", str(wire)) as cfg:
        rng = random.Random(11)
        for _ in range(kills):
            run = volley("run", "--config", str(cfg), stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 0.9))
            run.kill()
            run.wait()
        final = volley(
            "run",
            "--config",
            str(cfg),
            "--until-drained",
            "--timeout",
            "60",
            stderr=subprocess.DEVNULL,
        )
        assert final.wait(timeout=90) == 0
        states = status(cfg)
        check_store(cfg)
    sent = collections.Counter(json.loads(line)["text"] for line in wire.read_text().splitlines())
    assert set(sent) == {f"msg {i}" for i in range(n)}, "every message reached the SMSC"
    duplicates = sum(c - 1 for c in sent.values())
    assert duplicates <= kills * WINDOW, duplicates
    assert states["delivered"] == n
    assert sum(states.values()) == n


def test_sigterm_drains_unbinds_and_exits_0(tmp_path):
    with campaign(tmp_path, 1000, 200, "--response-delay", "0.2") as cfg:
        run = volley("run", "--config", str(cfg), stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=20) == 0
        log = run.stderr.read()
        run.stderr.close()
        states = status(cfg)
        check_store(cfg)
    assert "unbinding" in log
    assert states["inflight"] == 0
    assert 0 < states["sent"] + states["delivered"] < 1000
    assert states["queued"] + states["sent"] + states["delivered"] == 1000


def test_on_a_terminal_run_until_drained_shows_progress(tmp_path, on_terminal):
    with campaign(tmp_path, 300, 200) as cfg:
        code, _, shown = on_terminal("run", "--until-drained", "--config", str(cfg))
    assert code == 0
    assert "sent " in shown and "receipts " in shown  # the progress line, redrawn
    assert "drained" in shown  # the log lines still come through


def test_sigterm_while_sending_at_full_speed_leaves_nothing_in_flight(tmp_path):
    """A stop never cuts a write: what the window counts as sent reached the SMSC."""
    n = 3000
    with campaign(tmp_path, n, 600) as cfg:
        rng = random.Random(5)
        for _ in range(5):
            run = volley("run", "--config", str(cfg), stderr=subprocess.PIPE, text=True)
            started(tmp_path)
            time.sleep(rng.uniform(0.2, 0.6))
            run.send_signal(signal.SIGTERM)
            _, err = run.communicate(timeout=20)
            assert run.returncode == 0, err[-3000:]
            assert status(cfg)["inflight"] == 0
            check_store(cfg)
        final = volley("run", "--config", str(cfg), "--until-drained", "--timeout", "60")
        assert final.wait(timeout=90) == 0
        assert status(cfg)["delivered"] == n
