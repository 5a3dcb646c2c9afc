"""volley tui: the operators' terminal UI, attached to the engine's control socket.

When no engine runs it shows the store, read-only, and says so; when the engine
goes away or comes back it shows that and reconnects by itself. `q` quits.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval", type=float, default=0.25, metavar="S", help="seconds between updates"
    )


def main(args: argparse.Namespace) -> int:
    from engine import config
    from tui.app import VolleyApp
    from tui.source import ControlSource

    cfg = config.load(args.config)
    VolleyApp(ControlSource(cfg, interval=args.interval)).run()
    return 0
