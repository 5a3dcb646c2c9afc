"""volley tui: not implemented yet (see issue 8)."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    print("volley tui: not implemented yet (issue 8)", file=sys.stderr)
    return 1
