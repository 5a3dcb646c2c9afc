"""The benchmarks (see bench/README.md): end to end by default, or one part.

volley bench [e2e] [--messages N] [--json FILE] [--chart FILE.png]
volley bench codec | smsc | store [their options]
"""

from __future__ import annotations

import argparse
import importlib

PARTS = {
    "e2e": "bench.e2e",
    "codec": "bench.codec",
    "smsc": "bench.smsc",
    "store": "bench.store",
    "tui": "bench.tui",
    "segment": "bench.segment",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="[PART] ...",
        help=f"one of {', '.join(PARTS)} (default e2e), then that benchmark's options",
    )


def main(args: argparse.Namespace) -> int:
    return dispatch(args.rest)


def dispatch(argv: list[str]) -> int:
    """Each benchmark parses its own options (the command line passes them through)."""
    rest = list(argv)
    if "--config" in rest:  # benchmarks build their own configuration
        i = rest.index("--config")
        del rest[i : i + 2]
    part = rest.pop(0) if rest and rest[0] in PARTS else "e2e"
    return importlib.import_module(PARTS[part]).main(rest)
