"""Images of the main screen on fixed data (pytest-textual-snapshot; --snapshot-update)."""

import pytest

from tui.app import VolleyApp
from tui.source import FixedSource

from .data import snapshot


async def loaded(pilot):
    app = pilot.app
    for _ in range(100):
        if app.snapshot is not None:
            break
        await pilot.pause(0.02)
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


@pytest.mark.parametrize(
    ("size", "theme"),
    [((80, 24), "textual-dark"), ((200, 50), "textual-dark"), ((80, 24), "textual-light")],
)
def test_main_screen(snap_compare, size, theme):
    app = VolleyApp(FixedSource(snapshot(binds=6, batches=5)))
    app.theme = theme
    assert snap_compare(app, terminal_size=size, run_before=loaded)


def test_batches_tab(snap_compare):
    app = VolleyApp(FixedSource(snapshot(binds=3, batches=12)))
    assert snap_compare(app, terminal_size=(80, 24), press=["2"], run_before=loaded)


def test_without_an_engine(snap_compare):
    """Read-only: the banner says so, and the sparkline draws no bars."""
    app = VolleyApp(FixedSource(snapshot(binds=0, batches=3, live=False), live=False))
    assert snap_compare(app, terminal_size=(80, 24), run_before=loaded)
