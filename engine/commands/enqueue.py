"""Add a batch of messages to the queue, atomically: every line is queued or none is.

FILE is JSON Lines (one message object per line, see interface.md) or CSV with
a header (to,text[,id,from,kind,not_before,expires]); "-" reads stdin (then
--batch is required). Safe to re-run: a message whose id is already in the
batch, in any state, is not queued again; a line without an id takes its line
number, and without --batch the batch id is the file's name and a hash of its
content, so re-running the same file adds nothing, on any day. Bad input: exit 2
with one line per bad line, FILE:LINE: FIELD: reason, and nothing enqueued.
Safe while an engine runs: it never touches a message the engine holds.
--campaign NAME makes the batch a step of that campaign (--step names it; default
the batch id): its numbers are remembered for replies, reports and segments.
With [links] base set, the URLs of marketing messages become tracked short links.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="JSON Lines or CSV file, or - for stdin")
    parser.add_argument(
        "--batch",
        metavar="ID",
        help="batch id, at most 128 bytes (default: the file's name and a hash of its content)",
    )
    parser.add_argument("--kind", default="marketing", help="default kind for lines without one")
    parser.add_argument("--format", choices=["auto", "jsonl", "csv"], default="auto")
    parser.add_argument(
        "--window",
        metavar="NAME",
        default="",
        help="send this batch in [windows.NAME] instead of each message kind's window",
    )
    parser.add_argument(
        "--campaign", metavar="NAME", default="", help="the campaign it is a step of"
    )
    parser.add_argument(
        "--step", metavar="NAME", default="", help="the step's name (default: the batch id)"
    )
    parser.add_argument(
        "--drop-dead",
        action="store_true",
        help="do not queue messages to pruned numbers (default: queue them; they are "
        "skipped at dispatch, with reason dead, and counted in the batch)",
    )


def main(args: argparse.Namespace) -> int:
    from engine import collector, config, ingest
    from engine.cli import UsageError
    from engine.sched.schedule import Scheduler
    from engine.store import StoreError
    from engine.store.errors import DuplicateId
    from engine.store.store import check_batch_id
    from engine.wiring import open_store

    cfg = config.load(args.config)
    collector.tune()
    name = "<stdin>" if args.file == "-" else args.file
    if args.file == "-" and not args.batch:
        raise UsageError("reading stdin needs --batch ID (to make a re-run idempotent)")
    try:
        batch = args.batch or default_batch(Path(args.file))
        check_batch_id(batch)
    except OSError as exc:
        raise UsageError(f"{name}: {exc.strerror}") from None
    except StoreError as exc:
        raise UsageError(f"--batch: {exc}") from None

    if args.window and args.window not in cfg.windows:
        raise UsageError(f"--window: no [windows.{args.window}] in {args.config}")
    validator = ingest.Validator(
        cfg, default_kind=args.kind, scheduler=Scheduler(cfg), window=args.window
    )
    if args.kind not in validator.kinds:
        raise UsageError(f"--kind: {args.kind!r}: expected one of {sorted(validator.kinds)}")
    try:
        stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"{name}: {exc.strerror}") from None
    try:
        store = open_store(cfg)
    except StoreError as exc:
        print(f"volley enqueue: {exc}", file=sys.stderr)
        return 1
    try:
        show = sys.stderr.isatty() and args.file != "-"
        with stream, _progress(show, _lines(args.file) if show else None) as advance:
            result = store.enqueue(
                batch,
                ingest.messages(stream, name, validator, fmt=args.format),
                now=time.time(),
                progress=advance,
                drop_dead=args.drop_dead,
                campaign=args.campaign,
                segment=(args.step or batch) if args.campaign else "",
            )
    except ingest.IngestError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        print(f"volley enqueue: nothing enqueued ({len(exc.lines)} bad lines)", file=sys.stderr)
        return 2
    except DuplicateId as exc:
        print(f"{name}:{exc.line}: id: {exc.ext_id!r} is also on line {exc.first}, with "
              "different content", file=sys.stderr)  # fmt: skip
        print("volley enqueue: nothing enqueued", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"volley enqueue: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(
        f"batch {result.batch}: {result.queued} queued"
        + (f" ({result.scheduled} scheduled for later)" if result.scheduled else "")
        + (f", {result.duplicates} already there" if result.duplicates else "")
        + (f", {result.dead} to pruned numbers (will be skipped)" if result.dead else "")
        + (f", {result.stopped} to stop-listed numbers (will be skipped)" if result.stopped else "")
        + (f", {result.dropped} to pruned numbers dropped" if result.dropped else "")
    )
    if validator.default_zone:
        print(
            f"{validator.default_zone} message(s) in a send window with no known zone: "
            f"timed in {cfg.defaults.timezone} ([defaults] timezone)"
        )
    return 0


def default_batch(path: Path) -> str:
    """The file's stem and the first 12 hex digits of its content's SHA-256."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    stem = path.stem.encode()[:100].decode(errors="ignore")
    return f"{stem}-{digest.hexdigest()[:12]}"


def _lines(path: str) -> int | None:
    """Lines in the file (one message each, less a CSV header): the bar's total, for its ETA."""
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return None


class _progress:
    """A rich progress bar on stderr with rate and ETA on a terminal; nothing otherwise."""

    def __init__(self, enabled: bool, total: int | None = None) -> None:
        self.enabled = enabled
        self.total = total

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task) -> Text:
                return Text(f"{task.speed:,.0f} msg/s" if task.speed else "")

        self.bar = Progress(
            "{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            Rate(),
            TimeRemainingColumn(),
            transient=True,
            console=Console(stderr=True),
        )
        self.bar.__enter__()
        task = self.bar.add_task("enqueueing", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)
