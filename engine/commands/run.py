"""Run the engine: send the queue to the operators in engine.toml.

With --until-drained it exits 0 once nothing is ready or in flight and every
sent message has its final receipt or has waited receipt_timeout; messages
deferred to a later window do not keep it running. --timeout ends the run with
exit 1 if it is not drained by then. SIGINT/SIGTERM: stop taking new work,
wait for in-flight responses (bounded), unbind, exit 0; a second signal exits at
once (nothing is lost: every state change is already committed). SIGHUP: read
engine.toml again and apply it (engine/reload.py); a bad file is refused with
an ERROR naming the key, and the engine goes on as it was.

One engine per store: it holds the store's lock for its whole life; a second
`volley run` on the same store exits 1 naming the holder's pid. Only the engine
that has just taken the lock puts back what a crash left in flight.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from functools import partial

# Each asks for a graceful stop (drain, unbind, exit 0); a second one: exit at once.
DRAIN_SIGNALS = (signal.SIGINT, signal.SIGTERM)
RELOAD = signal.SIGHUP  # read engine.toml again (engine/reload.py)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--until-drained", action="store_true", help="exit 0 once drained")
    parser.add_argument(
        "--timeout", type=float, metavar="S", help="give up after S seconds (exit 1)"
    )
    parser.add_argument(
        "--log-json", action="store_true", help="one JSON object per log line ([log] json)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    # one of [engine] processes, started by the supervisor (engine/supervisor.py)
    parser.add_argument("--worker", metavar="I/N", help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    import trio

    from engine import collector, config, logs
    from engine.control.server import ControlError, claim_path
    from engine.service import Engine
    from engine.store import StoreError, StoreLock

    cfg = config.load(args.config)
    processes = config.engine_processes(cfg)
    part = _part(args.worker, processes)
    logs.setup(cfg, as_json=args.log_json, tag=f"w{part[0]}" if args.worker else "")
    if not cfg.operators:
        print("volley run: no [[operators]] in the config", file=sys.stderr)
        return 2
    control = cfg.resolve(cfg.control.socket)
    from engine.supervisor import STOP, STOP_NOW, owner_tag, worker_socket
    from engine.wiring import take_store

    if args.worker:
        control = worker_socket(control, part[0])
    try:
        store_path = cfg.resolve(cfg.store.path)
        inherited = StoreLock.from_environment(store_path) if args.worker else None
        if args.worker and inherited is None:
            raise StoreError("--worker: started without its supervisor's store lock")
        store, lock, recovered = take_store(cfg, inherited)
    except StoreError as exc:
        print(f"volley run: {exc}", file=sys.stderr)
        return 1
    try:
        claim_path(control)
        if processes > 1 and not args.worker:
            for i in range(processes):  # before any starts: every one's socket
                claim_path(worker_socket(control, i))
    except ControlError as exc:
        store.close()
        lock.release()
        print(f"volley run: {exc}", file=sys.stderr)
        return 1
    if args.worker:
        store.owner = owner_tag(part[0])
    if recovered:
        logging.getLogger("volley").info(
            "recovered %d message(s) in flight at the last stop (%s)",
            recovered,
            cfg.store.on_crash_inflight,
        )
    if processes > 1 and not args.worker:
        store.close()
        try:
            return _supervise(cfg, args, control, lock)
        finally:
            lock.release()
    code = 0

    async def amain() -> None:
        nonlocal code
        engine = Engine(cfg, store, control=control, part=part)
        engine.config_path = args.config
        watched = DRAIN_SIGNALS + (RELOAD,) + ((STOP, STOP_NOW) if args.worker else ())
        with trio.open_signal_receiver(*watched) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(partial(engine.run, until_drained=args.until_drained))
                handle = _worker_signals if args.worker else _signals
                nursery.start_soon(handle, signals, engine, nursery)
                if args.worker:
                    nursery.start_soon(_orphaned, engine)
                if args.until_drained and sys.stderr.isatty() and not args.quiet:
                    nursery.start_soon(_progress, partial(_engine_totals, engine))
                if args.timeout:
                    with trio.move_on_after(args.timeout):
                        await engine.stopped.wait()
                    if not engine.stopped.is_set():
                        code = 1
                        logging.getLogger("volley").error("--timeout: not drained, stopping")
                        await engine.stop()
                await engine.stopped.wait()
                if engine.stuck:  # --until-drained: what is left, no bind of this run can send
                    code = 1
                nursery.cancel_scope.cancel()

    collector.tune()
    try:
        trio.run(amain)
    finally:
        store.close()
        lock.release()
    return code


def _part(worker: str | None, processes: int) -> tuple[int, int]:
    """``--worker I/N``: this process's index among the engine's N processes."""
    if not worker:
        return 0, 1
    index, _, n = worker.partition("/")
    if not (index.isdigit() and n.isdigit() and int(index) < int(n) == processes):
        from engine.cli import UsageError

        raise UsageError(f"--worker {worker}: expected I/N with I < N = [engine] processes")
    return int(index), int(n)


def _supervise(cfg, args: argparse.Namespace, control, lock) -> int:
    """[engine] processes > 1: start them and speak for them (engine/supervisor.py)."""
    import trio

    from engine.supervisor import Supervisor

    flags = ["--quiet"]
    flags += ["--until-drained"] if args.until_drained else []
    flags += ["--log-json"] if args.log_json else []
    supervisor = Supervisor(cfg, args.config, control, flags, lock)
    code = 0

    async def amain() -> None:
        nonlocal code
        with trio.open_signal_receiver(*DRAIN_SIGNALS, RELOAD) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_forward, signals, supervisor)
                if args.until_drained and sys.stderr.isatty() and not args.quiet:
                    nursery.start_soon(_progress, partial(_summed_totals, supervisor))
                with trio.move_on_after(args.timeout or math.inf) as timer:
                    code = await supervisor.run()
                if timer.cancelled_caught:
                    logging.getLogger("volley").error("--timeout: not drained, stopping")
                    supervisor.signal_all()
                    await supervisor.wait_exited()
                    code = 1
                nursery.cancel_scope.cancel()

    trio.run(amain)
    return code


async def _forward(signals, supervisor) -> None:
    from engine.supervisor import STOP, STOP_NOW

    count = 0
    async for signum in signals:
        if signum == RELOAD:
            logging.getLogger("volley").info("SIGHUP: reloading the config in every process")
            supervisor.reload()
            continue
        count += 1
        what = "stop taking work, drain, unbind" if count == 1 else "exiting now"
        logging.getLogger("volley").info("signal: every engine process: %s", what)
        supervisor.signal_all(STOP if count == 1 else STOP_NOW)


async def _worker_signals(signals, engine, nursery) -> None:
    """An engine process: SIGTERM, SIGINT or the supervisor's STOP drain (once, however
    many arrive: a service manager may signal the whole group); STOP_NOW exits at once."""
    from engine.supervisor import STOP_NOW

    async for signum in signals:
        if signum == RELOAD:
            nursery.start_soon(_reload, engine)
        elif signum == STOP_NOW:
            logging.getLogger("volley").info("supervisor: exiting now (nothing is lost)")
            nursery.cancel_scope.cancel()
        elif not engine.stopping:
            logging.getLogger("volley").info("signal: stop taking work, drain, unbind")
            nursery.start_soon(engine.stop)


async def _orphaned(engine) -> None:
    """An engine process whose supervisor went away (kill -9) stops gracefully."""
    import trio

    from engine.supervisor import SUPERVISOR_PID

    parent = int(os.environ.get(SUPERVISOR_PID, os.getppid()))
    try:
        pidfd = os.pidfd_open(parent)  # readable once the process has exited (Linux)
    except OSError:  # it is gone already
        pidfd = -1
    if pidfd >= 0 and os.getppid() == parent:
        try:
            await trio.lowlevel.wait_readable(pidfd)
        finally:
            os.close(pidfd)
    logging.getLogger("volley").error("the supervisor went away: stopping")
    await engine.stop()


async def _reload(engine) -> None:
    """SIGHUP: the config file again; a refusal is logged (ERROR) by the reload itself."""
    import contextlib

    from engine.reload import ReloadError

    logging.getLogger("volley").info("SIGHUP: reloading %s", engine.config_path)
    with contextlib.suppress(ReloadError):
        await engine.reload()


async def _signals(signals, engine, nursery) -> None:
    count = 0
    async for signum in signals:
        if signum == RELOAD:
            nursery.start_soon(_reload, engine)
            continue
        count += 1
        if count == 1:
            logging.getLogger("volley").info("signal: stop taking work, drain, unbind")
            nursery.start_soon(engine.stop)
        else:
            logging.getLogger("volley").info("second signal: exiting now (nothing is lost)")
            nursery.cancel_scope.cancel()


async def _progress(totals) -> None:
    """Sent, receipts, failed, from ``totals()``: the engine's, or its processes' summed."""
    import trio
    from rich.console import Console
    from rich.progress import Progress

    # on stderr, with the log lines (stdout may be a pipe)
    with Progress(transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("sending", total=None)
        while True:
            t = await totals()
            sent, got, failed = (t.get(k, 0) for k in ("submitted", "receipts", "failed"))
            bar.update(
                task,
                completed=sent,
                description=f"sent {sent:,}  receipts {got:,}  failed {failed:,}",
            )
            await trio.sleep(0.5)


async def _engine_totals(engine) -> dict[str, int]:
    return engine.totals


async def _summed_totals(supervisor) -> dict[str, int]:
    """Every engine process's totals, through the supervisor's merged snapshot."""
    return (await supervisor.snapshot()).totals
