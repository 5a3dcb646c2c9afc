"""volley demo: what `make demo` runs, on the embedded defaults.

Starts the bundled SMSC simulator on 127.0.0.1 (a few percent of undelivered
and expired receipts, like a real network, and some numbers that are dead),
segments the bundled sample customer base (3,000 generated customers, no real
data) with engine/data/reactivation.toml into one batch per segment, enqueues the
sample campaign too, into an LMDB store in ./var/demo, starts the engine with
its control socket, and `volley serve` with the short links (every URL of the
campaign is a tracked link), and opens the TUI on it; while it runs, a few
customers "click" their links through `volley serve` (clicks arrive in the
Batches tab). Quitting the TUI stops the engine (gracefully), the server and the
simulator, then prints the outcome. Without a terminal (or with --no-tui) the
engine runs until every message has its final receipt, then the clicks come.
It ends with the protocol layer at work (each message's encoding, parts and
first submit_sm bytes) and the campaign report (`volley report`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", help="a JSON Lines campaign (default: the bundled sample)")
    parser.add_argument("--dir", default="var/demo", help="where the demo store goes")
    parser.add_argument("--tps", type=float, default=50.0, help="the demo operator's rate")
    parser.add_argument(
        "--no-tui", action="store_true", help="run until drained and print (default off a tty)"
    )


def _campaign(path: str | None) -> tuple[str, list[str]]:
    if path:
        return path, Path(path).read_text(encoding="utf-8").splitlines()
    sample = resources.files("engine.data") / "sample_campaign.jsonl"
    return "sample_campaign.jsonl", sample.read_text(encoding="utf-8").splitlines()


def _volley(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine", *args], **kw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(
    port: int, proc: subprocess.Popen, timeout: float = 15.0, what: str = "the simulator"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start on port {port}")


def _stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(args: argparse.Namespace) -> int:
    import io

    from rich.console import Console
    from rich.table import Table

    from engine import config, ingest
    from engine.wiring import open_store

    console = Console()
    tui = not args.no_tui and sys.stdout.isatty() and sys.stdin.isatty()
    name, lines = _campaign(args.file)
    folder = Path(args.dir).resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    port, api_port, links_port = _free_port(), _free_port(), _free_port()
    cfg_path = folder / "engine.toml"
    cfg_path.write_text(
        '[store]\npath = "volley.lmdb"\n[control]\nsocket = "volley.sock"\n'
        "[prune]\nafter_failures = 1\n"
        f'[http]\nlisten = "127.0.0.1:{api_port}"\n'
        f'[links]\nbase = "http://127.0.0.1:{links_port}/"\nlisten = "127.0.0.1:{links_port}"\n'
        f'[[operators]]\nname = "demo"\nport = {port}\npassword = "secret"\n'
        f"tps = {args.tps}\nwindow = 10\n"
    )
    cfg = config.load(cfg_path)
    customers = resources.files("engine.data") / "customers_sample.csv"
    (folder / "dead.txt").write_text("\n".join(_dead_numbers(customers)) + "\n")
    smsc = _volley(
        "smsc", "--port", str(port), "--receipt-delay", "0.5", "--receipt-jitter", "1",
        "--undeliv", "0.05", "--expired", "0.02", "--seed", "1",
        "--dead-numbers", str(folder / "dead.txt"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    engine: subprocess.Popen | None = None
    serve: subprocess.Popen | None = None
    clicker = _Clicker(cfg, links_port)
    log = open(folder / "engine.log", "w")  # noqa: SIM115
    try:
        _wait_port(port, smsc)
        console.print(f"[bold]SMSC simulator[/] listening on 127.0.0.1:{port}")
        store = open_store(cfg)
        result = store.enqueue(
            "demo-campaign",
            ingest.messages(io.StringIO("\n".join(lines)), name, ingest.Validator(cfg)),
            now=time.time(),
        )
        console.print(f"[bold]enqueued[/] batch {result.batch}: {result.queued} messages")
        segmented = _segment(cfg, store, customers)
        store.close()
        for seg in segmented.segments:
            if seg.enqueued is not None:
                console.print(f"[bold]segmented[/] {seg.batch}: {seg.enqueued.queued} messages")
            elif seg.action == "list":
                console.print(f"[bold]segmented[/] {seg.name}: {seg.recipients} listed, not sent")
        serve = _volley("serve", "--config", str(cfg_path), stderr=log)
        _wait_port(links_port, serve, what="volley serve")
        console.print(f"[bold]short links[/] served by volley serve on 127.0.0.1:{links_port}")
        t0 = time.monotonic()
        run_args = ["run", "--config", str(cfg_path), "--quiet"]
        engine = _volley(*run_args, *([] if tui else ["--until-drained"]), stderr=log)
        if tui:
            from tui.app import VolleyApp
            from tui.source import ControlSource

            clicking = threading.Thread(target=clicker.keep_clicking, daemon=True)
            clicking.start()
            VolleyApp(ControlSource(cfg)).run()
            clicker.stop.set()
            _stop(engine)
            console.print(f"[bold]stopped[/] after {time.monotonic() - t0:.1f} s")
        else:
            with console.status("sending at the operator's pace, waiting for receipts…"):
                code = engine.wait()
            if code != 0:
                console.print(f"engine exited {code}: see {folder / 'engine.log'}")
                return 1
            console.print(f"[bold]drained[/] in {time.monotonic() - t0:.1f} s")
            clicker.click_round()
        console.print(f"[bold]clicked[/] {clicker.clicks} short links through volley serve")
        store = open_store(cfg, readonly=True)
        _outcome(console, store, Table)
        store.close()
    finally:
        clicker.stop.set()
        if engine is not None:
            _stop(engine)
        if serve is not None:
            _stop(serve)
        log.close()
        _stop(smsc)
        with smsc.stdout as out:
            counters = out.read().strip().splitlines()
    _protocol_table(console, lines, Table)
    console.print(f"simulator counters: {counters[-1] if counters else '{}'}")
    _report(console, cfg)
    return 0


class _Clicker:
    """A few customers follow their short links (about one delivered message in eight),
    through `volley serve`, as a phone's browser would: GET /<code>, 302."""

    AGENT = "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36"

    def __init__(self, cfg, port: int) -> None:
        self.cfg, self.port = cfg, port
        self.stop = threading.Event()
        self.done: set[int] = set()
        self.clicks = 0

    def keep_clicking(self) -> None:
        while not self.stop.wait(1.0):
            self.click_round(most=3)

    def click_round(self, most: int = 1_000) -> None:
        from engine.store import StoreError
        from engine.wiring import open_store

        try:
            store = open_store(self.cfg, readonly=True)
        except StoreError:
            return
        try:
            due = [
                m for m in store.messages()
                if m.links and m.state == "delivered" and m.id not in self.done
                and m.id * 2654435761 % 8 == 0
            ]  # fmt: skip
        finally:
            store.close()
        for msg in due[:most]:
            self.done.add(msg.id)
            if self._get(msg.links[0].code) == 302:
                self.clicks += 1

    def _get(self, code: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", f"/{code}", headers={"User-Agent": self.AGENT})
            return conn.getresponse().status
        except OSError:
            return 0
        finally:
            conn.close()


def _report(console, cfg) -> None:
    from engine import report
    from engine.wiring import open_store

    store = open_store(cfg, readonly=True)
    try:
        result = report.build(cfg, store, campaign="reactivation")
    finally:
        store.close()
    console.print("[bold]The campaign report[/] (volley report --campaign reactivation):")
    print(report.render(result))  # as volley report prints it: wider than 80 columns


def _dead_numbers(customers) -> list[str]:
    """Every 50th customer's number is dead at the simulator: receipts prune them."""
    from engine import e164

    lines = customers.read_text(encoding="utf-8-sig").splitlines()[1::50]
    numbers = (e164.fast_e164(line.split(";")[1]) for line in lines)
    return [n for n in numbers if n]


def _segment(cfg, store, customers):
    from datetime import date

    from engine.segment import rules
    from engine.segment.job import Job

    the_rules = rules.parse(
        (resources.files("engine.data") / "reactivation.toml").read_bytes(), "reactivation.toml"
    )
    job = Job(cfg, the_rules, store, as_of=date(2026, 11, 23))
    with customers.open(encoding="utf-8-sig", newline="") as f:
        return job.run(f, "customers_sample.csv")


def _outcome(console, store, Table) -> None:
    table = Table(title="Outcome per message of demo-campaign")
    for col in ("id", "to", "state", "err", "SMSC ids"):
        table.add_column(col)
    for msg in store.messages("demo-campaign"):
        err = "" if msg.err in (None, 0) else str(msg.err)
        table.add_row(msg.ext_id, msg.to, msg.state, err, ",".join(msg.smsc_ids))
    console.print(table)
    counts = store.counts()
    batches = Table(title="Batches")
    batches.add_column("batch")
    batches.add_column("by state")
    for batch, per in sorted(counts.batches.items()):
        batches.add_row(batch, ", ".join(f"{k} {v}" for k, v in sorted(per.items())))
    console.print(batches)
    states = {k: v for k, v in counts.states.items() if v}
    console.print("by state: " + ", ".join(f"{k} {v}" for k, v in states.items()))
    console.print(f"numbers pruned as dead by their receipts: {len(store.list_dead())}")


def _protocol_table(console, lines, Table) -> None:
    from engine.config import OperatorConfig
    from engine.smpp import codec, encoding
    from engine.submit import SubmitBuilder

    builder = SubmitBuilder(OperatorConfig(name="demo"))
    table = Table(title="The protocol layer: encodings and parts", show_lines=True)
    for col in ("to", "text", "coding", "parts", "octets/part", "first submit_sm"):
        table.add_column(col, overflow="fold")
    total = 0
    for line in lines:
        msg = json.loads(line)
        enc, n = encoding.count_parts(msg["text"])
        parts = builder.build(msg["to"], msg["text"], msg.get("from", "Volley"))
        total += n
        table.add_row(
            msg["to"],
            msg["text"][:60] + ("…" if len(msg["text"]) > 60 else ""),
            enc.value,
            str(n),
            ",".join(str(len(p.short_message)) for p in parts),
            codec.encode(parts[0])[:24].hex(" ") + " …",
        )
    console.print(table)
    console.print(f"{len(lines)} messages, {total} SMS parts to bill.")
