"""Export a batch's messages for a CRM: id, number, state, parts, SMSC ids, error, times.

CSV with a header (the default, or --csv) or JSON Lines (--json: one object per
line), streamed: one message at a time, whatever the batch's size. --state
keeps those states (repeat it or separate with commas); --since keeps messages
whose last change is at or after a time (2026-11-23T10:00:00+03:00), a date
(2026-11-23, UTC) or a duration ago (2h). Reads the store read-only.
"""

from __future__ import annotations

import argparse
import csv
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", required=True, metavar="B", help="the batch to export")
    parser.add_argument(
        "--state", action="append", default=[], metavar="S", help="only these states"
    )
    parser.add_argument("--since", metavar="T", help="only messages changed at or after T")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV with a header (the default)")
    fmt.add_argument("--json", action="store_true", help="JSON Lines: one object per line")
    parser.add_argument("--output", metavar="FILE", help="write here (default stdout)")


def main(args: argparse.Namespace) -> int:
    from engine import config
    from engine.cli import UsageError
    from engine.lookup import parse_since
    from engine.store import STATES, StoreError
    from engine.wiring import open_store

    cfg = config.load(args.config)
    states = [s.strip() for arg in args.state for s in arg.split(",") if s.strip()]
    for state in states:
        if state not in STATES:
            raise UsageError(f"--state: {state!r}: expected one of {', '.join(STATES)}")
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    try:
        store = open_store(cfg, readonly=True)
    except StoreError as exc:
        print(f"volley messages: {exc}", file=sys.stderr)
        return 1
    try:
        if not store.batch_progress(args.batch):
            print(f"volley messages: no batch {args.batch!r}", file=sys.stderr)
            return 1
        out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout  # noqa: SIM115
        try:
            n = _write(out, store, args.batch, states, since, as_json=args.json)
        finally:
            if args.output:
                out.close()
    finally:
        store.close()
    print(f"{n} message(s)", file=sys.stderr)
    return 0


def _write(out, store, batch: str, states: list[str], since: float | None, as_json: bool) -> int:
    import msgspec

    from engine.lookup import EXPORT_COLUMNS, export_rows

    n = 0
    if as_json:
        encoder = msgspec.json.Encoder()
        for n, row in enumerate(export_rows(store, batch, states, since), 1):  # noqa: B007
            out.write(encoder.encode(row).decode() + "\n")
        return n
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for n, row in enumerate(export_rows(store, batch, states, since), 1):  # noqa: B007
        writer.writerow(row)
    return n
