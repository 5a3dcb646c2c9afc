"""volley bench: not implemented yet (see issue 5)."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    print("volley bench: not implemented yet (issue 5)", file=sys.stderr)
    return 1
