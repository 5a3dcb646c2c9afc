"""Dead numbers and the stop list.

    volley numbers list (--dead | --stopped) [--json]
    volley numbers stop NUMBER... [--reason TEXT]
    volley numbers restore NUMBER...
    volley numbers export (--dead | --stopped | --mo) [--format csv|jsonl] [--output FILE]

Numbers are normalised to E.164 like `volley enqueue` does. A stopped number is
never sent marketing again (nor transactional, unless [stop]
transactional_exempt). A pruned (dead) number is skipped at dispatch until its
prune expires ([prune] prune_ttl); `restore` takes a number off both lists.
Exports are for the CRM: one row per number with its evidence or reason.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = _sub(sub, "list", "the pruned numbers (with evidence) or the stop list")
    which = listing.add_mutually_exclusive_group(required=True)
    which.add_argument("--dead", action="store_true", help="pruned numbers, with evidence")
    which.add_argument("--stopped", action="store_true", help="the stop list")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    stop = _sub(sub, "stop", "add numbers to the stop list")
    stop.add_argument("numbers", nargs="+", metavar="NUMBER")
    stop.add_argument("--reason", default="operator", help="why (kept with the number)")
    restore = _sub(sub, "restore", "take numbers off the dead and stop lists")
    restore.add_argument("numbers", nargs="+", metavar="NUMBER")
    export = _sub(sub, "export", "a list for the CRM, one row per number (or inbound message)")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--dead", action="store_true", help="pruned numbers, with evidence")
    which.add_argument("--stopped", action="store_true", help="the stop list")
    which.add_argument("--mo", action="store_true", help="inbound messages")
    export.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    export.add_argument("--output", metavar="FILE", help="write here (default stdout)")


def _sub(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name, help=help_text, description=help_text, formatter_class=argparse.RawTextHelpFormatter
    )
    # after the action too (volley numbers list --dead --config X), as before sub-commands
    p.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH", help="engine.toml")
    p.set_defaults(numbers=[], dead=False, stopped=False, mo=False, json=False)
    return p


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def dead_rows(store: Any) -> list[dict[str, Any]]:
    return [
        {
            "number": number,
            "pruned_at": _iso(entry.at),
            "expires": _iso(entry.expires),
            "evidence": [{"stat": o.stat, "err": o.err, "at": _iso(o.at)} for o in entry.evidence],
        }
        for number, entry in store.list_dead()
    ]


def stopped_rows(store: Any) -> list[dict[str, Any]]:
    return [
        {"number": number, "reason": entry.reason, "at": _iso(entry.at)}
        for number, entry in store.list_stopped()
    ]


def mo_rows(store: Any) -> list[dict[str, Any]]:
    return [
        {
            "at": _iso(mo.at),
            "from": mo.source,
            "to": mo.destination,
            "text": mo.text,
            "stopped": mo.stopped,
            "stop_rule": mo.stop_rule,
            "batch": mo.batch,  # the campaign step it answers ("": none)
        }
        for mo in store.list_mo()
    ]


def main(args: argparse.Namespace) -> int:
    from engine import config, ingest
    from engine.cli import UsageError
    from engine.store import StoreError
    from engine.wiring import open_store

    cfg = config.load(args.config)
    if args.action in ("stop", "restore"):
        if not args.numbers:
            raise UsageError(f"{args.action}: give at least one NUMBER")
        validator = ingest.Validator(cfg)
        numbers = []
        for raw in args.numbers:
            try:
                numbers.append(validator.number(raw))
            except ingest.BadField as exc:
                raise UsageError(f"{raw}: {exc.reason}") from None
    elif not (args.dead or args.stopped or (args.mo and args.action == "export")):
        raise UsageError(f"{args.action}: say which list: --dead or --stopped")
    readonly = args.action in ("list", "export")
    try:
        store = open_store(cfg, readonly=readonly)
    except StoreError:
        if not readonly:
            raise
        print("[]" if args.json else "(no store yet)")
        return 0
    try:
        if args.action == "stop":
            n = store.stop(numbers, args.reason, time.time())
            print(f"stopped {n} number(s)")
        elif args.action == "restore":
            n = store.restore(numbers)
            print(f"restored {n} entr{'y' if n == 1 else 'ies'}")
        else:
            rows = (
                dead_rows(store)
                if args.dead
                else stopped_rows(store)
                if args.stopped
                else mo_rows(store)
            )
            if args.action == "list":
                _print_list(rows, args)
            else:
                _export(rows, args)
    finally:
        store.close()
    return 0


def _print_list(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        if args.dead:
            evidence = "; ".join(
                f"{e['stat']} err {e['err']} at {e['at']}" for e in row["evidence"]
            )
            print(f"{row['number']}  pruned {row['pruned_at']}  until {row['expires']}  {evidence}")
        else:
            print(f"{row['number']}  {row['reason']}  {row['at']}")
    print(f"{len(rows)} number(s)", file=sys.stderr)


def _export(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    out = io.StringIO()
    if args.format == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        flat = [
            {
                k: (json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v)
                for k, v in r.items()
            }
            for r in rows
        ]
        if flat:
            writer = csv.DictWriter(out, fieldnames=list(flat[0]))
            writer.writeheader()
            writer.writerows(flat)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            f.write(out.getvalue())
    else:
        sys.stdout.write(out.getvalue())
