"""Batches with progress bars: delivered / failed / skipped of total; clicks as they come."""

from __future__ import annotations

from rich.text import Text

from engine.control import protocol as p
from tui.widgets.table import SyncedTable

BAR = 20
DONE_GOOD = ("delivered",)
DONE_BAD = ("undelivered", "expired", "rejected", "failed", "unknown", "deleted")


class BatchesTable(SyncedTable):
    COLUMNS = (
        "batch", "progress", "msgs", "delivered", "failed", "skipped", "waiting", "clickers",
        "clicks", "replies",
    )  # fmt: skip

    def rows_of(self, snap: p.Snapshot) -> dict[str, tuple[object, ...]]:
        paused = set(snap.paused_batches)
        return {
            b: _row(b, c, b in paused, snap.engagement.get(b, {}))
            for b, c in sorted(snap.batches.items())
        }


def _row(
    batch: str, counts: dict[str, int], paused: bool, engaged: dict[str, int]
) -> tuple[object, ...]:
    total = sum(counts.values())
    good = sum(counts.get(s, 0) for s in DONE_GOOD)
    bad = sum(counts.get(s, 0) for s in DONE_BAD)
    skipped = counts.get("skipped", 0)
    waiting = total - good - bad - skipped
    name = Text(batch + (" (paused)" if paused else ""), style="yellow" * paused, end="")
    return (
        name,
        bar(good, bad, skipped, total),
        f"{total:,}",
        f"{good:,}",
        f"{bad:,}",
        f"{skipped:,}",
        f"{waiting:,}",
        f"{engaged.get('clickers', 0):,}",
        f"{engaged.get('clicks', 0):,}",
        f"{engaged.get('replies', 0):,}",
    )


def bar(good: int, bad: int, skipped: int, total: int, width: int = BAR) -> Text:
    """A text progress bar: green delivered, red failed, yellow skipped, dim the rest."""
    if total <= 0:
        return Text("░" * width, style="dim", justify="left", end="")
    cells = [round(width * n / total) for n in (good, bad, skipped)]
    text = Text(justify="left", end="")
    for n, style in zip(cells, ("green", "red", "yellow"), strict=True):
        text.append("█" * n, style=style)
    text.append("░" * max(0, width - sum(cells)), style="dim")
    text.append(f" {100 * (good + bad + skipped) / total:3.0f}%")
    return text
