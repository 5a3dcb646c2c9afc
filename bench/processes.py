"""Experiment: would engine processes in parallel on one store pay on this machine?

    .venv/bin/python -m bench.processes [--messages N] [--rounds R]

Not a supported mode (``volley run`` refuses a second engine on a store): it
answers whether splitting the engine over processes is worth building, since
one engine process is bound by its Python CPU per message (bench/README.md).
The simulator runs pinned to CPU 0 as in ``volley bench``; the same N messages
are sent through the same two binds, once by one process holding both and
once by two processes holding one each, sharing the LMDB store (every store
is opened before any engine starts, so none mistakes another's in-flight
messages for a crash's). Rounds alternate, so both see the same machine.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time

import trio

from bench.e2e import TEXT
from bench.smsc import _free_port, start_simulator
from engine import config
from engine.service import Engine
from engine.store import NewMessage, Store


def _config(folder: str, port: int, binds: int, index: int) -> config.Config:
    return config.parse(
        (
            f'[store]\npath = "{folder}/db"\n[control]\nsocket = "{folder}/c{index}.sock"\n'
            f'[[operators]]\nname = "sim"\nport = {port}\ntps = 1000000\n'
            f"binds = {binds}\nwindow = 256\n"
        ).encode()
    )


def _engine(folder: str, port: int, binds: int, index: int, ready, go) -> None:
    cfg = _config(folder, port, binds, index)
    store = Store.open(cfg.resolve(cfg.store.path), map_size=1 << 30)
    ready.set()
    go.wait()

    async def main() -> None:
        await Engine(cfg, store).run(until_drained=True)

    trio.run(main)
    store.close()


def run(processes: int, port: int, n: int) -> float:
    """Messages per second end to end with ``processes`` engines and 2 binds in all."""
    with tempfile.TemporaryDirectory() as folder:
        cfg = _config(folder, port, 1, 0)
        path = cfg.resolve(cfg.store.path)
        store = Store.open(path, map_size=1 << 30)
        messages = (
            NewMessage(to=f"+7916{i:07d}", text=TEXT, sender="Shop", ext_id=str(i), route="sim")
            for i in range(n)
        )
        store.enqueue("bench", messages, now=time.time())
        store.close()
        ctx = mp.get_context("spawn")
        go, readies, procs = ctx.Event(), [], []
        for i in range(processes):
            ready = ctx.Event()
            args = (folder, port, 2 // processes, i, ready, go)
            procs.append(ctx.Process(target=_engine, args=args))
            procs[-1].start()
            readies.append(ready)
        for ready in readies:
            ready.wait()
        t0 = time.perf_counter()
        go.set()
        for proc in procs:
            proc.join()
        elapsed = time.perf_counter() - t0
        store = Store.open(path)
        delivered = store.counts().states["delivered"]
        store.close()
    if delivered != n:
        raise RuntimeError(f"{delivered} of {n} delivered")
    return n / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.processes", description=__doc__)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    port = _free_port()
    sim = start_simulator(port)
    rates: dict[int, list[float]] = {1: [], 2: []}
    try:
        for _ in range(args.rounds):
            for processes in rates:
                rates[processes].append(run(processes, port, args.messages))
    finally:
        sim.terminate()
        sim.communicate(timeout=10)
    one = statistics.median(rates[1])
    for processes, runs in rates.items():
        median = statistics.median(runs)
        print(
            f"{processes} process(es), 2 binds in all: median {median:>8,.0f} msg/s "
            f"({median / one:.2f}× one process)  runs {[round(r) for r in runs]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
