"""The recipient's time zone: the prefix table, else the Russian number-range table, else
phonenumbers' single zone, else the default.

A listed prefix wins over everything, because phonenumbers is wrong for some
ranges (+7 4012, Kaliningrad, comes back as Europe/Bucharest) and an operator's
own row is the last word. A Russian number (+7, 10 national digits) inside a
range of the numbering registry's table (engine/zones/) takes its federal
subject's zone: phonenumbers gives every Russian mobile 16 candidates, and
portability keeps a mobile number in its region. Where phonenumbers gives several
candidates and no table knows the number, the configured default zone is used,
never the first candidate; the caller counts those fallbacks.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from engine.zones.table import RangeTable
from engine.zones.table import load as load_ranges

CACHE_DIGITS = 8


class ZoneTableError(ValueError):
    pass


def load_table(path: Path | None = None) -> dict[str, ZoneInfo]:
    """prefix digits -> zone; errors name the file and line."""
    if path is None:
        text = (resources.files("engine.data") / "zones.csv").read_text(encoding="utf-8")
        name = "zones.csv"
    else:
        text, name = Path(path).read_text(encoding="utf-8"), str(path)
    table: dict[str, ZoneInfo] = {}
    for n, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 2 or not row[0].strip().lstrip("+").isdigit():
            raise ZoneTableError(
                f"{name}:{n}: expected prefix,zone (e.g. 74012,Europe/Kaliningrad)"
            )
        try:
            table[row[0].strip().lstrip("+")] = ZoneInfo(row[1].strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ZoneTableError(f"{name}:{n}: unknown time zone {row[1].strip()!r}") from None
    return table


class ZoneResolver:
    def __init__(
        self,
        default_zone: str,
        table: dict[str, ZoneInfo] | None = None,
        ranges: RangeTable | None = None,
    ) -> None:
        """``table``: prefix -> zone (default: the shipped zones.csv); ``ranges``: the
        Russian number-range table (default: the shipped seed)."""
        self.default = ZoneInfo(default_zone)
        self.table = load_table() if table is None else table
        self.ranges = load_ranges() if ranges is None else ranges
        self._longest = max((len(p) for p in self.table), default=0)
        self._zones = {r.code: ZoneInfo(r.zone) for r in set(self.ranges.regions)}
        self._cache: dict[str, tuple[ZoneInfo, str]] = {}

    def resolve(self, e164: str) -> tuple[ZoneInfo, str]:
        """(zone, source) with source "table", "range", "number" or "default"."""
        digits = e164.removeprefix("+")
        if len(digits) == 11 and digits[0] == "7" and self.ranges and digits.isdigit():
            # ranges are finer than the cache key: looked up every time (a bisect)
            hit = self._prefixed(digits)
            if hit is not None:
                return hit
            region = self.ranges.find(int(digits[1:]))
            if region is not None:
                return self._zones[region.code], "range"
        key = digits[:CACHE_DIGITS]
        hit = self._cache.get(key)
        if hit is None:
            hit = self._resolve(digits)
            if len(self._cache) < 100_000:
                self._cache[key] = hit
        return hit

    def region(self, e164: str) -> str:
        """The federal subject of a Russian number in the range table, else ""."""
        digits = e164.removeprefix("+")
        if len(digits) != 11 or digits[0] != "7" or not digits.isdigit():
            return ""
        found = self.ranges.find(int(digits[1:]))
        return found.name if found else ""

    def _prefixed(self, digits: str) -> tuple[ZoneInfo, str] | None:
        for n in range(min(self._longest, len(digits)), 0, -1):
            zone = self.table.get(digits[:n])
            if zone is not None:
                return zone, "table"
        return None

    def _resolve(self, digits: str) -> tuple[ZoneInfo, str]:
        hit = self._prefixed(digits)
        if hit is not None:
            return hit
        try:
            zones = pn_timezone.time_zones_for_number(phonenumbers.parse("+" + digits))
        except phonenumbers.NumberParseException:
            zones = ()
        if len(zones) == 1 and zones[0] != "Etc/Unknown":
            return ZoneInfo(zones[0]), "number"
        return self.default, "default"
