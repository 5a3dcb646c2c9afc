"""Recipients' time zones: the Russian number-range table, and what a number resolves to.

    volley zones import FILE... [--output PATH] [--skip-bad]
    volley zones lookup NUMBER... [--json]

`import` reads the numbering registry's published CSV files (DEF-9xx.csv for
mobiles; ABC-*.csv too if given), in cp1251 or UTF-8, with or without the
newer "Территория ГАР" and "ИНН" columns, and replaces the range table in one
rename: at [defaults] zone_ranges if set, else ru-def-ranges.csv in the store's
folder (read from then on instead of the shipped seed). A bad row is reported
as FILE:LINE: FIELD: reason and nothing is replaced, unless --skip-bad.
Running engines read the new table when they next start.

`lookup` prints the zone each number is timed in, and why (prefix table, range
table with its region, phonenumbers, or the default).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["import", "lookup"])
    parser.add_argument("args", nargs="+", metavar="FILE|NUMBER")
    parser.add_argument("--output", metavar="PATH", help="import: write the table here")
    parser.add_argument(
        "--skip-bad", action="store_true", help="import: leave bad rows out instead of refusing"
    )
    parser.add_argument("--json", action="store_true", help="lookup: one JSON array")


def main(args: argparse.Namespace) -> int:
    from engine import config

    cfg = config.load(args.config)
    if args.action == "import":
        return _import(cfg, args)
    return _lookup(cfg, args)


def _import(cfg, args: argparse.Namespace) -> int:
    from engine.cli import UsageError
    from engine.zones import build, registry, table

    try:
        compiled = registry.compile_files([Path(a) for a in args.args])
    except registry.RegistryError as exc:
        raise UsageError(str(exc)) from None
    for line in compiled.errors:
        print(line, file=sys.stderr)
    if compiled.error_count > len(compiled.errors):
        print(f"... {compiled.error_count - len(compiled.errors)} more", file=sys.stderr)
    if compiled.error_count and not args.skip_bad:
        print(
            f"volley zones: {compiled.error_count} bad row(s): the table was not replaced "
            "(--skip-bad leaves them out)",
            file=sys.stderr,
        )
        return 2
    if not compiled.ranges:
        raise UsageError(f"{', '.join(args.args)}: no ranges: the table was not replaced")
    target = Path(args.output) if args.output else table.import_target(cfg)
    previous = _previous(cfg, target)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    source = f"{', '.join(args.args)}, imported {when}"
    text = table.render(compiled.ranges, build.header(compiled, source, "`volley zones import`"))
    table.write_atomic(target, text)
    skipped = ", ".join(f"{n:,} {why}" for why, n in compiled.skipped.items())
    print(
        f"{len(compiled.ranges):,} ranges from {compiled.rows:,} rows"
        + (f" ({skipped} skipped)" if skipped else "")
        + (f", {compiled.error_count:,} bad row(s) left out" if compiled.error_count else "")
        + f" written to {target}"
        + (f" (was {previous})" if previous else "")
    )
    if args.output and not cfg.defaults.zone_ranges:
        print(f"set [defaults] zone_ranges = {str(target)!r} to use it", file=sys.stderr)
    return 0


def _previous(cfg, target: Path) -> str:
    from engine.zones import table

    try:
        old = table.load(target if target.exists() else table.configured_path(cfg))
    except table.RangeTableError:
        return ""
    return f"{len(old):,} ranges, {old.source}"


def _lookup(cfg, args: argparse.Namespace) -> int:
    from engine import ingest
    from engine.cli import UsageError
    from engine.sched.schedule import Scheduler

    validator = ingest.Validator(cfg)
    zones = Scheduler(cfg).zones
    rows = []
    for raw in args.args:
        try:
            number = validator.number(raw)
        except ingest.BadField as exc:
            raise UsageError(f"{raw}: {exc.reason}") from None
        zone, source = zones.resolve(number)
        rows.append(
            {"number": number, "zone": zone.key, "source": source, "region": zones.region(number)}
        )
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        for row in rows:
            region = f" ({row['region']})" if row["region"] else ""
            print(f"{row['number']}  {row['zone']}  {row['source']}{region}")
    return 0
