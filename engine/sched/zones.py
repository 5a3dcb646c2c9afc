"""The recipient's time zone: the prefix table, else phonenumbers' single zone, else the default.

A listed prefix wins over phonenumbers, because phonenumbers is wrong for some
ranges (+7 4012, Kaliningrad, comes back as Europe/Bucharest). Where
phonenumbers gives several candidates (every Russian mobile gets 16) and no
prefix is listed, the configured default zone is used, never the first
candidate; the caller counts those fallbacks.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

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
    def __init__(self, default_zone: str, table: dict[str, ZoneInfo] | None = None) -> None:
        self.default = ZoneInfo(default_zone)
        self.table = load_table() if table is None else table
        self._longest = max((len(p) for p in self.table), default=0)
        self._cache: dict[str, tuple[ZoneInfo, str]] = {}

    def resolve(self, e164: str) -> tuple[ZoneInfo, str]:
        """(zone, source) with source "table", "number" or "default"."""
        digits = e164.removeprefix("+")
        key = digits[:CACHE_DIGITS]
        hit = self._cache.get(key)
        if hit is None:
            hit = self._resolve(digits)
            if len(self._cache) < 100_000:
                self._cache[key] = hit
        return hit

    def _resolve(self, digits: str) -> tuple[ZoneInfo, str]:
        for n in range(min(self._longest, len(digits)), 0, -1):
            zone = self.table.get(digits[:n])
            if zone is not None:
                return zone, "table"
        try:
            zones = pn_timezone.time_zones_for_number(phonenumbers.parse("+" + digits))
        except phonenumbers.NumberParseException:
            zones = ()
        if len(zones) == 1 and zones[0] != "Etc/Unknown":
            return ZoneInfo(zones[0]), "number"
        return self.default, "default"
