"""Simulator benchmark: how many submit_sm/s `volley smsc` absorbs on one core.

    .venv/bin/python -m bench.smsc [--messages N] [--json]

The simulator runs in its own process pinned to CPU 0; the client here is
pinned to CPU 1 and sends pre-encoded submit_sm in large writes, keeping at
most --outstanding unanswered, counting responses by their headers only and
answering receipts with pre-encoded deliver_sm_resp. Two runs: receipts off
(submit + response) and receipts on (submit, response, receipt, receipt
response: one "message").
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import time

from engine.smpp import codec
from engine.smpp import constants as c
from engine.smpp import pdu as p

HEADER = struct.Struct(">IIII")


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > cpu:
        os.sched_setaffinity(0, {cpu})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_simulator(port: int, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "smsc",
            "--port",
            str(port),
            "--receipt-window",
            "200000",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: _pin(0),
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the simulator did not start")


def _bind(sock: socket.socket) -> None:
    sock.sendall(codec.encode(p.BindTransceiver(sequence=1, system_id="bench", password="x")))
    resp = sock.recv(4096)
    assert HEADER.unpack_from(resp)[2] == 0, "bind refused"


def _submits(n: int, registered: int) -> list[bytes]:
    base = p.SubmitSm(
        source_addr_ton=5,
        source_addr="Bench",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="79161234567",
        registered_delivery=registered,
        short_message=b"Anna, we miss you! -40% on everything until 30.11: shop.example/r",
    )
    one = codec.encode(base)
    return [one[:12] + (i + 2).to_bytes(4, "big") + one[16:] for i in range(n)]


def run_once(port: int, n: int, receipts: bool, outstanding: int) -> dict[str, float]:
    pdus = _submits(n, 1 if receipts else 0)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _bind(sock)
    sock.setblocking(True)
    buf = b""
    sent = responses = receipts_in = errors = 0
    want_receipts = n if receipts else 0
    chunk = 512
    t0 = time.perf_counter()
    while responses < n or receipts_in < want_receipts:
        if sent < n and sent - responses < outstanding:
            k = min(chunk, n - sent)
            sock.sendall(b"".join(pdus[sent : sent + k]))
            sent += k
        data = sock.recv(1 << 20)
        if not data:
            raise RuntimeError("the simulator closed the connection")
        buf += data
        pos, acks = 0, []
        while len(buf) - pos >= 16:
            length, cid, status, seq = HEADER.unpack_from(buf, pos)
            if len(buf) - pos < length:
                break
            if cid == c.SUBMIT_SM_RESP:
                responses += 1
                errors += status != 0
            elif cid == c.DELIVER_SM:
                receipts_in += 1
                acks.append(HEADER.pack(17, c.DELIVER_SM_RESP, 0, seq) + b"\0")
            pos += length
        buf = buf[pos:]
        if acks:
            sock.sendall(b"".join(acks))
    elapsed = time.perf_counter() - t0
    sock.close()
    if errors:
        raise RuntimeError(f"{errors} submit_sm answered with an error status")
    return {"messages": n, "seconds": round(elapsed, 3), "per_second": round(n / elapsed)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.smsc", description=__doc__)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--outstanding", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    _pin(1)
    results = {}
    for receipts in (False, True):
        port = _free_port()
        proc = start_simulator(port, *(() if receipts else ("--no-receipts",)))
        try:
            name = "receipts on" if receipts else "receipts off"
            results[name] = run_once(port, args.messages, receipts, args.outstanding)
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=10)
        results[name]["simulator_counters"] = json.loads(out.decode().strip().splitlines()[-1])
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        targets = {"receipts off": 100_000, "receipts on": 60_000}
        for name, r in results.items():
            verdict = "PASS" if r["per_second"] >= targets[name] else "MISS"
            print(
                f"{name:13} {r['messages']:>8} messages in {r['seconds']:>7.2f} s = "
                f"{r['per_second']:>8,}/s  (target {targets[name]:,}/s: {verdict})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
