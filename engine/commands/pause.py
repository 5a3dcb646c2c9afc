"""Pause or resume an operator, a bind or a batch of the running engine.

An operator's queued jobs go back (to its failover if it has one); a paused
batch's queued messages wait aside, counted as queued, and keep their place.
Exit 1 when no engine runs, 2 when it has no such operator, bind or batch.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--operator", metavar="N", help="an operator of engine.toml")
    which.add_argument("--bind", metavar="N", help="a bind, e.g. mts#0")
    which.add_argument("--batch", metavar="B", help="a batch id")


def main(args: argparse.Namespace) -> int:
    from engine import config
    from engine.commands.steer import send
    from engine.control import protocol as p

    cfg = config.load(args.config)
    kind = p.Pause if args.command == "pause" else p.Resume
    request = kind(operator=args.operator or "", bind=args.bind or "", batch=args.batch or "")
    return send(cfg, args.command, request)
