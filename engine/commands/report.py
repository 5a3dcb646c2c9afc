"""volley report: what each batch (a campaign's step) and each campaign did.

Per batch and per campaign: messages, parts, each final state, skipped by
reason, delivered, unique clickers, clicks, replies, opt-outs, the click-through
rate (unique clickers / delivered), and the cost in parts that reached an SMSC
(and in money where [[operators]] price_per_part is set). Without BATCH or
--campaign: every batch. --json and --csv print the same for scripts; --chart
FILE.png draws each campaign's funnel per step (needs the `chart` extra,
matplotlib). Reads the store (read-only). An unknown batch or campaign: exit 1.
"""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("batches", nargs="*", metavar="BATCH", help="batches to report")
    parser.add_argument("--campaign", metavar="NAME", help="every batch of this campaign")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object")
    fmt.add_argument("--csv", action="store_true", help="CSV: a row per batch, per campaign")
    parser.add_argument("--chart", metavar="FILE.png", help="also draw the funnels (matplotlib)")


def main(args: argparse.Namespace) -> int:
    from engine import config, report
    from engine.cli import UsageError
    from engine.store import StoreError
    from engine.wiring import open_store

    cfg = config.load(args.config)
    if args.chart:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--chart needs matplotlib: pip install 'smsvolley[chart]'") from None
    try:
        store = open_store(cfg, readonly=True)
    except StoreError as exc:
        print(f"volley report: {exc}", file=sys.stderr)
        return 1
    try:
        result = report.build(cfg, store, args.batches, args.campaign)
    except report.UnknownBatch as exc:
        print(f"volley report: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        sys.stdout.write(report.to_json(result).decode() + "\n")
    elif args.csv:
        sys.stdout.write(report.to_csv(result))
    else:
        print(report.render(result))
    if args.chart:
        report.chart(result, args.chart)
        print(f"chart written to {args.chart}", file=sys.stderr)
    return 0
