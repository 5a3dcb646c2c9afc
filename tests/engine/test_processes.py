"""[engine] processes = 2: a supervisor and two engine processes sharing one store."""

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from engine import config
from engine.control import protocol as cp
from engine.control.client import Client
from engine.control.views import merge_snapshots
from engine.store import MarkSent, NewMessage, Store, StoreLock
from tests.engine import test_crash_run as crash_run
from tests.engine.test_crash_run import WINDOW, status, volley

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def campaign(tmp_path, n: int, tps: int, *smsc_args: str):
    """Two engine processes' config, ``n`` messages queued, a simulator recording the wire."""
    wire = tmp_path / "wire.jsonl"
    tables = '[control]\nsocket = "v.sock"\n[engine]\nprocesses = 2\n'
    with crash_run.campaign(
        tmp_path, n, tps, "--record", str(wire), *smsc_args, tables=tables, binds=2
    ) as cfg:
        yield cfg, wire


def sent_texts(wire) -> collections.Counter:
    return collections.Counter(json.loads(line)["text"] for line in wire.read_text().splitlines())


def snapshot(cfg) -> cp.Snapshot:
    deadline = time.monotonic() + 10
    while True:
        try:
            with Client.connect(cfg.parent / "v.sock") as client:
                snap = client.snapshot()
            if len(snap.binds) == 2:
                return snap
        except Exception:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def worker_pids(supervisor: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(supervisor)], capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split()]


def test_two_processes_share_the_queue_and_send_each_message_once(tmp_path):
    n = 3000
    with campaign(tmp_path, n, 1500) as (cfg, wire):
        run = volley("run", "--config", str(cfg), "--until-drained", "--timeout", "60")
        snap = snapshot(cfg)
        assert run.wait(timeout=90) == 0
        states = status(cfg)
    assert sorted(b.name for b in snap.binds) == ["local#0", "local#1"]
    assert [op.tps_configured for op in snap.operators] == [1500]  # 750 each, summed
    sent = sent_texts(wire)
    assert set(sent) == {f"msg {i}" for i in range(n)}
    assert max(sent.values()) == 1, "no message claimed by both processes"
    assert states["delivered"] == n


