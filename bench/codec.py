"""Codec benchmark: Volley's encoder/decoder against smpplib's, in the same run.

    .venv/bin/python -m bench.codec [--json] [--number N]

Each figure is the best of several repeats of N operations (time.perf_counter_ns).
Targets from the foundation issue: encode submit_sm <= 3 us, decode submit_sm_resp
<= 1.5 us, decode a receipt deliver_sm <= 6 us, each >= 30x smpplib.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import smpplib.smpp

from engine.smpp import codec
from engine.smpp import pdu as p
from engine.smpp.receipts import parse_receipt_pdu

TEXT = b"Anna, we miss you! -40% on everything until 30.11, only at shop.example/r?c=42"
SUBMIT_FIELDS = {
    "source_addr_ton": 5,
    "source_addr": "ShopBrand",
    "dest_addr_ton": 1,
    "dest_addr_npi": 1,
    "destination_addr": "79161234567",
    "registered_delivery": 1,
    "short_message": TEXT,
}
SUBMIT = p.SubmitSm(sequence=12345, **SUBMIT_FIELDS)
RESP = codec.encode(p.SubmitSmResp(sequence=12345, message_id="5f2a9c1e0b7d"))
RECEIPT = codec.encode(
    p.DeliverSm(
        sequence=777,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="79161234567",
        destination_addr="ShopBrand",
        esm_class=0x04,
        short_message=b"id:5f2a9c1e0b7d sub:001 dlvrd:001 submit date:2611221530 "
        b"done date:2611221531 stat:DELIVRD err:000 text:Anna, we miss you!",
        receipted_message_id="5f2a9c1e0b7d",
        message_state=2,
        network_error_code=b"\x03\x00\x00",
    )
)
TARGETS = {"encode submit_sm": 3.0, "decode submit_sm_resp": 1.5, "decode receipt deliver_sm": 6.0}


class _Client:
    sequence = 0

    def next_sequence(self) -> int:
        return 0


def _smpplib_encode() -> bytes:
    pdu = smpplib.smpp.make_pdu("submit_sm", client=_Client(), **SUBMIT_FIELDS)
    pdu.sequence = 12345
    return pdu.generate()


_CLIENT = _Client()


def measure(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Best-of-``repeat`` microseconds per call."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / number / 1000)
    return best


def run(number: int) -> list[dict[str, object]]:
    assert codec.decode(_smpplib_encode()) == SUBMIT
    cases = [
        ("encode submit_sm", lambda: codec.encode(SUBMIT), _smpplib_encode),
        (
            "decode submit_sm_resp",
            lambda: codec.decode(RESP),
            lambda: smpplib.smpp.parse_pdu(RESP, client=_CLIENT),
        ),
        (
            "decode receipt deliver_sm",
            lambda: codec.decode(RECEIPT),
            lambda: smpplib.smpp.parse_pdu(RECEIPT, client=_CLIENT),
        ),
        (
            "decode + parse receipt",
            lambda: parse_receipt_pdu(codec.decode(RECEIPT)),
            lambda: smpplib.smpp.parse_pdu(RECEIPT, client=_CLIENT),
        ),
    ]
    rows = []
    for name, ours, theirs in cases:
        us = measure(ours, number)
        them = measure(theirs, max(1000, number // 20))
        target = TARGETS.get(name)
        rows.append(
            {
                "case": name,
                "volley_us": round(us, 3),
                "smpplib_us": round(them, 2),
                "ratio": round(them / us, 1),
                "target_us": target,
                "verdict": ""
                if target is None
                else ("time PASS" if us <= target else "time MISS")
                + (", ratio PASS" if them / us >= 30 else ", ratio MISS"),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.codec", description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--number", type=int, default=100_000)
    args = parser.parse_args(argv)
    rows = run(args.number)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'case':28} {'volley µs':>10} {'smpplib µs':>11} {'ratio':>7} {'target':>7}")
    for r in rows:
        target = f"≤{r['target_us']}" if r["target_us"] else ""
        print(
            f"{r['case']:28} {r['volley_us']:>10} {r['smpplib_us']:>11} "
            f"{r['ratio']:>6}× {target:>7} {r['verdict']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
