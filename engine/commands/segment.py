"""volley segment: classify a customer base and enqueue one batch per segment.

CUSTOMERS.csv is a CRM export (UTF-8, with or without BOM; `,` or `;`); the
rules file maps its columns and lists the segments in priority order (see
examples/reactivation.toml). Each segment's batch is `<campaign>-<segment>-
<as-of>` (--campaign overrides the rules' name), so a re-run the same day adds
nothing. --dry-run enqueues nothing and prints, per segment, the recipients,
exclusions by reason, parts by encoding, the cost (where [[operators]]
price_per_part is set), the timing (not_before, expires) and three rendered
samples; duplicate phones name the rows that lost. A rules error (no consent
mapping, a cap [caps] does not cover, an expiry already past) or a segment
error (a message over the part limit) exits 2 and enqueues nothing.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("customers", metavar="CUSTOMERS.csv", help="the customer base, or -")
    parser.add_argument("--rules", required=True, metavar="RULES.toml", help="segments and texts")
    parser.add_argument(
        "--as-of", metavar="DATE", help="the day to count from, YYYY-MM-DD (default: today)"
    )
    parser.add_argument("--dry-run", action="store_true", help="report; enqueue nothing")
    parser.add_argument(
        "--campaign",
        metavar="NAME",
        help="the campaign's name in batch ids and utm_campaign (default: [campaign] name)",
    )
    parser.add_argument(
        "--removal-list",
        metavar="FILE.csv",
        help="where customers of list-only segments go (default: next to the base)",
    )


def main(args: argparse.Namespace) -> int:
    from engine import collector, config
    from engine.cli import UsageError
    from engine.segment import report, rules
    from engine.segment.job import Job
    from engine.store import StoreError

    cfg = config.load(args.config)
    collector.tune()
    try:
        as_of = date.fromisoformat(args.as_of) if args.as_of else date.today()
    except ValueError:
        raise UsageError(f"--as-of: {args.as_of!r}: expected a date such as 2026-11-23") from None
    try:
        the_rules = rules.load(args.rules, campaign=args.campaign)
    except rules.RulesError as exc:
        print(f"volley segment: {exc}", file=sys.stderr)
        return 2
    source = "<stdin>" if args.customers == "-" else args.customers
    removal = Path(args.removal_list) if args.removal_list else None
    if removal is None and args.customers != "-":
        base = Path(args.customers)
        removal = base.with_name(f"{base.stem}-removal-{as_of:%Y%m%d}.csv")
    try:
        stream = (
            sys.stdin
            if args.customers == "-"
            else open(args.customers, encoding="utf-8-sig", newline="")  # noqa: SIM115
        )
    except OSError as exc:
        raise UsageError(f"{source}: {exc.strerror}") from None
    try:
        store = None if args.dry_run and not _exists(cfg) else _open(cfg, args.dry_run)
    except StoreError as exc:
        stream.close()
        print(f"volley segment: {exc}", file=sys.stderr)
        return 1
    try:
        with stream:
            job = Job(cfg, the_rules, store, as_of=as_of, dry_run=args.dry_run,
                      removal_list=removal)  # fmt: skip
            result = job.run(stream, source)
    except rules.RulesError as exc:
        print(f"volley segment: {exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except StoreError as exc:
        print(f"volley segment: {exc}", file=sys.stderr)
        return 1
    finally:
        if store is not None:
            store.close()
    print(report.render(result, args.dry_run))
    if result.errors:
        for error in result.errors:
            print(f"volley segment: {error}", file=sys.stderr)
        print("volley segment: nothing enqueued", file=sys.stderr)
        return 2
    return 0


def _exists(cfg) -> bool:
    return (cfg.resolve(cfg.store.path) / "data.mdb").exists()


def _open(cfg, readonly: bool):
    from engine.wiring import open_store

    return open_store(cfg, readonly=readonly)
