"""Drain the running engine: stop taking new work, finish what is in flight, unbind, exit.

With --wait, return only once the engine has gone (its control socket no
longer answers), or exit 1 after --timeout seconds. Exit 1 when no engine runs.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="return once the engine has exited")
    parser.add_argument(
        "--timeout", type=float, default=120.0, metavar="S", help="--wait at most S seconds"
    )


def main(args: argparse.Namespace) -> int:
    import sys
    import time

    from engine import config
    from engine.commands.steer import send
    from engine.control import protocol as p
    from engine.control.client import Client, ControlUnavailable

    cfg = config.load(args.config)
    code = send(cfg, "drain", p.Drain())
    if code or not args.wait:
        return code
    path = cfg.resolve(cfg.control.socket)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            Client.connect(path, timeout=1.0).close()
        except (ControlUnavailable, TimeoutError):
            print("engine stopped")
            return 0
        time.sleep(0.2)
    print(f"volley drain: the engine still runs after {args.timeout:g}s", file=sys.stderr)
    return 1
