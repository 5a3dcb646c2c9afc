"""Drop a bind's connection in the running engine and bind again (its in-flight
messages are treated as a lost connection's: put back, per on_crash_inflight).

Exit 1 when no engine runs, 2 when it has no such bind.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bind", metavar="BIND", help="a bind, e.g. mts#0 (see volley status)")


def main(args: argparse.Namespace) -> int:
    from engine import config
    from engine.commands.steer import send
    from engine.control import protocol as p

    cfg = config.load(args.config)
    return send(cfg, "reconnect", p.Reconnect(bind=args.bind))
