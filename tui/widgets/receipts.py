"""Receipts by outcome, the top error codes, and the numbers pruned or stopped."""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

from engine.control import protocol as p

STYLE = {
    "delivered": "$success",
    "undelivered": "$error",
    "rejected": "$error",
    "expired": "$warning",
}


class ReceiptsPanel(Static):
    def show(self, snap: p.Snapshot) -> None:
        total = sum(snap.receipts.values()) or 1
        lines = ["[b]Receipts by outcome[/]"]
        for outcome, n in snap.receipts.items():
            style = STYLE.get(outcome, "$text-muted")
            lines.append(f"[{style}]{outcome:<12}[/]{n:>10,} {100 * n / total:5.1f}%")
        if snap.unmatched:
            lines.append(f"[$warning]unmatched   {snap.unmatched:>10,}[/]")
        if snap.webhook_backlog or snap.webhook_dead:
            dead = snap.webhook_dead
            style = "$error" if dead else "$text"
            lines.append(f"[b]Webhooks[/] {snap.webhook_backlog:,} waiting  "
                         f"[{style}]{dead:,} dead letters[/]")  # fmt: skip
        lines.append("[b]Top errors[/]")
        errors = [f"{n:>8,}  {escape(what)}" for what, n in snap.top_errors]
        lines += errors or ["[$text-muted]none[/]"]
        self.update("\n".join(lines))


class NumbersPanel(Static):
    def show(self, snap: p.Snapshot) -> None:
        lines = [
            f"[b]Dead numbers[/] {snap.dead:,}    [b]Stop list[/] {snap.stopped:,}",
            "[b]Latest prunes[/]",
        ]
        lines += [escape(line) for line in snap.prunes] or ["[$text-muted]none yet[/]"]
        self.update("\n".join(lines))
