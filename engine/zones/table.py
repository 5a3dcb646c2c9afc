"""The number-range table: which federal subject (and so which zone) a Russian number is in.

A text file, one range per line, ``first,last,region``: the first and last
national numbers of the range (10 digits, without +7) and the subject's code
(``engine.zones.regions``). Lines starting with ``#`` are comments (the header
says where the table came from). Ranges are sorted and do not overlap, so a
number is found by bisecting the range starts.

The shipped seed is ``engine/data/ru_def_ranges.csv``; ``volley zones import``
writes a fresh one from the registry's CSV to ``[defaults] zone_ranges``, or, when
that key is empty, to ``ru-def-ranges.csv`` in the store's folder, which is then
read instead of the seed.
"""

from __future__ import annotations

import os
import tempfile
from bisect import bisect_right
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from engine.config import ConfigError
from engine.zones.regions import REGIONS, Region

if TYPE_CHECKING:
    from engine.config import Config

SEED = "ru_def_ranges.csv"
STORE_FILE = "ru-def-ranges.csv"


class RangeTableError(ConfigError):
    """A range table that cannot be read; the message names the file and line."""


class RangeTable:
    """Sorted, non-overlapping ranges of national numbers, each with its subject."""

    def __init__(self, ranges: Iterable[tuple[int, int, int]], source: str = "") -> None:
        rows = sorted(ranges)
        self.starts = [r[0] for r in rows]
        self.ends = [r[1] for r in rows]
        self.regions = [REGIONS[r[2]] for r in rows]
        self.source = source
        self.header: list[str] = []

    def __len__(self) -> int:
        return len(self.starts)

    def find(self, national: int) -> Region | None:
        """The subject of a 10-digit national number, or None outside every range."""
        i = bisect_right(self.starts, national) - 1
        if i >= 0 and national <= self.ends[i]:
            return self.regions[i]
        return None

    def rows(self) -> list[tuple[int, int, int]]:
        return [
            (s, e, r.code) for s, e, r in zip(self.starts, self.ends, self.regions, strict=True)
        ]


def parse(text: str, source: str) -> RangeTable:
    ranges: list[tuple[int, int, int]] = []
    header: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            if line and not ranges:
                header.append(line.lstrip("# ").rstrip())
            continue
        cells = line.split(",")
        if len(cells) != 3 or not all(c.strip().isdigit() for c in cells):
            raise RangeTableError(f"{source}:{n}: expected first,last,region (three numbers)")
        first, last, code = (int(c) for c in cells)
        if code not in REGIONS:
            raise RangeTableError(f"{source}:{n}: region: unknown subject code {code}")
        if first > last:
            raise RangeTableError(f"{source}:{n}: the range ends before it starts")
        if ranges and first <= ranges[-1][1]:
            raise RangeTableError(f"{source}:{n}: overlaps or is out of order with the line before")
        ranges.append((first, last, code))
    table = RangeTable(ranges, source)
    table.header = header
    return table


_CACHE: dict[tuple[str, int, int], RangeTable] = {}


def load(path: Path | None = None) -> RangeTable:
    """The table at ``path`` (the shipped seed when None), parsed once per file version."""
    if path is None:
        res = resources.files("engine.data") / SEED
        key = (SEED, 0, 0)
        if key not in _CACHE:
            _CACHE[key] = parse(res.read_text(encoding="utf-8"), SEED)
        return _CACHE[key]
    try:
        st = os.stat(path)
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key not in _CACHE:
            _CACHE[key] = parse(Path(path).read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise RangeTableError(
            f"{path}: {exc.strerror} (the range table: [defaults] zone_ranges; "
            "`volley zones import` writes it)"
        ) from None
    return _CACHE[key]


def configured_path(cfg: Config) -> Path | None:
    """Where this config's range table is: ``[defaults] zone_ranges``, else the store's
    imported table if there is one, else None (the shipped seed)."""
    if cfg.defaults.zone_ranges:
        return cfg.resolve(cfg.defaults.zone_ranges)
    imported = cfg.resolve(cfg.store.path) / STORE_FILE
    return imported if imported.exists() else None


def import_target(cfg: Config) -> Path:
    """Where ``volley zones import`` writes by default."""
    if cfg.defaults.zone_ranges:
        return cfg.resolve(cfg.defaults.zone_ranges)
    return cfg.resolve(cfg.store.path) / STORE_FILE


def render(ranges: Iterable[tuple[int, int, int]], header: Iterable[str]) -> str:
    lines = [f"# {h}".rstrip() for h in header]
    lines += [f"{first:010d},{last:010d},{code}" for first, last, code in ranges]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` in one rename: a reader sees the old table or the new one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
