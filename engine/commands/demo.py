"""volley demo: what `make demo` runs, on the embedded defaults.

Starts the bundled SMSC simulator on 127.0.0.1 (a few percent of undelivered
and expired receipts, like a real network), enqueues the sample re-activation
campaign into an LMDB store in ./var/demo, runs the engine until every message
has its final receipt, and prints the outcome. Then it shows the protocol
layer at work: each message's encoding, parts and first submit_sm bytes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from importlib import resources
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", help="a JSON Lines campaign (default: the bundled sample)")
    parser.add_argument("--dir", default="var/demo", help="where the demo store goes")
    parser.add_argument("--tps", type=float, default=5.0, help="the demo operator's rate")


def _campaign(path: str | None) -> tuple[str, list[str]]:
    if path:
        return path, Path(path).read_text(encoding="utf-8").splitlines()
    sample = resources.files("engine.data") / "sample_campaign.jsonl"
    return "sample_campaign.jsonl", sample.read_text(encoding="utf-8").splitlines()


def main(args: argparse.Namespace) -> int:
    import io
    from functools import partial

    import trio
    from rich.console import Console
    from rich.table import Table

    from engine import config, ingest
    from engine.service import Engine
    from engine.smsc.options import Options
    from engine.smsc.server import Smsc
    from engine.store.setup import open_store

    console = Console()
    name, lines = _campaign(args.file)
    folder = Path(args.dir)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    db_path = folder.resolve() / "volley.lmdb"
    smsc = Smsc(
        Options(
            port=0,
            receipt_delay=0.5,
            receipt_jitter=1.0,
            undeliv_fraction=0.1,
            expired_fraction=0.05,
            seed=1,
        )
    )

    async def amain() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(smsc.serve)
            console.print(f"[bold]SMSC simulator[/] listening on 127.0.0.1:{port}")
            cfg = config.parse(
                f'[store]\npath = "{db_path}"\n'
                f'[[operators]]\nname = "demo"\nport = {port}\npassword = "secret"\n'
                f"tps = {args.tps}\nwindow = 10\n".encode()
            )
            store = open_store(cfg)
            result = store.enqueue(
                "demo-campaign",
                ingest.messages(io.StringIO("\n".join(lines)), name, ingest.Validator(cfg)),
                now=time.time(),
            )
            console.print(f"[bold]enqueued[/] batch {result.batch}: {result.queued} messages")
            t0 = time.monotonic()
            engine = Engine(cfg, store)
            await nursery.start(partial(engine.run, until_drained=True))
            with console.status("sending at the operator's pace, waiting for receipts…"):
                await engine.stopped.wait()
            console.print(f"[bold]drained[/] in {time.monotonic() - t0:.1f} s")
            _outcome(console, store, Table)
            store.close()
            nursery.cancel_scope.cancel()

    trio.run(amain)
    _protocol_table(console, lines, Table)
    console.print(f"simulator counters: {json.dumps(smsc.counters.values)}")
    return 0


def _outcome(console, store, Table) -> None:
    table = Table(title="Outcome per message")
    for col in ("id", "to", "state", "err", "SMSC ids"):
        table.add_column(col)
    for msg in store.messages():
        err = "" if msg.err in (None, 0) else str(msg.err)
        table.add_row(msg.ext_id, msg.to, msg.state, err, ",".join(msg.smsc_ids))
    console.print(table)
    states = {k: v for k, v in store.counts().states.items() if v}
    console.print("by state: " + ", ".join(f"{k} {v}" for k, v in states.items()))


def _protocol_table(console, lines, Table) -> None:
    from engine.config import OperatorConfig
    from engine.smpp import codec, encoding
    from engine.submit import SubmitBuilder

    builder = SubmitBuilder(OperatorConfig(name="demo"))
    table = Table(title="The protocol layer: encodings and parts", show_lines=True)
    for col in ("to", "text", "coding", "parts", "octets/part", "first submit_sm"):
        table.add_column(col, overflow="fold")
    total = 0
    for line in lines:
        msg = json.loads(line)
        enc, n = encoding.count_parts(msg["text"])
        parts = builder.build(msg["to"], msg["text"], msg.get("from", "Volley"))
        total += n
        table.add_row(
            msg["to"],
            msg["text"][:60] + ("…" if len(msg["text"]) > 60 else ""),
            enc.value,
            str(n),
            ",".join(str(len(p.short_message)) for p in parts),
            codec.encode(parts[0])[:24].hex(" ") + " …",
        )
    console.print(table)
    console.print(f"{len(lines)} messages, {total} SMS parts to bill.")
