"""Short-link redirect benchmark: GET /<code> → 302 through `volley serve`, every one a click.

    .venv/bin/python -m bench.links [--rate 2000] [--duration 30] [--connections 32]
                                    [--codes 100000] [--generator auto|wrk|httpx] [--json]

A fresh LMDB (fsync on) holds ``--codes`` tracked links (one message each, a
campaign's step); `volley serve` runs as its own process, as in production
(pinned to CPU 0 when there are two), with the links listener on 127.0.0.1.
The load is random codes from a phone's User-Agent, so every request is a click
that is committed (group commit) before its 302. The load generator is `wrk`
(Debian's package: `apt-get install wrk`; pinned to CPU 1) with a Lua script that
sends each wrk thread's requests on a fixed schedule (``threads / rate`` apart, on
whichever connection is free: about ``rate`` requests/s in all, whatever the
latency, as long as a connection is free) and picks a random code per request; without wrk, an
httpx client pool on trio sends at a fixed rate (open loop, latency counted
from each request's scheduled time), which costs more CPU than wrk and may fall
behind on a small machine (the achieved rate says so). Target: 2,000
requests/s held with p99 under 20 ms, and every click in the store.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
import trio.lowlevel

from engine import config
from engine.store import NewMessage
from engine.store.campaign import new_code
from engine.store.records import Link
from engine.wiring import open_store

RATE, P99_MS = 2000, 20.0
AGENT = "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36"
ROBOT = "TelegramBot (like TwitterBot)"  # --previews: redirected, no click written
LUA = """
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_usec; } timeval_t;
           int gettimeofday(timeval_t *tv, void *tz); ]]
