"""Segmentation benchmark: a generated base of N customers, segmented and enqueued.

    .venv/bin/python -m bench.segment [--customers 1000000] [--rules RULES.toml] [--json]

Generates the base (engine/segment/sample.py, seed 1) into a temporary folder,
then times `volley segment`'s job with examples/reactivation.toml (Russian and
English texts, a per-segment cap) into a fresh LMDB store (fsync on), and
reports customers/s, elapsed, messages enqueued and peak memory. The
baseline, measured in the same run, is reading the same CSV with the csv
module and nothing else: the floor for any job over this file.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

from engine import config
from engine.segment import rules
from engine.segment.job import Job
from engine.segment.sample import write
from engine.wiring import open_store

AS_OF = date(2026, 11, 23)
RULES = Path(__file__).resolve().parent.parent / "examples" / "reactivation.toml"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.segment", description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--rules", type=Path, default=RULES, help="default: %(default)s")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="volley-bench-segment-") as tmp:
        base = Path(tmp) / "customers.csv"
        t0 = time.perf_counter()
        with open(base, "w", encoding="utf-8") as out:
            write(out, args.customers, AS_OF)
        generated = time.perf_counter() - t0

        t0 = time.perf_counter()
        with open(base, encoding="utf-8", newline="") as f:
            rows = sum(1 for _ in csv.reader(f))
        baseline = time.perf_counter() - t0

        cfg = config.parse(f'[store]\npath = "{Path(tmp) / "db"}"\n'.encode())
        store = open_store(cfg)
        the_rules = rules.load(args.rules)
        t0 = time.perf_counter()
        with open(base, encoding="utf-8-sig", newline="") as f:
            job = Job(cfg, the_rules, store, as_of=AS_OF, removal_list=Path(tmp) / "removal.csv")
            report = job.run(f, str(base))
        elapsed = time.perf_counter() - t0
        store.close()
    enqueued = sum(s.enqueued.queued for s in report.segments if s.enqueued)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "rules": str(args.rules),
        "customers": args.customers,
        "rows_read": rows - 1,
        "elapsed_s": round(elapsed, 2),
        "customers_per_s": round(args.customers / elapsed),
        "enqueued": enqueued,
        "csv_only_s": round(baseline, 2),
        "ratio_to_csv_only": round(elapsed / baseline, 1),
        "peak_rss_mb": round(peak_mb),
        "generate_s": round(generated, 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{args.customers:,} customers segmented and {enqueued:,} messages enqueued in "
            f"{elapsed:.1f} s ({result['customers_per_s']:,}/s); reading the CSV alone "
            f"takes {baseline:.2f} s ({result['ratio_to_csv_only']}x); peak RSS {peak_mb:.0f} MB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
