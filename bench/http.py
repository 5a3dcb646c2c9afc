"""HTTP enqueue benchmark: one POST /v1/batches/B of N JSON Lines, streamed into the store.

    .venv/bin/python -m bench.http [--messages N] [--repeat R] [--json]

The real API (hypercorn's trio worker on 127.0.0.1, a fresh LMDB with fsync
on) receives the body from a minimal client in the same process (a raw socket
writing the request in 1 MB slices, so the client costs next to nothing) and
answers once every message is committed. The baseline, measured in the same
run, is the same validation and enqueue without HTTP: `volley enqueue` reading
the same lines from memory (``ingest.messages`` into ``Store.enqueue``). Both
with the collector set as those commands set it (``engine.collector.tune``). The
target is 100,000 messages/s over HTTP.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import trio

from engine import collector, config, ingest
from engine.http.api import Api
from engine.http.server import Listener, serve_all
from engine.sched.schedule import Scheduler
from engine.wiring import open_store

TARGET = 100_000
TEXT = "Anna, we miss you! -40% on everything until 30.11: shop.example/r"
TOKEN = "bench-token-0123456789abcdef"


def body(n: int) -> bytes:
    return "".join(
        json.dumps({"id": f"m{i}", "to": f"+7916{i:07d}", "text": TEXT}) + "\n" for i in range(n)
    ).encode()


def _config(folder: str) -> config.Config:
    return config.parse(
        f'[store]\npath = "{Path(folder) / "db"}"\n[control]\nsocket = "{folder}/v.sock"\n'
        '[http]\nmax_body = "1GB"\n'  # a million lines is ~110 MB: over the default 64 MB
        '[[operators]]\nname = "op"\n'.encode()
    )


def bench_baseline(data: bytes, n: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        cfg = _config(folder)
        store = open_store(cfg)
        validator = ingest.Validator(cfg, scheduler=Scheduler(cfg))
        t0 = time.perf_counter()
        text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig")
        result = store.enqueue("bench", ingest.messages(text, "bench", validator), now=time.time())
        elapsed = time.perf_counter() - t0
        store.close()
    assert result.queued == n
    return n / elapsed


async def _post(url: str, data: bytes) -> tuple[int, dict]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    head = (
        f"POST /v1/batches/bench HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/x-ndjson\r\nContent-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    await stream.send_all(head)
    view = memoryview(data)
    for i in range(0, len(data), 1 << 20):
        await stream.send_all(view[i : i + (1 << 20)])
    answer = b""
    while chunk := await stream.receive_some(65536):
        answer += chunk
    await stream.aclose()
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1])


def bench_http(data: bytes, n: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        cfg = _config(folder)
        store = open_store(cfg)
        api = Api(cfg, store, token=TOKEN, control=cfg.resolve(cfg.control.socket))
        elapsed = 0.0

        async def run() -> None:
            nonlocal elapsed
            shutdown = trio.Event()
            async with trio.open_nursery() as nursery:
                bound = await nursery.start(
                    serve_all, [Listener("api", api, "127.0.0.1:0")], shutdown
                )
                t0 = time.perf_counter()
                status, answer = await _post(bound["api"][0], data)
                elapsed = time.perf_counter() - t0
                if status != 200 or answer["queued"] != n:
                    raise RuntimeError(f"the POST answered {status}: {answer}")
                shutdown.set()

        trio.run(run)
        store.close()
    return n / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.http", description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    collector.tune()  # as `volley serve` and `volley enqueue` do
    data = body(args.messages)
    baseline = round(max(bench_baseline(data, args.messages) for _ in range(args.repeat)))
    http = round(max(bench_http(data, args.messages) for _ in range(args.repeat)))
    figures = {
        "messages": args.messages,
        "body_mb": round(len(data) / (1 << 20), 1),
        "enqueue_without_http_per_s": baseline,
        "enqueue_over_http_per_s": http,
        "target_per_s": TARGET,
        "pass": http >= TARGET,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        verdict = "PASS" if http >= TARGET else "MISS"
        print(f"{args.messages:,} messages, {figures['body_mb']} MB in one POST")
        print(f"  enqueue without HTTP (baseline) {baseline:>10,}/s  (best of {args.repeat})")
        print(f"  enqueue over HTTP               {http:>10,}/s  ({http / baseline:.2f}x)")
        print(f"  target                          {TARGET:>10,}/s: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