def test_a_killed_engine_process_is_recovered_alone_and_restarted(tmp_path):
    n = 3000
    with campaign(tmp_path, n, 600) as (cfg, wire):
        run = volley(
            "run", "--config", str(cfg), "--until-drained", "--timeout", "90",
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        snapshot(cfg)
        time.sleep(1.0)
        victim = worker_pids(run.pid)[1]
        os.kill(victim, signal.SIGKILL)
        assert run.wait(timeout=120) == 0
        log = run.stderr.read()
        run.stderr.close()
        states = status(cfg)
    assert "killed by SIGKILL" in log and "starting it again" in log
    sent = sent_texts(wire)
    assert set(sent) == {f"msg {i}" for i in range(n)}, "every message reached the SMSC"
    assert sum(c - 1 for c in sent.values()) <= WINDOW  # at most its one bind's window again
    assert states["delivered"] == n


def test_when_the_supervisor_is_killed_its_processes_stop_and_a_restart_resumes(tmp_path):
    n = 3000
    with campaign(tmp_path, n, 600) as (cfg, wire):
        with (tmp_path / "run.log").open("w") as log:
            run = volley("run", "--config", str(cfg), stderr=log)
        snapshot(cfg)
        workers = worker_pids(run.pid)
        run.kill()
        run.wait()
        deadline = time.monotonic() + 15
        while any(os.path.exists(f"/proc/{pid}") for pid in workers):
            assert time.monotonic() < deadline, "engine processes outlived their supervisor"
            time.sleep(0.1)
        middle = status(cfg)
        again = volley("run", "--config", str(cfg), "--until-drained", "--timeout", "60")
        assert again.wait(timeout=90) == 0
        states = status(cfg)
    # they stopped gracefully: everything committed
    assert middle["inflight"] == 0, (tmp_path / "run.log").read_text()[-6000:]
    assert middle["queued"] > 0
    assert sorted(sent_texts(wire)) == sorted(f"msg {i}" for i in range(n))
    assert states["delivered"] == n


def test_control_through_the_supervisor_reaches_every_process(tmp_path):
    with campaign(tmp_path, 20000, 100) as (cfg, _):
        run = volley("run", "--config", str(cfg), stderr=subprocess.DEVNULL)
        try:
            snapshot(cfg)
            with Client.connect(cfg.parent / "v.sock") as client:
                assert isinstance(client.request(cp.Pause(operator="local")), cp.Ok)
                assert isinstance(client.request(cp.SetTps(operator="local", tps=50)), cp.Ok)
                reply = client.request(cp.Reconnect(bind="local#1"))
                assert isinstance(reply, cp.Ok), reply
                missing = client.request(cp.Reconnect(bind="local#7"))
            snap = snapshot(cfg)
            assert isinstance(missing, cp.Error) and "local#7" in missing.message
            assert [op.paused for op in snap.operators] == [True]
            assert all(b.paused for b in snap.binds)
            assert [op.tps_configured for op in snap.operators] == [50]
        finally:
            run.terminate()
            assert run.wait(timeout=30) == 0


def test_recovery_of_one_process_leaves_the_others_claims(tmp_path):
    store = Store.open(tmp_path / "db")
    store.enqueue(
        "b", [NewMessage(to=f"+7916000000{i}", text="x", sender="S") for i in range(6)], now=1.0
    )
    store.owner = b"\x01"
    first = store.claim("default", 3, 2.0)
    store.owner = b"\x02"
    second = store.claim("default", 3, 2.0)
    store.apply([MarkSent(id=second[0].id, smsc_ids=["a"], at=3.0)])
    with StoreLock.acquire(tmp_path / "db") as lock:
        assert store.recover_inflight(lock, b"\x02") == 2
    states = {m.id: m.state for m in store.messages()}
    assert [states[m.id] for m in first] == ["inflight"] * 3
    assert [states[m.id] for m in second] == ["sent", "queued", "queued"]
    store.close()


def test_a_process_needs_a_bind_of_every_operator():
    with pytest.raises(config.ConfigError, match=r"operators\[0\]\.binds: 1 is fewer than"):
        config.parse(b'[engine]\nprocesses = 2\n[[operators]]\nname = "a"\n')


def test_merged_snapshots_sum_meters_and_list_every_bind():
    def snap(at: float, bind: str, submitted: int, history: list[float]) -> cp.Snapshot:
        return cp.Snapshot(
            at=at,
            operators=[cp.OperatorView(name="a", up=True, tps_limit=50, tps_configured=50)],
            binds=[cp.BindView(name=bind, operator="a", state="bound", submitted=submitted)],
            totals={"submitted": submitted},
            rates={"submit": 10.0},
            history=history,
            states={"queued": int(at)},
            events=[f"12:00:0{int(at)} from {bind}"],
        )

    merged = merge_snapshots([snap(2, "a#1", 7, [1.0, 2.0]), snap(1, "a#0", 5, [3.0])], pid=9)
    assert merged.pid == 9
    assert [b.name for b in merged.binds] == ["a#0", "a#1"]
    assert merged.operators[0].tps_configured == 100
    assert merged.totals == {"submitted": 12} and merged.rates == {"submit": 20.0}
    assert merged.history == [1.0, 5.0]
    assert merged.states == {"queued": 2}  # the store's view: the newest
    assert merged.events == ["12:00:01 from a#0", "12:00:02 from a#1"]


def test_on_a_terminal_the_supervisor_shows_every_processs_progress(tmp_path, on_terminal):
    with campaign(tmp_path, 1000, 400) as (cfg, _):
        code, _, shown = on_terminal("run", "--until-drained", "--config", str(cfg))
    assert code == 0
    assert "sent " in shown and "receipts " in shown  # the summed progress line, redrawn
    assert "engine process 1/2 exited with 0" in shown


def test_sigterm_to_the_whole_group_drains_gracefully(tmp_path):
    """As systemd stops a service: SIGTERM to the supervisor and its processes at once."""
    with campaign(tmp_path, 20000, 400) as (cfg, _):
        with (tmp_path / "run.log").open("w") as log:
            run = volley("run", "--config", str(cfg), stderr=log)
        snapshot(cfg)
        time.sleep(0.5)
        for pid in [run.pid, *worker_pids(run.pid)]:
            os.kill(pid, signal.SIGTERM)
        assert run.wait(timeout=30) == 0
        states = status(cfg)
    log = (tmp_path / "run.log").read_text()
    assert log.count("unbinding") >= 2 and "exiting now" not in log
    assert states["inflight"] == 0 and states["delivered"] + states["sent"] > 0


def test_the_processes_sockets_are_checked_before_any_starts(tmp_path):
    """Here the processes' control sockets (SOCKET.0, SOCKET.1) are too long for a Unix
    socket, while the supervisor's (SOCKET) fits."""
    name = "s" * (107 - len(os.fsencode(tmp_path)) - 1)  # tmp_path/NAME is 107 bytes: fits
    with campaign(tmp_path, 10, 100) as (cfg, _):
        cfg.write_text(cfg.read_text().replace('socket = "v.sock"', f'socket = "{name}"'))
        run = volley("run", "--config", str(cfg), stderr=subprocess.PIPE, text=True)
        _, err = run.communicate(timeout=60)
    assert run.returncode == 1
    assert f"{name}.0: [control] socket path longer than 107 bytes" in err
    assert "engine process" not in err  # none was started


def test_sighup_reloads_every_process_and_a_bad_file_is_refused(tmp_path):
    n = 3000
    with campaign(tmp_path, n, 600) as (cfg, wire):
        run = volley("run", "--config", str(cfg), "--until-drained", "--timeout", "90",
                     stderr=subprocess.PIPE, text=True)  # fmt: skip
        snapshot(cfg)
        good = cfg.read_text()
        cfg.write_text(good.replace("tps = 600", "tps = 1200"))
        run.send_signal(signal.SIGHUP)  # what systemd's ExecReload does
        deadline = time.monotonic() + 10
        while [op.tps_configured for op in snapshot(cfg).operators] != [1200]:
            assert time.monotonic() < deadline, "the processes never took the new tps"
            time.sleep(0.1)
        cfg.write_text(good.replace("tps = 600", "tps = -1"))
        run.send_signal(signal.SIGHUP)  # refused by the supervisor: nothing reaches the processes
        time.sleep(0.3)
        bad = subprocess.run([sys.executable, "-m", "engine", "reload", "--config", str(cfg)],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
        assert bad.returncode == 2  # refused before it is sent
        assert "operators[0].tps: expected a number > 0" in bad.stderr
        assert [op.tps_configured for op in snapshot(cfg).operators] == [1200]
        cfg.write_text(good.replace("tps = 600", "tps = 900"))
        reloaded = subprocess.run([sys.executable, "-m", "engine", "reload", "--config", str(cfg)],
                                  capture_output=True, text=True, timeout=30)  # fmt: skip
        assert reloaded.returncode == 0, reloaded.stderr
        assert "operator local: tps" in reloaded.stdout
        assert [op.tps_configured for op in snapshot(cfg).operators] == [900]
        assert run.poll() is None  # still sending
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        states = status(cfg)
    assert "reload refused, the running config stays" in err
    assert "operators[0].tps" in err
    sent = sent_texts(wire)
    assert set(sent) == {f"msg {i}" for i in range(n)} and max(sent.values()) == 1
    assert states["delivered"] == n
