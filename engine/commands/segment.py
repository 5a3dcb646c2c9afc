"""volley segment: not implemented yet (see issue 9)."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    print("volley segment: not implemented yet (issue 9)", file=sys.stderr)
    return 1
