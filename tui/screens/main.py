"""The main screen: binds and throughput at a glance, the rest one tab away."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from engine.control import protocol as p
from tui.widgets.batches import BatchesTable
from tui.widgets.binds import BindsTable
from tui.widgets.events import EventLog
from tui.widgets.queue import QueuePanel
from tui.widgets.receipts import NumbersPanel, ReceiptsPanel
from tui.widgets.table import SyncedTable
from tui.widgets.throughput import Throughput

SHOWS = (BindsTable, Throughput, QueuePanel, BatchesTable, ReceiptsPanel, NumbersPanel, EventLog)


class MainScreen(Screen):
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (36, "-tall")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("connecting…", id="banner")
        with TabbedContent(id="tabs"):
            with TabPane("Overview", id="overview"):
                yield Throughput(id="throughput")
                with Horizontal(id="overview-body"):
                    yield BindsTable(id="binds")
                    yield QueuePanel(id="queue")
                with Horizontal(id="overview-more"):  # shown on tall terminals
                    yield BatchesTable(id="batches-glance")
                    yield EventLog(id="events-glance", max_lines=200, markup=False, wrap=False)
            with TabPane("Batches", id="batches-tab"):
                yield BatchesTable(id="batches")
            with TabPane("Receipts", id="receipts-tab"), Vertical():
                yield ReceiptsPanel(id="receipts")
                yield NumbersPanel(id="numbers")
            with TabPane("Events", id="events-tab"):
                yield EventLog(id="events", max_lines=1000, markup=False, wrap=False)
        yield Footer(compact=True)  # every key fits in 80 columns

    def on_mount(self) -> None:
        self.query_one(BindsTable).focus()
        app = self.app
        self.connection(getattr(app, "live", False), getattr(app, "detail", "connecting…"))
        if getattr(app, "snapshot", None) is not None:
            self.show(app.snapshot)

    def show(self, snap: p.Snapshot) -> None:
        widgets = [w for cls in SHOWS for w in self.query(cls)]
        if not widgets:
            return  # not composed yet: on_mount shows the latest
        for widget in widgets:
            widget.show(snap)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        tables = event.pane.query(SyncedTable)
        if tables:
            tables.first().focus()

    def connection(self, live: bool, detail: str) -> None:
        try:
            banner = self.query_one("#banner", Static)
        except NoMatches:
            return
        banner.update(("● live: " if live else "○ ") + detail)
        banner.set_class(not live, "offline")
