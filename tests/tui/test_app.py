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


def _cell(table, row: str, column: str) -> str:
    return str(table.get_cell(row, column))


async def test_columns_widen_when_a_value_grows_and_paused_binds_say_so():
    import msgspec

    first = snapshot(binds=3)
    app = VolleyApp(FixedSource(first))
    async with app.run_test(size=(200, 50)) as pilot:
        await started(pilot, app)
        table = app.query_one(BindsTable)
        ops = [msgspec.structs.replace(o, tps_limit=50.0) for o in first.operators]
        error = "0x45 submit_sm or submit_multi failed (a long one)"
        binds = [
            msgspec.structs.replace(b, paused=True, last_error=error) if i == 0 else b
            for i, b in enumerate(first.binds)
        ]
        app.snapshot = msgspec.structs.replace(first, operators=ops, binds=binds)
        await pilot.pause()
        assert _cell(table, "orange#0", "parts/s") == "0/50"
        assert _cell(table, "mts#0", "state") == "paused"
        assert _cell(table, "mts#0", "last error") == error[:40]
        widths = {str(c.key.value): c.content_width for c in table.columns.values()}
        assert widths["last error"] >= 40
        assert widths["parts/s"] >= len("180/50")


async def test_the_sparkline_draws_no_bars_without_data():
    from textual.widgets import Sparkline

    from tui.widgets.throughput import bars

    app = VolleyApp(FixedSource(snapshot(live=False), live=False))
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        assert list(app.query_one(Sparkline).data) == []
    assert bars([]) == []
    assert bars([200.0, 210.0]) == [0.0, 200.0, 210.0]  # heights from zero
    assert bars([0.0, 5.0]) == [0.0, 5.0]


async def test_the_receipts_tab_shows_the_webhook_backlog_and_dead_letters():
    import msgspec

    snap = msgspec.structs.replace(snapshot(), webhook_backlog=1234, webhook_dead=7)
    app = VolleyApp(FixedSource(snap))
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("3")
        await pilot.pause()
        text = str(app.query_one("#receipts").render())
        assert "Webhooks 1,234 waiting" in text and "7 dead letters" in text
