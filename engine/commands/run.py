"""Run the engine: send the queue to the operators in engine.toml.

With --until-drained it exits 0 once nothing is ready or in flight and every
sent message has its final receipt or has waited receipt_timeout; messages
deferred to a later window do not keep it running. --timeout ends the run with
exit 1 if it is not drained by then. SIGINT/SIGTERM: stop taking new work, wait
for in-flight responses (bounded), unbind, exit 0; a second signal exits at once
(nothing is lost: every state change is already committed).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from functools import partial


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--until-drained", action="store_true", help="exit 0 once drained")
    parser.add_argument(
        "--timeout", type=float, metavar="S", help="give up after S seconds (exit 1)"
    )
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    parser.add_argument("--quiet", action="store_true", help="no progress display")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "t": round(record.created, 3),
                "level": record.levelname.lower(),
                "logger": record.name,
                "msg": record.getMessage(),
            },
            ensure_ascii=False,
        )


def setup_logging(as_json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("volley")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def main(args: argparse.Namespace) -> int:
    import trio

    from engine import config
    from engine.control.server import ControlError, claim_path
    from engine.service import Engine
    from engine.store import StoreError
    from engine.store.setup import open_store

    cfg = config.load(args.config)
    setup_logging(args.log_json)
    if not cfg.operators:
        print("volley run: no [[operators]] in the config", file=sys.stderr)
        return 2
    control = cfg.resolve(cfg.control.socket)
    try:
        claim_path(control)
        store = open_store(cfg)
    except (StoreError, ControlError) as exc:
        print(f"volley run: {exc}", file=sys.stderr)
        return 1
    if getattr(store, "recovered", 0):
        logging.getLogger("volley").info(
            "recovered %d message(s) in flight at the last stop (%s)",
            store.recovered,
            cfg.store.on_crash_inflight,
        )
    code = 0

    async def amain() -> None:
        nonlocal code
        engine = Engine(cfg, store, control=control)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(partial(engine.run, until_drained=args.until_drained))
                nursery.start_soon(_signals, signals, engine, nursery)
                if args.until_drained and sys.stderr.isatty() and not args.quiet:
                    nursery.start_soon(_progress, engine)
                if args.timeout:
                    with trio.move_on_after(args.timeout):
                        await engine.stopped.wait()
                    if not engine.stopped.is_set():
                        code = 1
                        logging.getLogger("volley").error("--timeout: not drained, stopping")
                        await engine.stop()
                await engine.stopped.wait()
                nursery.cancel_scope.cancel()

    try:
        trio.run(amain)
    finally:
        store.close()
    return code


async def _signals(signals, engine, nursery) -> None:
    count = 0
    async for _ in signals:
        count += 1
        if count == 1:
            logging.getLogger("volley").info("signal: stop taking work, drain, unbind")
            nursery.start_soon(engine.stop)
        else:
            logging.getLogger("volley").info("second signal: exiting now (nothing is lost)")
            nursery.cancel_scope.cancel()


async def _progress(engine) -> None:
    import trio
    from rich.console import Console
    from rich.progress import Progress

    # on stderr, with the log lines (stdout may be a pipe)
    with Progress(transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("sending", total=None)
        while True:
            t = engine.totals
            bar.update(
                task,
                completed=t["submitted"],
                description=f"sent {t['submitted']:,}  receipts {t['receipts']:,}  "
                f"failed {t['failed']:,}",
            )
            await trio.sleep(0.5)
