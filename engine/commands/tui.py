"""volley tui: the operators' terminal UI, attached to the engine's control socket.

When no engine runs it shows the store, read-only, and says so; when the engine
goes away or comes back it shows that and reconnects by itself. `q` quits.
"""

from __future__ import annotations

import argparse
import math
import sys


def _interval(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 60):
        raise argparse.ArgumentTypeError(f"{raw!r}: expected seconds > 0 and at most 60")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval", type=_interval, default=0.25, metavar="S", help="seconds between updates"
    )


def main(args: argparse.Namespace) -> int:
    from engine import config
    from engine.cli import UsageError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("needs a terminal (stdin and stdout); for scripts: volley status [--json]")
    from tui.app import VolleyApp
    from tui.source import ControlSource

    cfg = config.load(args.config)
    VolleyApp(ControlSource(cfg, interval=args.interval)).run()
    return 0
