"""What the control worker posts to the app: snapshots, replies, connection changes."""

from __future__ import annotations

from textual.message import Message

from engine.control import protocol as p


class SnapshotArrived(Message):
    """A newer snapshot replaces one not yet handled: under load the UI skips, never lags."""

    def __init__(self, snapshot: p.Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotArrived)


class ReplyArrived(Message):
    def __init__(self, reply: p.Reply) -> None:
        super().__init__()
        self.reply = reply


class ConnectionChanged(Message):
    """``live``: an engine answers on the socket; otherwise ``detail`` says what we show."""

    def __init__(self, live: bool, detail: str) -> None:
        super().__init__()
        self.live = live
        self.detail = detail
