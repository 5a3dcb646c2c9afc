"""Counts by state, by batch and by kind; the binds and windows when an engine runs;
the messages waiting that no operator routes (`unroutable`).

Reads the store (read-only; never blocks a running engine). On a store that
does not exist yet it prints zero counts. Counts are of messages, not parts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def snapshot(cfg, store=None) -> dict:
    """The store's side of status; ``store``: one already open (never opened twice in a
    process: closing the second copy would drop the first's LMDB locks)."""
    from engine.sched.schedule import windows_now
    from engine.store import STATES, Store, StoreError

    now = time.time()
    snap = {
        "states": dict.fromkeys(STATES, 0),
        "batches": {},
        "kinds": {},
        "binds": [],
        "unmatched_receipts": 0,
        "default_zone": 0,
        "unroutable": 0,
        "unmatched_recent": [],
        "windows": windows_now(cfg, now),
        "scheduled_by_hour": {},
        "webhooks": {
            "url": cfg.webhooks.url or None,
            "backlog": 0,
            "dead_letters": 0,
            "oldest": None,
        },
    }
    own = store is None
    try:
        store = Store.open(cfg.resolve(cfg.store.path), readonly=True) if own else store
    except StoreError:
        return snap
    try:
        counts = store.counts()
        unmatched = store.list_unmatched(10)
        by_hour = store.scheduled_by_hour()
        backlog, dead, oldest = store.webhook_counts()
    finally:
        if own:
            store.close()
    snap.update(
        states=counts.states,
        batches=counts.batches,
        kinds=counts.kinds,
        unmatched_receipts=counts.unmatched_receipts,
        default_zone=counts.zone_default,
        unroutable=counts.unroutable,
        unmatched_recent=[{"ids": u.candidates, "stat": u.stat, "at": u.at} for u in unmatched],
        scheduled_by_hour={
            datetime.fromtimestamp(h, UTC).isoformat(timespec="minutes"): n
            for h, n in sorted(by_hour.items())
        },
    )
    snap["webhooks"].update(backlog=backlog, dead_letters=dead, oldest=_iso(oldest))
    return snap


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def live(cfg, snap: dict) -> dict:
    """The running engine's view, over the control socket; ``snap`` unchanged if none runs."""
    import msgspec

    from engine.control.client import Client, ControlUnavailable

    try:
        with Client.connect(cfg.resolve(cfg.control.socket)) as client:
            s = client.snapshot()
    except (ControlUnavailable, TimeoutError):
        return snap | {"engine": {"running": False}}
    return snap | {
        "engine": {"running": True, "pid": s.pid, "rates": s.rates, "totals": s.totals},
        "states": s.states,
        "batches": s.batches,
        "kinds": s.kinds,
        "paused_batches": s.paused_batches,
        "unmatched_receipts": s.unmatched,
        "default_zone": s.default_zone,
        "unroutable": s.unroutable,
        "operators": msgspec.to_builtins(s.operators),
        "binds": msgspec.to_builtins(s.binds),
        "top_errors": s.top_errors,
    }


def main(args: argparse.Namespace) -> int:
    from engine import config

    cfg = config.load(args.config)
    snap = live(cfg, snapshot(cfg))
    if args.json:
        json.dump(snap, sys.stdout, ensure_ascii=False)
        print()
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    engine = snap["engine"]
    if engine["running"]:
        console.print(
            f"engine running (pid {engine['pid']}), {engine['rates'].get('submit', 0):.0f} submit/s"
        )
        binds = Table(title="Binds")
        for col in ("bind", "state", "tps", "window", "submitted", "errors", "last error"):
            binds.add_column(col)
        for b in snap["binds"]:
            binds.add_row(
                b["name"],
                b["state"] + (" (paused)" if b.get("paused") else ""),
                f"{b.get('tps_now', 0):.0f}/{b.get('tps_limit', 0):.0f}",
                f"{b.get('window_used', 0)}/{b.get('window', 0)}",
                f"{b.get('submitted', 0):,}",
                f"{b.get('errors', 0):,}",
                b.get("last_error", ""),
            )
        console.print(binds)
    else:
        console.print("no engine running: counts from the store")
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
    for w in snap["windows"]:
        state = "open" if w["open"] else f"closed, opens {w['next_open']}"
        console.print(f"window {w['kind']} ({w['zone']}): {state}")
    if snap["default_zone"]:
        console.print(
            f"{snap['default_zone']:,} message(s) waiting to be sent are timed in "
            f"{cfg.defaults.timezone} ([defaults] timezone): their number's zone is unknown"
        )
    if snap["unroutable"]:
        console.print(
            f"[bold red]{snap['unroutable']:,} message(s) waiting that no operator routes[/]: "
            "add a prefix or a default route to [[operators]], or `volley cancel` their batch"
        )
    if snap["scheduled_by_hour"]:
        hours = Table(title="Scheduled by due hour (UTC)")
        hours.add_column("hour")
        hours.add_column("messages", justify="right")
        for hour, n in list(snap["scheduled_by_hour"].items())[:48]:
            hours.add_row(hour, f"{n:,}")
        console.print(hours)
    hooks = snap["webhooks"]
    if hooks["url"] or hooks["backlog"] or hooks["dead_letters"]:
        since = f", oldest {hooks['oldest']}" if hooks["oldest"] else ""
        style = "bold red" if hooks["dead_letters"] else "default"
        console.print(
            f"webhooks {hooks['url'] or '(no [webhooks] url)'}: {hooks['backlog']:,} waiting"
            f"{since}; [{style}]{hooks['dead_letters']:,} dead-lettered[/]"
        )
    if snap["unmatched_receipts"]:
        console.print(f"unmatched receipts: {snap['unmatched_receipts']:,} (latest first)")
        for u in snap["unmatched_recent"]:
            console.print(f"  id {u['ids'][0]}  {u['stat']}")
    return 0
