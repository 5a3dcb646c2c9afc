"""End-to-end benchmark: queue -> submit -> response -> receipt -> final state committed.

    .venv/bin/volley bench [--messages N] [--binds B] [--window W] [--processes N]
                           [--json FILE] [--chart FILE.png]

The simulator runs in another process pinned to CPU 0 (receipts on); the
engine runs here pinned to CPU 1, with a fresh LMDB (fsync on) holding N
pre-validated messages and no rate limit, until every message has its final
state committed. The baseline, against the same simulator in the same run,
is smpplib's own client sending with registered_delivery and reading its
receipts. Reported: messages/s, receipts/s, CPU seconds per 10,000 messages,
submit -> response latency p50/p99, and throughput over time (JSON, and a PNG
chart when matplotlib is installed: `pip install -e '.[chart]'`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import trio

from bench.smsc import _free_port, _pin, start_simulator
from engine import collector, config
from engine.service import Engine
from engine.store import NewMessage, Store

TEXT = "Anna, we miss you! -40% on everything until 30.11: shop.example/r"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _enqueue(store: Store, n: int) -> None:
    messages = (
        NewMessage(to=f"+7916{i:07d}", text=TEXT, sender="Shop", ext_id=str(i), route="sim")
        for i in range(n)
    )
    store.enqueue("bench", messages, now=time.time())


def run_engine(port: int, n: int, binds: int, window: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as d:
        cfg = config.parse(
            (
                f'[store]\npath = "{d}/db"\n[[operators]]\nname = "sim"\nport = {port}\n'
                f"tps = 1000000\nbinds = {binds}\nwindow = {window}\n"
            ).encode()
        )
        store = Store.open(cfg.resolve(cfg.store.path), map_size=1 << 30)
        _enqueue(store, n)
        series: list[tuple[float, int, int]] = []

        async def main() -> tuple[float, float, Engine]:
            engine = Engine(cfg, store)
            for b in engine.operators["sim"].binds:
                b.latencies = []

            async def sample(t0: float) -> None:
                while True:
                    counts = await trio.to_thread.run_sync(store.counts)
                    series.append(
                        (
                            round(trio.current_time() - t0, 2),
                            engine.totals["submitted"],
                            counts.states["delivered"],
                        )
                    )
                    await trio.sleep(0.25)

            cpu0, t0 = _cpu(), trio.current_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sample, t0)
                await engine.run(until_drained=True)
                nursery.cancel_scope.cancel()
            return trio.current_time() - t0, _cpu() - cpu0, engine

        collector.tune()  # as `volley run` does
        elapsed, cpu, engine = trio.run(main)
        delivered = store.counts().states["delivered"]
        store.close()
    lat = sorted(x for b in engine.operators["sim"].binds for x in (b.latencies or []))

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else 0.0

    return {
        "messages": n,
        "delivered": delivered,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(n / elapsed),
        "receipts_per_s": round(engine.totals["receipts"] / elapsed),
        "submits_per_s": round(engine.totals["submitted"] / elapsed),
        "cpu_s_per_10k": round(cpu / n * 10_000, 3),
        "latency_ms_p50": pct(0.50),
        "latency_ms_p99": pct(0.99),
        "series": series,
    }


def run_processes(port: int, n: int, binds: int, window: int, processes: int) -> dict[str, object]:
    """`volley run --until-drained` with [engine] processes = N, as a user runs it.

    Its processes may use every CPU (the simulator stays pinned to CPU 0). Timed
    from the first message claimed to the last final state committed, read from
    the store, so interpreter start-up does not count; CPU is the processes' own.
    """
    with tempfile.TemporaryDirectory() as d:
        toml = (
            f'[store]\npath = "db"\n[control]\nsocket = "v.sock"\n'
            f'[engine]\nprocesses = {processes}\n[[operators]]\nname = "sim"\n'
            f"port = {port}\ntps = 1000000\nbinds = {binds}\nwindow = {window}\n"
        )
        Path(d, "engine.toml").write_text(toml)
        cfg = config.load(Path(d, "engine.toml"))
        store = Store.open(cfg.resolve(cfg.store.path), map_size=1 << 30)
        _enqueue(store, n)
        cpus = set(range(os.cpu_count() or 1))
        cpu0 = _children_cpu()
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "run", "--config", "engine.toml", "--until-drained"],
            cwd=d,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )
        series: list[tuple[float, int, int]] = []
        t0 = time.perf_counter()
        first = None
        while proc.poll() is None:
            states = store.counts().states
            moved = n - states["queued"]
            if moved and first is None:
                first = time.perf_counter()
            series.append((round(time.perf_counter() - t0, 2), moved, states["delivered"]))
            time.sleep(0.05)
        end = time.perf_counter()
        delivered = store.counts().states["delivered"]
        store.close()
        cpu = _children_cpu() - cpu0
    elapsed = end - (first or t0)
    return {
        "messages": n,
        "delivered": delivered,
        "processes": processes,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(n / elapsed),
        "receipts_per_s": round(delivered / elapsed),
        "submits_per_s": round(n / elapsed),
        "cpu_s_per_10k": round(cpu / n * 10_000, 3),
        "latency_ms_p50": None,  # measured in-process only
        "latency_ms_p99": None,
        "series": series,
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_smpplib(port: int, n: int) -> dict[str, object]:
    """smpplib's blocking client: bind, submit with registered_delivery, read receipts."""
    import smpplib.client

    got = 0
    done = threading.Event()
    client = smpplib.client.Client("127.0.0.1", port, allow_unknown_opt_params=True)

    def on_receipt(pdu: object) -> None:
        nonlocal got
        got += 1
        if got >= n:
            done.set()

    client.set_message_received_handler(on_receipt)
    client.set_message_sent_handler(lambda pdu: None)
    client.connect()
    client.bind_transceiver(system_id="smpplib", password="x")
    t0 = time.perf_counter()
    for i in range(n):
        client.send_message(
            source_addr_ton=5,
            source_addr="Shop",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr=f"7916{i:07d}",
            short_message=TEXT.encode(),
            registered_delivery=1,
        )
    while not done.is_set():
        client.read_once()
    elapsed = time.perf_counter() - t0
    client.unbind()
    client.disconnect()
    return {"messages": n, "seconds": round(elapsed, 3), "messages_per_s": round(n / elapsed)}


