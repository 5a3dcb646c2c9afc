"""The app on a real engine process: live data, the engine going away and coming back."""

import asyncio
import json
import socket
import subprocess
import sys

import pytest

from engine import config
from tui.app import VolleyApp
from tui.source import ControlSource

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def volley(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def queued(tmp_path, n: int, operator: str, tables: str = ""):
    """engine.toml with one operator ``local`` (plus ``operator``'s keys), ``n`` messages queued."""
    path = tmp_path / "engine.toml"
    path.write_text(
        f'[store]\npath = "db"\n{tables}[[operators]]\nname = "local"\npassword = "x"\n{operator}'
    )
    batch = tmp_path / "b.jsonl"
    batch.write_text(
        "".join(json.dumps({"to": f"+7916{i:07d}", "text": f"hi {i}"}) + "\n" for i in range(n))
    )
    assert volley("enqueue", str(batch), "--config", str(path), "--batch", "b").wait() == 0
    return path


async def until(pilot, condition, timeout=15.0):
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


async def test_live_then_gone_then_back(tmp_path):
    port = free_port()
    path = queued(tmp_path, 20, f'port = {port}\ntps = 50\nreconnect_min = "0.05s"\n')
    smsc = volley("smsc", "--port", str(port))
    engine = volley("run", "--config", str(path))
    app = VolleyApp(ControlSource(config.load(path), interval=0.1, retry=0.1))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.live and app.snapshot and app.snapshot.live)
            await until(pilot, lambda: app.snapshot.states.get("delivered", 0) == 20)
            assert app.snapshot.binds[0].state == "bound"
            engine.terminate()
            await asyncio.to_thread(engine.wait)
            await until(pilot, lambda: not app.live and not app.snapshot.live)
            banner = str(app.query_one("#banner").render())
            assert "engine went away: the store, read-only" in banner
            assert app.snapshot.states["delivered"] == 20  # read from the store
            engine = volley("run", "--config", str(path))
            await until(pilot, lambda: app.live and app.snapshot.live)
            assert "● live" in str(app.query_one("#banner").render())
    finally:
        for proc in (engine, smsc):
            proc.terminate()
            proc.wait()


async def test_two_engine_processes_show_as_one_engine(tmp_path):
    port = free_port()
    tables = '[control]\nsocket = "v.sock"\n[engine]\nprocesses = 2\n'
    path = queued(tmp_path, 500, f"port = {port}\ntps = 20\nbinds = 2\n", tables)
    smsc = volley("smsc", "--port", str(port))
    engine = volley("run", "--config", str(path))
    app = VolleyApp(ControlSource(config.load(path), interval=0.1, retry=0.1))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.snapshot and len(app.snapshot.binds) == 2)
            await until(pilot, lambda: all(b.state == "bound" for b in app.snapshot.binds))
            assert [b.name for b in app.snapshot.binds] == ["local#0", "local#1"]
            await pilot.press("p")  # pause the selected bind's operator: in both processes
            await until(pilot, lambda: all(b.paused for b in app.snapshot.binds))
            assert app.snapshot.operators[0].paused
    finally:
        for proc in (engine, smsc):
            proc.terminate()
            proc.wait()
