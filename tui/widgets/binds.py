"""Operators and their binds: state, TPS now / limit, window used, counts, last error."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text

from engine.control import protocol as p
from tui.widgets.table import SyncedTable

STATE_STYLE = {"bound": "green", "backoff": "yellow", "failed": "bold red", "stopped": "dim"}


class BindsTable(SyncedTable):
    # parts: submit_sm PDUs, every part of a long message counted (as TPS limits count them)
    COLUMNS = ("bind", "state", "parts/s", "window", "errors", "last error", "parts", "reconn")

    def rows_of(self, snap: p.Snapshot) -> dict[str, tuple[object, ...]]:
        ops = {o.name: o for o in snap.operators}
        return {b.name: _row(b, ops.get(b.operator)) for b in snap.binds}


def _row(b: p.BindView, op: p.OperatorView | None) -> tuple[object, ...]:
    if b.paused:
        text = "paused" if b.state == "bound" else f"{b.state}, paused"
        state = Text(text, style="yellow", justify="left", end="")
    else:
        state = Text(b.state, style=STATE_STYLE.get(b.state, ""), justify="left", end="")
    limit = op.tps_limit if op else b.tps_limit
    window = f"{b.window_used}/{b.window}" if b.window else "rx"
    return (
        escape(b.name),
        state,
        f"{b.tps_now:,.0f}/{limit:,.0f}",
        window,
        f"{b.errors:,}",
        escape(b.last_error[:40]),
        f"{b.submitted:,}",
        str(b.reconnects),
    )