local tv = ffi.new("timeval_t")
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end
local codes = {}
for line in io.lines("%(codes)s") do codes[#codes + 1] = line end
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
local interval, next_at = %(interval_ms)f, nil
request = function()
  return wrk.format("GET", "/" .. codes[math.random(#codes)], {["User-Agent"] = "%(agent)s"})
end
-- this thread's requests go out on a fixed schedule (one every `interval` ms), each
-- on whichever connection is free: about `rate` requests/s in all, whatever the latency
delay = function()
  local now = now_ms()
  if next_at == nil or next_at < now - 1000 then next_at = now end
  local wait = next_at - now
  next_at = next_at + interval
  if wait < 0 then return 0 end
  return wait
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(folder: Path, codes: int, processes: int = 1) -> tuple[Path, int, list[str]]:
    """engine.toml and a store of ``codes`` tracked links; (config path, port, codes)."""
    port = free_port()
    path = folder / "engine.toml"
    path.write_text(
        f'[store]\npath = "{folder / "db"}"\n[control]\nsocket = "{folder / "v.sock"}"\n'
        f'[http]\nlisten = "127.0.0.1:{free_port()}"\n'
        f'[links]\nbase = "https://s.example/"\nlisten = "127.0.0.1:{port}"\n'
        f"processes = {processes}\n"
        '[log]\nlevel = "warning"\n'
    )
    store = open_store(config.load(path))
    made = [new_code(7) for _ in range(codes)]
    store.enqueue(
        "bench-links",
        (
            NewMessage(
                to=f"+7916{i:07d}",
                text=f"Sale https://s.example/{code}",
                sender="S",
                ext_id=str(i),
                route="op",
                links=[Link(code=code, url=f"https://shop.example/p/{i}?utm_source=sms")],
            )
            for i, code in enumerate(made)
        ),
        now=time.time(),
        campaign="bench",
        segment="links",
    )
    store.close()
    return path, port, made


def start_server(
    cfg_path: Path, port: int, pinned: bool = True, processes: int = 1
) -> subprocess.Popen:
    """`volley serve`, once each of its links processes listens (wrk's connections are
    made once, at the start: those made before a process listens never reach it)."""

    def pin() -> None:
        if pinned and (os.cpu_count() or 1) >= 2:
            os.sched_setaffinity(0, {0})

    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "serve", "--config", str(cfg_path)],
        preexec_fn=pin,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if listening(port) >= processes:
            return proc
        if proc.poll() is not None:
            raise RuntimeError("volley serve exited")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("volley serve did not start")


def listening(port: int) -> int:
    """How many sockets listen on 127.0.0.1:port (each links process has its own)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = f"0100007F:{port:04X}"
    return sum(1 for row in rows if row.split()[1] == local and row.split()[3] == "0A")


def run_wrk(port: int, codes_file: Path, args: argparse.Namespace) -> dict[str, float]:
    script = codes_file.with_suffix(".lua")
    agent = ROBOT if args.previews else AGENT
    threads = max(1, min(2, args.connections))
    pinned = args.processes == 1 and (os.cpu_count() or 1) >= 2
    interval = threads * 1000.0 / args.rate
    script.write_text(LUA % {"codes": codes_file, "agent": agent, "interval_ms": interval})
    seconds = f"{max(1, round(args.duration))}s"
    cmd = ["wrk", "-t", str(threads), "-c", str(args.connections), "-d", seconds, "--latency",
           "-s", str(script), f"http://127.0.0.1:{port}"]  # fmt: skip
    if pinned and shutil.which("taskset"):
        cmd = ["taskset", "-c", "1", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(out: str) -> dict[str, float]:
    def ms(text: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s)", text)
        assert m, text
        return float(m.group(1)) * _UNIT[m.group(2)]

    result: dict[str, float] = {}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            result[f"p{pct}_ms"] = ms(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    assert m, out
    result["requests"] = float(m.group(1))
    result["rate"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out)
    result["max_ms"] = ms(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    result["errors"] = float(errors)
    return result


async def httpx_pool(port: int, codes: list[str], args: argparse.Namespace) -> dict[str, float]:
    """Open loop at ``args.rate``: request i is due at start + i / rate; its latency is
    counted from then (a late start counts, no coordinated omission)."""
    import random

    import httpx

    total = int(args.rate * args.duration)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=args.connections)
    agent = ROBOT if args.previews else AGENT
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, headers={"User-Agent": agent}
    ) as client:
        start = trio.current_time() + 0.1
        pool = trio.CapacityLimiter(args.connections * 4)

        async def one(i: int) -> None:
            nonlocal errors
            due = start + i / args.rate
            await trio.sleep_until(due)
            async with pool:
                try:
                    r = await client.get(f"/{random.choice(codes)}")
                    if r.status_code != 302:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
            latencies.append((trio.current_time() - due) * 1000)

        async with trio.open_nursery() as nursery:
            for i in range(total):
                nursery.start_soon(one, i)
                if i % 500 == 0:
                    await trio.lowlevel.checkpoint()
        elapsed = trio.current_time() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    return {"requests": float(total), "rate": total / elapsed, "p50_ms": pct(50),
            "p75_ms": pct(75), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": latencies[-1],
            "errors": float(errors)}  # fmt: skip


def clicks_in_store(cfg_path: Path) -> int:
    store = open_store(config.load(cfg_path), readonly=True)
    try:
        return store.step_stats(["bench-links"])["bench-links"].clicks
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.links", description=__doc__)
    parser.add_argument("--rate", type=float, default=RATE, help="requests per second offered")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--codes", type=int, default=100_000, help="links in the store")
    parser.add_argument(
        "--processes", type=int, default=1, help="[links] processes (>1: nothing pinned)"
    )
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument(
        "--previews", action="store_true", help="a preview robot's agent: no click written"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "httpx"
    if generator == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk), or use --generator httpx")
    with tempfile.TemporaryDirectory(prefix="volley-bench-links-") as tmp:
        folder = Path(tmp)
        cfg_path, port, codes = prepare(folder, args.codes, args.processes)
        codes_file = folder / "codes.txt"
        codes_file.write_text("\n".join(codes) + "\n")
        server = start_server(cfg_path, port, pinned=args.processes == 1, processes=args.processes)
        try:
            if generator == "wrk":
                result = run_wrk(port, codes_file, args)
            else:
                result = trio.run(httpx_pool, port, codes, args)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        stored = clicks_in_store(cfg_path)
    result["clicks_stored"] = float(stored)
    ok = (
        result["rate"] >= 0.97 * RATE
        and result["p99_ms"] < P99_MS
        and result["errors"] == 0
        and (args.previews or stored >= result["requests"])
    )
    if args.json:
        print(json.dumps({"generator": generator, "offered": args.rate, **result, "pass": ok}))
        return 0
    print(
        f"generator {generator}, offered {args.rate:,.0f}/s for {args.duration:g} s over "
        f"{args.connections} connections, {args.codes:,} links in the store, "
        f"{args.processes} links process(es)\n"
        f"achieved {result['rate']:,.0f} requests/s, {result['requests']:,.0f} requests, "
        f"{result['errors']:.0f} errors; clicks in the store {stored:,}\n"
        f"latency p50 {result['p50_ms']:.2f} ms, p90 {result['p90_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.2f} ms\n"
        f"target {RATE:,}/s with p99 < {P99_MS:g} ms, every click stored: "
        + ("PASS" if ok else "MISS")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
