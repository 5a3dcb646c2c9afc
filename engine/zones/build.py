"""Build the shipped range table from the registry's CSV files (reproducible).

    python -m engine.zones.build DEF-9xx.csv [ABC-3xx.csv ...] \\
        --source "where the files came from, and their date" \\
        --output engine/data/ru_def_ranges.csv

The output depends only on the input files' bytes, ``--source`` and
``engine/zones/regions.py``: re-running it on the same files gives the same
table. ``volley zones import`` does the same for a running installation.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from engine.zones import registry, table

TITLE = "Russian numbering registry ranges -> federal subject, for recipients' time zones."
COLUMNS = [
    "Columns: first,last,region: the first and last national number of a range",
    "(10 digits, without +7) and its federal subject's code; engine/zones/regions.py",
    "maps each code to its name and IANA zone. Ranges used across the whole country",
    "have no zone and are left out (those numbers fall back to [defaults] timezone).",
]


def header(compiled: registry.Compiled, source: str, made_by: str) -> list[str]:
    skipped = ", ".join(f"{n} {why}" for why, n in compiled.skipped.items()) or "none"
    return [
        TITLE,
        *textwrap.wrap(f"Source: {source}", 88),
        f"Made by {made_by} from:",
        *(f"  {name} sha256 {digest}" for name, digest in compiled.digests.items()),
        f"{compiled.rows} registry rows -> {len(compiled.ranges)} ranges; skipped: {skipped}.",
        *COLUMNS,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.zones.build", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, metavar="REGISTRY.csv")
    parser.add_argument("--source", required=True, help="where the files came from, and when")
    parser.add_argument("--output", type=Path, help="default: stdout")
    args = parser.parse_args(argv)
    try:
        compiled = registry.compile_files(args.files)
    except registry.RegistryError as exc:
        print(exc, file=sys.stderr)
        return 2
    if compiled.error_count:
        for line in compiled.errors:
            print(line, file=sys.stderr)
        print(f"{compiled.error_count} bad row(s): nothing written", file=sys.stderr)
        return 2
    text = table.render(
        compiled.ranges, header(compiled, args.source, "`python -m engine.zones.build`")
    )
    if args.output:
        table.write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
