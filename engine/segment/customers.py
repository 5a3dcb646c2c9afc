"""Reading a CRM export: UTF-8 with or without BOM, `,` or `;` separated, streamed.

Each row becomes a Customer: its line, phone as written, the mapped texts for
placeholders, and the values conditions test (dates turned into days since the
as-of date, "never" flags, months active before going quiet, consent).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import msgspec

from engine.segment.rules import Columns, RulesError

DATE_CACHE = 100_000
# consent as CRMs write it, in English, Russian and Romanian (any case; a trailing dot,
# "+"/"-" and ✓ too); an empty cell is no consent
TRUTHY = frozenset(
    {"1", "true", "t", "yes", "y", "on", "+", "✓", "✔", "ok", "agree", "agreed", "opt-in",
     "optin", "subscribed", "да", "д", "согласен", "согласна", "согласие", "подписан",
     "da", "d", "acord", "de acord"}
)  # fmt: skip
FALSY = frozenset(
    {"", "0", "false", "f", "no", "n", "off", "-", "✗", "disagree", "opt-out", "optout",
     "unsubscribed", "нет", "н", "не согласен", "не согласна", "отказ", "отписан", "nu",
     "dezabonat"}
)  # fmt: skip
ASSUMED = "assumed"
NOT_NAMES = frozenset({"n/a", "null", "none", "unknown", "нет", "неизвестно"})


class BadRow(ValueError):
    """One field of one row is wrong: ``field`` and ``reason`` say which and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class Customer(msgspec.Struct):
    line: int
    id: str
    phone: str
    texts: dict[str, str]  # placeholder -> text as written
    values: dict[str, Any]  # what conditions test
    language: str = ""  # "en" for "en-GB", "EN" or "en_US"; "" when not known


