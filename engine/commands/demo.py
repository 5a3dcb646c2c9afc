"""volley demo: what `make demo` runs (grows with every capability)."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def main(args: argparse.Namespace) -> int:
    print("volley demo: nothing to show yet", file=sys.stderr)
    return 0
