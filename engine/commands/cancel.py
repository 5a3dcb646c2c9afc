"""Cancel a batch: its queued and scheduled messages become `cancelled`.

Works on the store, whether or not an engine runs (one write transaction; the
engine never queues a cancelled batch's message again). Messages already in
flight or sent are left alone (they have gone, or are going, to the SMSC) and
reported. An unknown batch: exit 1.
"""

from __future__ import annotations

import argparse
import sys
import time


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("batch", metavar="BATCH", help="the batch id")


def main(args: argparse.Namespace) -> int:
    from engine import config
    from engine.cli import UsageError
    from engine.store import StoreError
    from engine.store.store import check_batch_id
    from engine.wiring import open_store

    cfg = config.load(args.config)
    try:
        check_batch_id(args.batch)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    try:
        store = open_store(cfg)
    except StoreError as exc:
        print(f"volley cancel: {exc}", file=sys.stderr)
        return 1
    try:
        n = store.cancel_batch(args.batch, time.time())
        progress = store.batch_progress(args.batch)
    except StoreError as exc:
        print(f"volley cancel: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    going = progress.get("inflight", 0)
    print(f"batch {args.batch}: {n} cancelled")
    if going:
        print(f"{going} already in flight: they go on (sent is sent)")
    return 0
