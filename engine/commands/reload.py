"""Make the running engine read engine.toml again, as SIGHUP does (engine/reload.py).

The file is checked here first (it also names the control socket): a bad one
exits 2 naming the key, and the engine is not asked. Exit 0 with what changed;
2 when the engine refuses the new file (a password variable unset, a TLS CA
file it cannot read; the running config stays); 1 when no engine runs.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    del parser  # no options: the engine reads the file it was started with


def main(args: argparse.Namespace) -> int:
    from engine import config
    from engine.commands.steer import send
    from engine.control import protocol as p

    cfg = config.load(args.config)
    return send(cfg, "reload", p.Reload())
