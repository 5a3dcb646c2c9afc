"""Counts by state, by batch and by kind; the binds and windows when an engine runs.

Reads the store (read-only; never blocks a running engine). On a store that
does not exist yet it prints zero counts. Counts are of messages, not parts.
"""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def snapshot(cfg) -> dict:
    from engine.store import STATES, Store, StoreError

    try:
        store = Store.open(cfg.resolve(cfg.store.path), readonly=True)
    except StoreError:
        return {
            "states": dict.fromkeys(STATES, 0),
            "batches": {},
            "kinds": {},
            "binds": [],
            "unmatched_receipts": 0,
        }
    try:
        counts = store.counts()
        unmatched = [
            {"ids": u.candidates, "stat": u.stat, "at": u.at} for u in store.list_unmatched(10)
        ]
    finally:
        store.close()
    return {
        "states": counts.states,
        "batches": counts.batches,
        "kinds": counts.kinds,
        "binds": [],
        "unmatched_receipts": counts.unmatched_receipts,
        "unmatched_recent": unmatched,
    }


def main(args: argparse.Namespace) -> int:
    from engine import config

    cfg = config.load(args.config)
    snap = snapshot(cfg)
    if args.json:
        json.dump(snap, sys.stdout, ensure_ascii=False)
        print()
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    states = Table(title="Messages by state")
    states.add_column("state")
    states.add_column("count", justify="right")
    for state, n in snap["states"].items():
        states.add_row(state, f"{n:,}")
    console.print(states)
    if snap["batches"]:
        batches = Table(title="Batches")
        batches.add_column("batch")
        batches.add_column("total", justify="right")
        batches.add_column("by state")
        for batch, per in sorted(snap["batches"].items()):
            detail = ", ".join(f"{k} {v:,}" for k, v in sorted(per.items()))
            batches.add_row(batch, f"{sum(per.values()):,}", detail)
        console.print(batches)
    if snap["unmatched_receipts"]:
        console.print(f"unmatched receipts: {snap['unmatched_receipts']:,} (latest first)")
        for u in snap["unmatched_recent"]:
            console.print(f"  id {u['ids'][0]}  {u['stat']}")
    return 0
