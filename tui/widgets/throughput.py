"""Throughput over the last minutes: a sparkline of messages sent per second."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.widgets import Label, Sparkline

from engine.control import protocol as p


class Throughput(Vertical):
    _latest: p.Snapshot | None = None

    def compose(self) -> ComposeResult:
        yield Label("", id="rate")
        yield Sparkline([], summary_function=max, id="spark")

    def on_mount(self) -> None:
        if self._latest is not None:
            self.show(self._latest)

    def show(self, snap: p.Snapshot) -> None:
        self._latest = snap
        try:
            rate, spark = self.query_one("#rate", Label), self.query_one("#spark", Sparkline)
        except NoMatches:
            return  # not composed yet: on_mount shows it
        rates, totals = snap.rates, snap.totals
        minutes = len(snap.history) / 60
        text = (
            f"[b]{rates.get('submit', 0):,.0f}[/] msg/s  "
            f"[b]{rates.get('receipts', 0):,.0f}[/] receipts/s  "
            f"sent {totals.get('submitted', 0):,}  failed {totals.get('failed', 0):,}  "
            f"[$text-muted](messages, last {minutes:.0f} min)[/]"
            if snap.live
            else "[$text-muted]no engine: no throughput[/]"
        )
        rate.update(text)
        spark.data = bars(snap.history) if snap.live else []


def bars(history: list[float]) -> list[float]:
    """What the sparkline draws: nothing without data, and heights from zero (a sparkline
    scales from its lowest value to its highest: 200 and 210 would look like 0 and full)."""
    if not history:
        return []
    return [0.0, *history] if min(history) > 0 else list(history)
