"""Webhook dead letters: the events `volley serve` gave up on, listed or sent again.

  volley webhooks dead [--limit N] [--json]   newest first: when, event, type, tries, error
  volley webhooks replay [--limit N]          POST them again, oldest first

A replay sends each dead letter's body as it was first POSTed, to [webhooks]
url, signed with the secret of [webhooks] secret_env, with its X-Volley-Event
id (a receiver that saw it already sees a repeat) and `X-Volley-Replay: 1`. A
2xx answer takes the letter off the list; the first failure stops the replay
(the receiver is still not taking them) and exits 1, the rest kept for a later
try. It works whether or not `volley serve` runs (the store's transactions keep
them apart).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime

REPLAY_COMMIT_EVERY = 100  # delivered letters taken off the list per write transaction


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    dead = sub.add_parser("dead", help="list the dead letters, newest first")
    dead.add_argument("--limit", type=_positive, default=100, help="at most N (default 100)")
    dead.add_argument("--json", action="store_true", help="one JSON array")
    replay = sub.add_parser("replay", help="POST the dead letters again, oldest first")
    replay.add_argument("--limit", type=_positive, default=10_000, help="at most N")
    for action in (dead, replay):  # --config after the action too
        action.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH")


def _positive(raw: str) -> int:
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"{raw!r}: expected a whole number above 0")
    return n


def main(args: argparse.Namespace) -> int:
    from engine import config

    cfg = config.load(args.config)
    with contextlib.ExitStack() as stack:  # the store, and a replay's HTTP client
        code = _act(cfg, args, stack)
    return code


def _act(cfg, args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    from engine.store import StoreError
    from engine.wiring import open_store

    post = _poster(cfg, stack) if args.action == "replay" else None
    try:
        store = open_store(cfg)
    except StoreError as exc:
        print(f"volley webhooks: {exc}", file=sys.stderr)
        return 1
    stack.callback(store.close)
    if post is None:
        return _list(store, args.limit, args.json)
    return _replay(store, args.limit, post)


def _list(store, limit: int, as_json: bool) -> int:
    rows = [_row(seq, index, letter) for seq, index, letter in store.dead_letters(limit)]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("no dead letters")
    for row in rows:
        print(f"{row['at']}  {row['event']:>12}  {row['type'] or '-':8} "
              f"{row['attempts']:>3} tries  {row['error']}")  # fmt: skip
    return 0


def _row(seq: int, index: int, letter) -> dict:
    return {
        "event": f"{seq}.{index}",
        "type": letter.type,
        "at": _iso(letter.at),
        "attempts": letter.attempts,
        "error": letter.error,
        "body": json.loads(letter.body),
    }


Poster = Callable[[str, str, bytes], str | None]  # (event id, type, body) -> error or None


def _poster(cfg, stack: contextlib.ExitStack) -> Poster:
    """POSTs one dead letter to [webhooks] url, signed; returns the error, or None. Its
    HTTP client closes with ``stack``."""
    import httpx

    from engine.cli import UsageError
    from engine.commands.serve import webhook_secret
    from engine.config import seconds
    from engine.webhooks import sign

    secret = webhook_secret(cfg)
    if secret is None:
        raise UsageError("webhooks.url is not set in the config: nowhere to replay to")
    client = stack.enter_context(httpx.Client(timeout=seconds(cfg.webhooks.timeout)))

    def post(event_id: str, kind: str, body: bytes) -> str | None:
        headers = {
            "Content-Type": "application/json",
            "X-Volley-Signature": sign(secret, body),
            "X-Volley-Event": event_id,
            "X-Volley-Event-Type": kind,
            "X-Volley-Replay": "1",
        }
        try:
            answer = client.post(cfg.webhooks.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:200]
        return None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"

    return post


def _replay(store, limit: int, post: Poster) -> int:
    delivered: list[tuple[int, int]] = []
    sent, error = 0, None
    for seq, index, letter in store.dead_letters(limit, oldest_first=True):
        error = post(f"{seq}.{index}", letter.type, letter.body)
        if error is not None:
            print(f"volley webhooks: event {seq}.{index}: {error}; stopped", file=sys.stderr)
            break
        delivered.append((seq, index))
        if len(delivered) >= REPLAY_COMMIT_EVERY:
            sent += store.forget_dead_letters(delivered)
            delivered = []
    sent += store.forget_dead_letters(delivered) if delivered else 0
    left = store.webhook_counts()[1]
    print(f"{sent} dead letter(s) delivered, {left} left")
    return 1 if error is not None else 0


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
