"""The app through App.run_test() and Pilot, on fixed data and on a real engine."""

import pytest

from engine.control import protocol as p
from tui.app import VolleyApp
from tui.screens.confirm import ConfirmScreen
from tui.source import FixedSource
from tui.widgets.batches import BatchesTable
from tui.widgets.binds import BindsTable

from .data import snapshot

pytestmark = pytest.mark.asyncio


async def started(pilot, app):
    for _ in range(100):
        if app.snapshot is not None:
            break
        await pilot.pause(0.02)
    await pilot.pause()


async def test_the_main_screen_shows_binds_and_batches():
    app = VolleyApp(FixedSource(snapshot(binds=6, batches=5)))
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        assert app.query_one(BindsTable).row_count == 6
        await pilot.press("2")
        await pilot.pause()
        assert app.query_one("#batches", BatchesTable).row_count == 5
        assert "live" in str(app.query_one("#banner").render())


async def test_keys_send_requests_for_the_selected_rows():
    source = FixedSource(snapshot())
    app = VolleyApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("p", "b", "r")
        await pilot.press("down", "p")  # the second bind: beeline#0
        await pilot.press("2", "x")  # the Batches tab: its first batch
        await pilot.pause()
        assert source.sent == [
            p.Pause(operator="mts"),
            p.Pause(bind="mts#0"),
            p.Reconnect(bind="mts#0"),
            p.Pause(operator="beeline"),
            p.Pause(batch="reactivation-sleep120-20261123"),  # sorted by name
        ]
        await pilot.press("down", "down", "x")  # the paused one: resume
        assert source.sent[-1] == p.Resume(batch="reactivation-sleep60-20261123")


async def test_tps_is_asked_for_and_checked():
    source = FixedSource(snapshot())
    app = VolleyApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("t")
        await pilot.press(*["backspace"] * 5, *"abc", "enter")
        assert source.sent == []
        await pilot.press("t", *["backspace"] * 5, "5", "0", "enter")
        await pilot.pause()
        assert source.sent == [p.SetTps(operator="mts", tps=50.0)]


async def test_destructive_actions_ask_first():
    source = FixedSource(snapshot())
    app = VolleyApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert source.sent == []
        await pilot.press("d", "y")
        assert source.sent == [p.Drain()]
        await pilot.press("s", *"+79161234567", "enter")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        assert source.sent[-1] == p.StopNumber(number="+79161234567", reason="operator")


async def test_the_command_palette_reaches_every_bind():
    source = FixedSource(snapshot(binds=6))
    app = VolleyApp(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        await pilot.press("ctrl+p", *"reconnect bind beeline#1")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert source.sent == [p.Reconnect(bind="beeline#1")]


async def test_without_an_engine_the_view_is_read_only_and_says_so():
    source = FixedSource(snapshot(live=False), live=False)
    app = VolleyApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        assert "○" in str(app.query_one("#banner").render())
        assert app.sub_title == "read-only"
        await pilot.press("p")
        await pilot.pause()
        assert any("read-only" in n.message for n in app._notifications)
