"""`volley tui`: watch the engine and act on it (pause, TPS, reconnect, stop-list, drain).

One worker thread runs the source (the control socket, or the store read-only
while no engine runs) and posts snapshots; the screen shows the latest. Keys
and the command palette send requests; destructive ones ask first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import TabbedContent
from textual.worker import get_current_worker

from engine.config import MAX_TPS
from engine.control import protocol as p
from tui.commands import VolleyCommands
from tui.messages import ConnectionChanged, ReplyArrived, SnapshotArrived
from tui.screens.confirm import ConfirmScreen
from tui.screens.main import MainScreen
from tui.screens.prompt import PromptScreen
from tui.source import Source
from tui.widgets.batches import BatchesTable
from tui.widgets.binds import BindsTable

PAUSE = Binding.Group("Pause/resume")
TABS = ("overview", "batches-tab", "receipts-tab", "events-tab")


class VolleyApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "Volley"
    COMMANDS = App.COMMANDS | {VolleyCommands}
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("q", "quit", "Quit"),
        Binding("p", "toggle_operator", "operator", tooltip="pause/resume", group=PAUSE),
        Binding("b", "toggle_bind", "bind", tooltip="pause/resume", group=PAUSE),
        Binding("x", "toggle_batch", "batch", tooltip="pause/resume", group=PAUSE),
        Binding("r", "reconnect", "Reconnect"),
        Binding("t", "set_tps", "TPS"),
        Binding("s", "stop_number", "Stop-list"),
        Binding("d", "drain", "Drain"),
        *(Binding(str(i + 1), f"tab('{tab}')", show=False) for i, tab in enumerate(TABS)),
    ]

    snapshot: reactive[p.Snapshot | None] = reactive(None, always_update=True)
    live: reactive[bool] = reactive(False)

    def __init__(self, source: Source) -> None:
        super().__init__()
        self.source = source
        self.detail = "connecting…"

    def get_default_screen(self) -> MainScreen:
        self.main = MainScreen()
        return self.main

    def on_mount(self) -> None:
        self._follow()

    @work(thread=True, exclusive=True, name="control", exit_on_error=False)
    def _follow(self) -> None:
        worker = get_current_worker()
        self.source.run(self.post_message, lambda: worker.is_cancelled)

    # -- what the worker posts -------------------------------------------------

    def on_snapshot_arrived(self, message: SnapshotArrived) -> None:
        self.snapshot = message.snapshot

    def watch_snapshot(self, snap: p.Snapshot | None) -> None:
        if snap is not None:
            self.main.show(snap)

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        self.live, self.detail = message.live, message.detail
        self.sub_title = "live" if message.live else "read-only"
        self.main.connection(message.live, message.detail)

    def on_reply_arrived(self, message: ReplyArrived) -> None:
        reply = message.reply
        if isinstance(reply, p.Error):
            self.notify(reply.message, title="engine refused", severity="error")
        elif isinstance(reply, p.Ok):
            self.notify(reply.detail, title="engine")

    # -- actions -----------------------------------------------------------------

    def send(self, request: p.Base) -> None:
        if not self.source.send(request):
            self.notify(
                "no engine is running: the view is read-only", severity="warning", title="not sent"
            )

    def _selected_bind(self) -> str | None:
        name = self.main.query_one(BindsTable).selected
        if name is None and self.snapshot and self.snapshot.binds:
            name = self.snapshot.binds[0].name
        return name

    def _selected_operator(self) -> p.OperatorView | None:
        snap = self.snapshot
        if snap is None or not snap.operators:
            return None
        bind = self._selected_bind()
        name = bind.split("#", 1)[0] if bind else snap.operators[0].name
        return next((o for o in snap.operators if o.name == name), snap.operators[0])

    def action_toggle_operator(self, name: str | None = None) -> None:
        op = self._operator(name)
        if op is not None:
            self.send((p.Resume if op.paused else p.Pause)(operator=op.name))

    def action_toggle_bind(self, name: str | None = None) -> None:
        name = name or self._selected_bind()
        binds = self.snapshot.binds if self.snapshot else []
        bind = next((b for b in binds if b.name == name), None)
        if bind is not None:
            self.send((p.Resume if bind.paused else p.Pause)(bind=bind.name))

    def action_toggle_batch(self, name: str | None = None) -> None:
        table = self.focused
        if not isinstance(table, BatchesTable):
            table = self.main.query_one("#batches", BatchesTable)
        name = name or table.selected
        if name is None or self.snapshot is None:
            self.notify("select a batch on the Batches tab (2)", severity="warning")
            return
        paused = name in self.snapshot.paused_batches
        self.send((p.Resume if paused else p.Pause)(batch=name))

    def action_reconnect(self, name: str | None = None) -> None:
        name = name or self._selected_bind()
        if name is not None:
            self.send(p.Reconnect(bind=name))

    def action_set_tps(self, name: str | None = None) -> None:
        op = self._operator(name)
        if op is None:
            return

        def done(answer: str | None) -> None:
            if answer is None:
                return
            try:
                tps = float(answer)
                if not (math.isfinite(tps) and 0 < tps <= MAX_TPS):
                    raise ValueError
            except ValueError:
                self.notify(
                    f"{answer!r}: expected a number > 0 and at most {MAX_TPS:,.0f}",
                    severity="error",
                )
                return
            self.send(p.SetTps(operator=op.name, tps=tps))

        question = f"TPS for operator {op.name} (configured {op.tps_configured:g})"
        self.push_screen(PromptScreen(question, "e.g. 100", f"{op.tps_limit:g}"), done)

    def action_stop_number(self) -> None:
        def confirmed(number: str, yes: bool | None) -> None:
            if yes:
                self.send(p.StopNumber(number=number, reason="operator"))

        def asked(number: str | None) -> None:
            if number:
                question = f"Stop-list {number}? It will never be messaged again."
                self.push_screen(ConfirmScreen(question), lambda yes: confirmed(number, yes))

        self.push_screen(PromptScreen("Number to stop-list", "+79161234567"), asked)

    def action_drain(self) -> None:
        def confirmed(yes: bool | None) -> None:
            if yes:
                self.send(p.Drain())

        question = "Drain and stop the engine? In-flight messages finish, then it exits."
        self.push_screen(ConfirmScreen(question), confirmed)

    def action_tab(self, tab: str) -> None:
        self.main.query_one("#tabs", TabbedContent).active = tab

    def _operator(self, name: str | None) -> p.OperatorView | None:
        if name is None:
            return self._selected_operator()
        snap = self.snapshot
        return next((o for o in snap.operators if o.name == name), None) if snap else None

    def palette_commands(self) -> list[tuple[str, Callable[[], object], str]]:
        snap = self.snapshot
        out: list[tuple[str, Callable[[], object], str]] = []

        def add(text: str, fn: Callable[..., object], name: str, help_text: str = "") -> None:
            out.append((text, lambda: fn(name), help_text))

        for op in snap.operators if snap else []:
            verb = "Resume" if op.paused else "Pause"
            add(
                f"{verb} operator {op.name}",
                self.action_toggle_operator,
                op.name,
                "its traffic waits, or fails over",
            )
            add(
                f"Set TPS of operator {op.name}",
                self.action_set_tps,
                op.name,
                f"now {op.tps_limit:g}, configured {op.tps_configured:g}",
            )
        for b in snap.binds if snap else []:
            add(
                f"Reconnect bind {b.name}",
                self.action_reconnect,
                b.name,
                "drop the connection and bind again",
            )
            add(
                f"{'Resume' if b.paused else 'Pause'} bind {b.name}",
                self.action_toggle_bind,
                b.name,
            )
        for batch in sorted(snap.batches) if snap else []:
            verb = "Resume" if batch in snap.paused_batches else "Pause"
            add(f"{verb} batch {batch}", self.action_toggle_batch, batch)
        out.append(("Stop-list a number", self.action_stop_number, "asks, then confirms"))
        out.append(("Drain and stop the engine", self.action_drain, "asks first"))
        return out
