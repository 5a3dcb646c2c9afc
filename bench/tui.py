"""TUI benchmark: the cost of one screen update with 100 binds and 1,000 batches.

    .venv/bin/python -m bench.tui [--binds N] [--batches N] [--updates N]

Runs the real app headless (App.run_test) on generated snapshots whose counts
change every update, and times show + render per snapshot. The baseline,
measured in the same run, rebuilds both tables from scratch on every update
(what a naive dashboard does, and what flickers). The budget at 4 Hz is 250 ms
per update; the figure that matters is the share of it one update takes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from engine.control import protocol as p
from tui.app import VolleyApp
from tui.source import FixedSource
from tui.widgets.table import SyncedTable

BUDGET_MS = 250.0


def snapshot(binds: int, batches: int, tick: int) -> p.Snapshot:
    return p.Snapshot(
        at=float(tick),
        operators=[p.OperatorView(name=f"op{i}", tps_limit=100.0) for i in range(10)],
        binds=[
            p.BindView(
                name=f"op{i % 10}#{i // 10}",
                operator=f"op{i % 10}",
                state="bound",
                tps_now=float((i + tick) % 100),
                window=64,
                window_used=(i * tick) % 64,
                submitted=1000 * tick + i,
            )
            for i in range(binds)
        ],
        batches={
            f"campaign-{i:04d}": {"delivered": 10 * tick + i, "sent": 50, "queued": 1000 - tick}
            for i in range(batches)
        },
        states={"queued": 1000 - tick, "delivered": 10 * tick},
        history=[float((tick + i) % 300) for i in range(300)],
        rates={"submit": 250.0, "receipts": 240.0},
        events=[f"event {tick} {j}" for j in range(5)],
    )


async def measure(binds: int, batches: int, updates: int, rebuild: bool) -> list[float]:
    app = VolleyApp(FixedSource(snapshot(binds, batches, 0)))
    times = []
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        for tick in range(1, updates + 1):
            snap = snapshot(binds, batches, tick)
            t0 = time.perf_counter()
            if rebuild:
                for table in app.main.query(SyncedTable):
                    table.clear()
                    table._shown.clear()
            app.main.show(snap)
            await pilot.pause()  # let the screen render the change
            times.append((time.perf_counter() - t0) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.tui", description=__doc__.split("\n")[0])
    ap.add_argument("--binds", type=int, default=100)
    ap.add_argument("--batches", type=int, default=1000)
    ap.add_argument("--updates", type=int, default=20)
    args = ap.parse_args(argv)
    synced = asyncio.run(measure(args.binds, args.batches, args.updates, rebuild=False))
    rebuilt = asyncio.run(measure(args.binds, args.batches, args.updates, rebuild=True))
    ms, base = statistics.median(synced), statistics.median(rebuilt)
    print(f"{args.binds} binds, {args.batches} batches, {args.updates} updates at 160x48")
    print(
        f"in-place update: median {ms:.1f} ms, max {max(synced):.1f} ms "
        f"({100 * ms / BUDGET_MS:.0f}% of the 250 ms budget at 4 Hz)"
    )
    print(f"full rebuild (baseline): median {base:.1f} ms; in-place is {base / ms:.1f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
