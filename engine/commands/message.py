"""One message by its batch and the upstream's id: state, number, parts, SMSC ids,
attempts, reason, receipt status and error, times. Exit 1 if there is no such message.

Reads the store (read-only; never blocks a running engine). --json prints what
the HTTP API answers for GET /v1/batches/BATCH/messages/ID.
"""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("batch", metavar="BATCH", help="the batch id")
    parser.add_argument("id", metavar="ID", help="the message's id in its batch (its `id` field)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    from engine import config
    from engine.lookup import message_view
    from engine.store import StoreError
    from engine.wiring import open_store

    cfg = config.load(args.config)
    try:
        store = open_store(cfg, readonly=True)
    except StoreError as exc:
        print(f"volley message: {exc}", file=sys.stderr)
        return 1
    try:
        msg = store.find(args.batch, args.id)
        engagement = None if msg is None else store.engagement(msg.id)
        transitions = None if msg is None else store.message_history(msg.id)
    finally:
        store.close()
    if msg is None:
        print(f"volley message: no message {args.id!r} in batch {args.batch!r}", file=sys.stderr)
        return 1
    view = message_view(msg, engagement, transitions)
    if args.json:
        print(json.dumps(view, ensure_ascii=False))
        return 0
    _print(view)
    return 0


def _print(view: dict) -> None:
    receipt = view["receipt"]
    rows = [
        ("batch", view["batch"]),
        ("id", view["id"]),
        ("to", view["to"]),
        ("from", view["from"]),
        ("kind", view["kind"]),
        ("route", view["route"]),
        ("state", view["state"]),
        ("parts", str(view["parts"]) + _part_states(view["part_states"])),
        ("smsc ids", " ".join(view["smsc_ids"]) or "-"),
        ("attempts", view["attempts"]),
        ("error", view["error"] or "-"),
        ("reason", view["reason"] or "-"),
        ("submit status", view["submit_status"] or "-"),
        ("receipt", _receipt(receipt) if receipt else "-"),
        ("created", view["created"]),
        ("updated", view["updated"]),
        ("due", view["due"] or "-"),
        ("not before", view["not_before"] or "-"),
        ("expires", view["expires"] or "-"),
        ("text", view["text"]),
        *[("link", f"{link['code']} -> {link['url']}") for link in view["links"]],
        ("clicks", _clicks(view)),
        ("replies", view["replies"] or "-"),
        ("opted out", view["opted_out"] or "-"),
    ]
    for label, value in rows:
        print(f"{label:<14}{value}")
    print("history")
    for step in view["history"]:
        detail = ", ".join(
            f"{k} {' '.join(v) if isinstance(v, list) else v}"
            for k, v in step.items()
            if k not in ("at", "event") and v not in (None, "", [])
        )
        print(f"  {step['at']}  {step['event']}" + (f" ({detail})" if detail else ""))


def _clicks(view: dict) -> str:
    clicks = view["clicks"]
    if not clicks:
        return "-"
    first, last = clicks[0]["at"], clicks[-1]["at"]
    return f"{view['click_count']} (first {first}, last {last})"


def _part_states(states: list[str]) -> str:
    return f" ({', '.join(s or 'awaiting receipt' for s in states)})" if len(states) > 1 else ""


def _receipt(receipt: dict) -> str:
    text = receipt["stat"]
    if receipt["err"] is not None:
        text += f" err {receipt['err']:03d}"
    if receipt["network_error"] is not None:
        text += f" network error {receipt['network_error']}"
    return text
