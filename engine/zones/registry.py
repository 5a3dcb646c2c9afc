"""Reading the Russian numbering registry's published CSV (DEF-9xx.csv, ABC-3xx.csv...).

The registry's files are ``;``-separated, in cp1251 (older) or UTF-8 with a
BOM (newer), with a header line. The columns have grown over the years::

    АВС/ DEF;От;До;Емкость;Оператор;Регион                          (to ~2021)
    АВС/ DEF;От;До;Емкость;Оператор;Регион;ИНН                      (~2022)
    АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН       (2023 on)

so columns are found by their names. Where "Территория ГАР" is present it is
read first (its names are the subjects' full names; "Регион" is sometimes
"-"). Ranges used across the whole country ("Российская Федерация") have no
zone of their own and are skipped (counted). A row that cannot be read is an
error naming its line; the merged result has no overlaps.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from pathlib import Path

import msgspec

from engine.zones.regions import AmbiguousRegion, match, nationwide

MAX_ERRORS = 50


class Parsed(msgspec.Struct):
    ranges: list[tuple[int, int, int, str]] = []  # first, last (national), subject, FILE:LINE
    rows: int = 0  # data rows read
    skipped: dict[str, int] = {}  # reason -> rows
    errors: list[str] = []  # FILE:LINE: FIELD: reason
    error_count: int = 0


class RegistryError(ValueError):
    """A file that is not a registry CSV at all (unreadable, or no usable header)."""


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else cp1251: the registry has published both."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1251")


def _columns(header: list[str], source: str) -> dict[str, int]:
    names = [h.strip().casefold().replace(" ", "") for h in header]
    found: dict[str, int] = {}
    for i, name in enumerate(names):
        if "def" in name or "abc" in name or "авс" in name or name == "код":
            found.setdefault("code", i)
        elif name in ("от", "from"):
            found.setdefault("from", i)
        elif name in ("до", "to"):
            found.setdefault("to", i)
        elif name == "регион":
            found.setdefault("region", i)
        elif name.startswith("территория"):
            found.setdefault("territory", i)
    missing = [k for k in ("code", "from", "to", "region") if k not in found]
    if missing:
        raise RegistryError(
            f"{source}:1: header: no column for {', '.join(missing)} (expected the registry's "
            f"'АВС/ DEF;От;До;Емкость;Оператор;Регион[;Территория ГАР][;ИНН]'; "
            f"found {';'.join(h.strip() for h in header)!r})"
        )
    return found


def read(data: bytes, source: str) -> Parsed:
    """One registry file: its ranges by subject (not yet merged), skips and errors."""
    text = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";")
    try:
        header = next(reader)
    except StopIteration:
        raise RegistryError(f"{source}: empty file: expected the registry's header line") from None
    cols = _columns(header, source)
    out = Parsed(ranges=[], skipped={}, errors=[])
    skipped: Counter[str] = Counter()
    width = max(cols.values()) + 1
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        out.rows += 1
        try:
            row = _row(cells, cols, width)
        except _Bad as bad:
            out.error_count += 1
            if len(out.errors) < MAX_ERRORS:
                out.errors.append(f"{source}:{line}: {bad.field}: {bad.reason}")
            continue
        if row is None:
            skipped["nationwide"] += 1
            continue
        out.ranges.append((*row, f"{source}:{line}"))
    out.skipped = dict(skipped)
    return out


class _Bad(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def _row(cells: list[str], cols: dict[str, int], width: int) -> tuple[int, int, int] | None:
    if len(cells) < width:
        raise _Bad("line", f"{len(cells)} columns, expected at least {width}")
    code, first, last = (cells[cols[k]].strip() for k in ("code", "from", "to"))
    if not (code.isdigit() and len(code) == 3):
        raise _Bad("АВС/ DEF", f"{code!r}: expected a 3-digit code")
    for name, value in (("От", first), ("До", last)):
        if not (value.isdigit() and len(value) <= 7):
            raise _Bad(name, f"{value!r}: expected up to 7 digits")
    lo, hi = int(code + first.zfill(7)), int(code + last.zfill(7))
    if lo > hi:
        raise _Bad("До", f"{last} is before От {first}")
    texts = [cells[cols["territory"]]] if "territory" in cols else []
    texts.append(cells[cols["region"]])
    for text in texts:
        try:
            region = match(text)
        except AmbiguousRegion as exc:
            raise _Bad("Регион", f"{text.strip()!r}: {exc}") from None
        if region is not None:
            return lo, hi, region.code
    if all(nationwide(t) for t in texts):
        return None
    shown = " / ".join(repr(t.strip()) for t in texts)
    raise _Bad(
        "Регион",
        f"{shown}: no federal subject recognised (add its name to engine/zones/regions.py)",
    )


def merge(
    ranges: list[tuple[int, int, int, str]],
) -> tuple[list[tuple[int, int, int]], list[str]]:
    """Sorted, adjacent ranges of one subject joined; ranges of different subjects that
    overlap are errors naming both lines (the same subject twice is harmless)."""
    out: list[tuple[int, int, int]] = []
    errors: list[str] = []
    last_where = ""
    for first, last, code, where in sorted(ranges):
        prev = out[-1] if out else None
        if prev is not None and first <= prev[1]:
            if prev[2] != code:
                errors.append(
                    f"{where}: range: {_show(first, last)} overlaps {last_where}'s "
                    "range of another region"
                )
            out[-1] = (prev[0], max(prev[1], last), prev[2])
        elif prev is not None and first == prev[1] + 1 and prev[2] == code:
            out[-1] = (prev[0], last, code)
        else:
            out.append((first, last, code))
        last_where = where
    return out, errors


def _show(first: int, last: int) -> str:
    return f"+7 {str(first)[:3]} {str(first)[3:]}-{str(last)[3:]}"


class Compiled(msgspec.Struct):
    """Several registry files read and merged into one table's ranges."""

    ranges: list[tuple[int, int, int]]
    rows: int
    skipped: dict[str, int]
    errors: list[str]
    error_count: int
    digests: dict[str, str]  # file name -> sha256 of its bytes


def compile_files(paths: list[Path]) -> Compiled:
    """Read every file (RegistryError for one that is not a registry CSV), then merge."""
    ranges: list[tuple[int, int, int, str]] = []
    rows, skipped, errors, count, digests = 0, Counter[str](), [], 0, {}
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise RegistryError(f"{path}: {exc.strerror}") from None
        digests[Path(path).name] = hashlib.sha256(data).hexdigest()
        parsed = read(data, str(path))
        ranges += parsed.ranges
        rows += parsed.rows
        skipped.update(parsed.skipped)
        errors += parsed.errors
        count += parsed.error_count
    merged, overlaps = merge(ranges)
    errors += overlaps
    count += len(overlaps)
    return Compiled(merged, rows, dict(skipped), errors[:MAX_ERRORS], count, digests)
