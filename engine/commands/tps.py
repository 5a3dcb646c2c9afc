"""Set an operator's TPS in the running engine (submit_sm per second, every part counted,
across its binds), until the engine stops or it is set again.

Exit 1 when no engine runs, 2 on a bad number or an unknown operator.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("operator", metavar="OPERATOR", help="an operator of engine.toml")
    parser.add_argument("tps", metavar="N", help="submit_sm per second, > 0")


def main(args: argparse.Namespace) -> int:
    import math

    from engine import config
    from engine.cli import UsageError
    from engine.commands.steer import send
    from engine.control import protocol as p

    try:
        tps = float(args.tps)
    except ValueError:
        tps = math.nan
    if not (math.isfinite(tps) and tps > 0):
        raise UsageError(f"N: {args.tps!r}: expected a number > 0")
    cfg = config.load(args.config)
    return send(cfg, "tps", p.SetTps(operator=args.operator, tps=tps))