def rows(stream: io.TextIOBase, source: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """(header, iterator of (line, cells)); the separator is sniffed from the header."""
    first = stream.readline()
    if not first.strip():
        raise RulesError(f"{source}: empty file: expected a header line")
    first = first.removeprefix("\ufeff")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
    reader = csv.reader(stream, delimiter=delimiter)

    def numbered() -> Iterator[tuple[int, list[str]]]:
        for cells in reader:
            if cells and any(c.strip() for c in cells):
                yield reader.line_num + 1, cells

    return header, numbered()


class Reader:
    """Turns rows into Customers, as the rules' [columns] map them."""

    def __init__(self, columns: Columns, header: list[str], as_of: date, source: str) -> None:
        self.columns = columns
        self.as_of = as_of.toordinal()
        self.source = source
        self.width = len(header)
        index = {name: i for i, name in enumerate(header)}

        def col(name: str, key: str, required: bool = False) -> int | None:
            if not name:
                if required:
                    raise RulesError(f"{source}: [columns] {key}: required")
                return None
            if name not in index:
                raise RulesError(
                    f"{source}: no column {name!r} for [columns] {key} "
                    f"(the header has: {', '.join(header)})"
                )
            return index[name]

        self.phone = col(columns.phone, "phone", required=True)
        self.id = col(columns.id, "id")
        self.name = col(columns.name, "name")
        self.purchase = col(columns.last_purchase, "last_purchase")
        self.response = col(columns.last_response, "last_response")
        self.signup = col(columns.signup, "signup")
        self.consent = col("" if columns.consent == ASSUMED else columns.consent, "consent")
        self.language = col(columns.language, "language")
        self.fields = {k: col(v, f"fields.{k}") for k, v in columns.fields.items()}
        self.dmy = columns.date_order == "dmy"
        self._dates: dict[str, int] = {}  # a base has a few thousand distinct dates

    def customer(self, line: int, cells: list[str]) -> Customer:
        if len(cells) < self.width:
            cells = cells + [""] * (self.width - len(cells))
        phone = cells[self.phone].strip()
        purchase = self._days("last_purchase", cells, self.purchase)
        response = self._days("last_response", cells, self.response)
        signup = self._days("signup", cells, self.signup)
        activity = min((d for d in (purchase, response) if d is not None), default=None)
        values: dict[str, Any] = {
            "days_since_purchase": purchase,
            "days_since_response": response,
            "days_since_signup": signup,
            "days_since_activity": activity,
            "never_responded": response is None,
            "never_purchased": purchase is None,
            "months_active": _months(signup, activity),
            "consent": self._consent(cells),
        }
        texts: dict[str, str] = {}
        if self.name is not None:
            name = cells[self.name].strip()
            texts["name"] = name if _is_name(name) else ""
            values["name"] = texts["name"] or None
        for key, i in self.fields.items():
            raw = cells[i].strip() if i is not None else ""
            texts[key] = raw
            values[key] = _number(raw)
        language = ""
        if self.language is not None:
            language = _language(cells[self.language])
            values["language"] = language or None
        ident = cells[self.id].strip() if self.id is not None else ""
        return Customer(line, ident, phone, texts, values, language)

    def standing(self, cells: list[str]) -> tuple[str, bool, int | None, int | None]:
        """(phone as written, consent, days since the last activity, days since signing
        up): what decides which of two rows with the same phone is kept. BadRow if wrong."""
        if len(cells) < self.width:
            cells = cells + [""] * (self.width - len(cells))
        purchase = self._days("last_purchase", cells, self.purchase)
        response = self._days("last_response", cells, self.response)
        activity = min((d for d in (purchase, response) if d is not None), default=None)
        signup = self._days("signup", cells, self.signup)
        return cells[self.phone].strip(), self._consent(cells), activity, signup

    def _days(self, field: str, cells: list[str], i: int | None) -> int | None:
        if i is None:
            return None
        raw = cells[i].strip()
        if not raw:
            return None
        ordinal = self._dates.get(raw)
        if ordinal is None:
            ordinal = parse_date(raw, self.dmy, field)
            if len(self._dates) >= DATE_CACHE:
                self._dates.clear()
            self._dates[raw] = ordinal
        return self.as_of - ordinal

    def _consent(self, cells: list[str]) -> bool:
        if self.consent is None:
            return True
        raw = cells[self.consent].strip()
        word = " ".join(raw.casefold().replace("ё", "е").rstrip(".!").split())
        if word in TRUTHY:
            return True
        if word in FALSY:
            return False
        raise BadRow(
            self.columns.consent,
            f"{raw!r}: expected yes/no, да/нет, da/nu, true/false or 1/0",
        )


def parse_date(raw: str, dmy: bool, field: str) -> int:
    """The proleptic ordinal of a date written 2026-11-01, 01.11.2026, 01/11/2026
    (day first unless mdy), optionally with a time (which is ignored)."""
    text = raw.split("T", 1)[0].split(" ", 1)[0]
    try:
        if len(text) == 10 and text[4] == "-":
            return date.fromisoformat(text).toordinal()
        parts = text.replace("/", ".").replace("-", ".").split(".")
        if len(parts) == 3 and len(parts[2]) == 4:
            a, b, year = (int(x) for x in parts)
            day, month = (a, b) if dmy else (b, a)
            return date(year, month, day).toordinal()
        return datetime.fromisoformat(raw).date().toordinal()
    except ValueError:
        raise BadRow(
            field, f"{raw!r}: expected a date such as 2026-11-01, 01.11.2026 or 01/11/2026"
        ) from None


def _is_name(name: str) -> bool:
    """A name to greet: letters, and not one of the placeholders CRMs write ("-", "N/A")."""
    return any(c.isalpha() for c in name) and name.casefold() not in NOT_NAMES


def _months(signup: int | None, activity: int | None) -> float | None:
    """Months between signing up and the last activity: how long they were active."""
    if signup is None or activity is None:
        return None
    return round(max(0, signup - activity) / 30.44, 1)


def _language(raw: str) -> str:
    """The primary language subtag: "en" for "en-GB", "EN" or "en_US"."""
    return raw.strip().replace("_", "-").split("-", 1)[0].lower()


def _number(raw: str) -> Any:
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        try:
            return float(raw.replace(",", "."))
        except ValueError:
            return raw
