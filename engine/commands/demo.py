"""volley demo: what `make demo` runs.

Until the engine lands it shows the protocol layer at work: the bundled sample
re-activation campaign, each message's encoding, its parts, and the bytes of
its first submit_sm as they would go on the wire.
"""

from __future__ import annotations

import argparse
import json
from importlib import resources


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", help="a JSON Lines campaign (default: the bundled sample)")


def main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from engine.config import OperatorConfig
    from engine.smpp import codec, encoding
    from engine.submit import SubmitBuilder

    if args.file:
        with open(args.file, encoding="utf-8") as f:
            lines = f.read().splitlines()
    else:
        sample = resources.files("engine.data") / "sample_campaign.jsonl"
        lines = sample.read_text(encoding="utf-8").splitlines()
    builder = SubmitBuilder(OperatorConfig(name="demo"))
    table = Table(title="Sample campaign through Volley's protocol layer", show_lines=True)
    for col in ("to", "text", "coding", "parts", "octets/part", "first submit_sm"):
        table.add_column(col, overflow="fold")
    total = 0
    for line in lines:
        msg = json.loads(line)
        enc, n = encoding.count_parts(msg["text"])
        parts = builder.build(msg["to"], msg["text"], msg.get("from", "Volley"))
        wire = codec.encode(parts[0])
        total += n
        table.add_row(
            msg["to"],
            msg["text"][:60] + ("…" if len(msg["text"]) > 60 else ""),
            enc.value,
            str(n),
            ",".join(str(len(p.short_message)) for p in parts),
            wire[:24].hex(" ") + " …",
        )
    console = Console()
    console.print(table)
    console.print(f"{len(lines)} messages, {total} SMS parts to bill.")
    return 0
