"""The ``volley`` command line: parses arguments and calls into the engine.

Each subcommand lives in its own module exposing ``configure(parser)`` and
``main(args) -> int``; this file only wires them. Exit codes follow
../shared/docs/interface.md: 0 success, 2 bad usage or bad input, 1 other failure.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("engine.commands.run", "run the engine"),
    "enqueue": ("engine.commands.enqueue", "add a batch of messages to the queue"),
    "cancel": ("engine.commands.cancel", "cancel a batch's queued and scheduled messages"),
    "status": ("engine.commands.status", "counts by state and batch, binds, windows"),
    "message": ("engine.commands.message", "one message: state, SMSC ids, receipt, times"),
    "messages": ("engine.commands.messages", "export a batch's messages (CSV or JSON Lines)"),
    "serve": ("engine.commands.serve", "the HTTP API and /metrics"),
    "pause": ("engine.commands.pause", "pause an operator, a bind or a batch (running engine)"),
    "resume": ("engine.commands.pause", "resume an operator, a bind or a batch"),
    "tps": ("engine.commands.tps", "set an operator's TPS in the running engine"),
    "reconnect": ("engine.commands.reconnect", "reconnect a bind of the running engine"),
    "drain": ("engine.commands.drain", "drain the running engine and stop it"),
    "reload": ("engine.commands.reload", "make the running engine read engine.toml again"),
    "numbers": ("engine.commands.numbers", "dead numbers and the stop list"),
    "webhooks": ("engine.commands.webhooks", "webhook dead letters: list them, send them again"),
    "segment": ("engine.commands.segment", "segment a customer base into batches"),
    "report": ("engine.commands.report", "per batch and campaign: delivered, clicks, replies"),
    "zones": ("engine.commands.zones", "recipients' time zones: the Russian range table"),
    "tui": ("engine.commands.tui", "the operators' terminal UI"),
    "smsc": ("engine.commands.smsc", "the SMSC simulator"),
    "bench": ("engine.commands.bench", "the benchmarks (see bench/README.md)"),
    "demo": ("engine.commands.demo", "the demo that `make demo` runs"),
}


class UsageError(Exception):
    """Bad usage or bad input: exit 2 with the message on stderr."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="volley", description="Volley: a high-throughput SMPP 3.4 sending engine."
    )
    parser.add_argument("--version", action="version", version=f"volley {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(
            name,
            help=help_text,
            description=mod.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,  # docstrings as written
        )
        p.add_argument("--config", default="engine.toml", metavar="PATH", help="engine.toml to use")
        mod.configure(p)
        p.set_defaults(_module=mod)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("smsvolley")
    except PackageNotFoundError:
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"] and argv[1:2] not in (["-h"], ["--help"]):
        from engine.commands import bench

        return bench.dispatch(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    from engine.config import ConfigError

    try:
        return int(args._module.main(args) or 0)
    except (UsageError, ConfigError) as exc:
        print(f"volley {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def entry() -> None:
    sys.exit(main())
