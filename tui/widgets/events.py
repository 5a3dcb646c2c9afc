"""The engine's recent events, newest at the bottom; only new lines are written."""

from __future__ import annotations

from textual.widgets import RichLog

from engine.control import protocol as p


class EventLog(RichLog):
    _last: str | None = None

    def show(self, snap: p.Snapshot) -> None:
        events = snap.events
        start = 0
        if self._last is not None and self._last in events:
            start = len(events) - events[::-1].index(self._last)
        for line in events[start:]:
            self.write(line)
        if events:
            self._last = events[-1]
