"""The queue by state, and each send window's state with its next opening."""

from __future__ import annotations

from datetime import datetime

from textual.markup import escape
from textual.widgets import Static

from engine.control import protocol as p

SHOWN = ("queued", "scheduled", "inflight", "sent", "delivered", "undelivered", "failed", "skipped")


class QueuePanel(Static):
    def show(self, snap: p.Snapshot) -> None:
        states = snap.states
        lines = ["[b]Queue[/] [$text-muted](messages)[/]"]
        lines += [f"{s:<12}{states.get(s, 0):>11,}" for s in SHOWN]
        other = sum(v for k, v in states.items() if k not in SHOWN)
        if other:
            lines.append(f"{'other':<12}{other:>11,}")
        lines.append("[b]Windows[/]")
        for w in snap.windows:
            state = "[$success]open[/]" if w.open else f"[$warning]→ {_when(w.next_open)}[/]"
            lines.append(f"{escape(w.kind[:10]):<11}{state}")
        if not snap.windows:
            lines.append("[$text-muted]none: any hour[/]")
        if snap.unroutable:
            lines.append(f"[$error]{snap.unroutable:,} unroutable[/]")
        if snap.default_zone:
            lines.append(f"[$warning]{snap.default_zone:,} in default zone[/]")
        if snap.scheduled_by_hour:
            hour, n = next(iter(snap.scheduled_by_hour.items()))
            lines.append(f"[$text-muted]{n:,} due {_when(hour)} UTC[/]")
        self.update("\n".join(lines))


def _when(iso: str) -> str:
    """'Tue 08:00' in the time's own offset; '?' if there is none."""
    try:
        return datetime.fromisoformat(iso).strftime("%a %H:%M")
    except ValueError:
        return "?"
