"""What the TUI refuses: a TPS the engine would refuse, no terminal, a bad --interval."""

import subprocess
import sys

import pytest

from engine.control import protocol as p
from tui.app import VolleyApp
from tui.source import FixedSource

from .data import snapshot
from .test_app import started


@pytest.mark.asyncio
async def test_the_tps_prompt_refuses_nan_infinities_and_out_of_range():
    source = FixedSource(snapshot())
    app = VolleyApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        for bad in ("nan", "inf", "0", "1000001"):
            await pilot.press("t", *["backspace"] * 7, *bad, "enter")
            await pilot.pause()
        assert source.sent == []
        await pilot.press("t", *["backspace"] * 7, *"1000000", "enter")
        await pilot.pause()
        assert source.sent == [p.SetTps(operator="mts", tps=1000000.0)]


def volley_tui(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", "tui", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.asyncio
async def test_the_queue_panel_shows_the_unroutable():
    import msgspec

    from tui.widgets.queue import QueuePanel

    app = VolleyApp(FixedSource(msgspec.structs.replace(snapshot(), unroutable=12)))
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        assert "12 unroutable" in str(app.query_one(QueuePanel).render())


def test_off_a_terminal_the_tui_exits_2_and_says_why():
    out = volley_tui()
    assert out.returncode == 2
    assert "needs a terminal" in out.stderr
    assert "\x1b" not in out.stdout + out.stderr  # no escape codes into the pipe


@pytest.mark.parametrize("interval", ["0", "-1", "nan", "inf", "x"])
def test_the_interval_must_be_positive(interval):
    out = volley_tui("--interval", interval)
    assert out.returncode == 2
    assert "expected seconds > 0" in out.stderr