def chart(result: dict[str, object], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("chart: matplotlib is not installed (pip install -e '.[chart]')", file=sys.stderr)
        return False
    series = result["volley"]["series"]
    t = [s[0] for s in series]
    rates_sub = [0] + [
        (b[1] - a[1]) / max(1e-9, b[0] - a[0]) for a, b in itertools.pairwise(series)
    ]
    rates_fin = [0] + [
        (b[2] - a[2]) / max(1e-9, b[0] - a[0]) for a, b in itertools.pairwise(series)
    ]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(t, rates_sub, label="submitted /s")
    ax.plot(t, rates_fin, label="delivered (committed) /s")
    ax.axhline(result["smpplib"]["messages_per_s"], color="grey", ls="--", label="smpplib client")
    ax.set_xlabel("seconds")
    ax.set_ylabel("messages per second")
    ax.set_title("Volley end to end against the simulator (receipts on)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="volley bench", description=__doc__)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--baseline-messages", type=int, default=3_000)
    parser.add_argument("--binds", type=int, default=2)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="run `volley run` with [engine] processes = N (any CPU) instead of in this process",
    )
    parser.add_argument("--json", metavar="FILE", help="write the results here as JSON")
    parser.add_argument("--chart", metavar="FILE.png", help="draw throughput over time")
    args = parser.parse_args(argv)
    port = _free_port()
    sim = start_simulator(port)
    try:
        _pin(1)
        baseline = run_smpplib(port, args.baseline_messages)
        if args.processes:
            volley = run_processes(port, args.messages, args.binds, args.window, args.processes)
        else:
            volley = run_engine(port, args.messages, args.binds, args.window)
    finally:
        sim.terminate()
        sim.communicate(timeout=10)
    result = {
        "volley": volley,
        "smpplib": baseline,
        "ratio": round(volley["messages_per_s"] / baseline["messages_per_s"], 1),
    }
    v = volley
    print(
        f"volley   {v['messages']:>7,} messages in {v['seconds']:>6.2f} s = "
        f"{v['messages_per_s']:>7,} msg/s end to end (receipts {v['receipts_per_s']:,}/s, "
        f"submits {v['submits_per_s']:,}/s)\n"
        f"smpplib  {baseline['messages']:>7,} messages in {baseline['seconds']:>6.2f} s = "
        f"{baseline['messages_per_s']:>7,} msg/s\n"
        f"ratio    {result['ratio']}x smpplib   CPU {v['cpu_s_per_10k']} s per 10k messages   "
        + (
            f"submit->response p50 {v['latency_ms_p50']} ms, p99 {v['latency_ms_p99']} ms"
            if not args.processes
            else f"{args.processes} engine process(es) (latency is measured in-process only)"
        )
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.chart and chart(result, args.chart):
        print(f"chart: {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
