"""The segmentation rules file (TOML): columns, segments in priority order, templates.

Conditions are data, not code: a table of ``variable = test`` entries that must
all hold, where a test is a value (equality), a boolean, or a table of
comparisons (``{ ge = 30, lt = 60 }``, ``in = [...]``, ``missing = true``);
``all``, ``any`` and ``not`` combine them. Everything is checked when the file
is loaded, and an error names the segment and what is wrong.

A template (and a fallback) is a text, or a table of texts by language
(``{ ru = "...", en = "..." }``): a customer gets the text in the language of
the ``[columns] language`` column, else in ``[campaign] language``. A segment's
``template_no_name`` is the text for customers without a name (no salutation,
rather than a "Dear customer" fallback).

``[columns] consent`` names the consent column, or says ``"assumed"``: a file
that leaves it out is refused, so nobody is messaged without consent by
omission. A segment's (or the campaign's) ``not_before`` and ``expires`` are
ISO 8601 times with an offset, or relative to the run: ``"+3d"``, ``"+12h"``,
``"+30m"``.

Segments remember (engine/segment/memory.py): for every segment ``S`` of the
file, conditions may test what the campaign's earlier runs did with the
customer's number: ``sent_S``, ``delivered_S``, ``clicked_S``, ``replied_S``
(true/false) and ``days_since_sent_S``. A segment never sends twice to the same
number (``repeat = false`` by default: counted as ``already_sent``); a list
segment with ``suppress = true`` also stop-lists its numbers (end of the flow).
"""

from __future__ import annotations

import operator
import re
import string
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import msgspec

from engine.config import ConfigError, Duration, decode_toml, seconds
from engine.segment.memory import memory_names, remembers

# Values a condition may test, besides the mapped columns.
DERIVED = (
    "days_since_purchase",
    "days_since_response",
    "days_since_signup",
    "days_since_activity",
    "never_responded",
    "never_purchased",
    "months_active",
    "consent",
)
COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "missing")

Values = dict[str, Any]
Test = Callable[[Values], bool]


class RulesError(ConfigError):
    """The rules file is wrong; the message names the file, the segment and the problem."""


class Base(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class Columns(Base):
    """Which CSV column holds what (the header's names)."""

    phone: str = "phone"
    id: str = ""  # the customer's id: message ids in the batch (else the phone)
    name: str = ""
    last_purchase: str = ""
    last_response: str = ""
    signup: str = ""
    consent: str = ""  # the consent column, or "assumed" (required: never assumed by omission)
    language: str = ""  # "ru", "en", "en-GB"...: picks the template's text by language
    fields: dict[str, str] = {}  # more placeholders: {points} = fields.points's column
    date_order: Literal["dmy", "mdy"] = "dmy"  # for 01/02/2026-style dates


class Cap(Base):
    max: int
    period: Duration


Text = str | dict[str, str]  # one text, or a text per language


class Segment(Base):
    name: str
    when: dict[str, Any] = {}
    template: Text = ""
    template_no_name: Text = ""  # the text for customers without a name: no salutation
    action: Literal["send", "list"] = "send"  # list: not messaged, listed for removal
    sender: str = ""
    kind: str = ""
    window: str = ""  # send this segment's batch in [windows.NAME]
    cap: Cap | None = None  # also skip whoever got this many within the period
    fallbacks: dict[str, Text] = {}  # placeholder -> text when the customer has none
    # a placeholder missing for a customer and without a fallback: a load error
    # ("fallback"), or that customer is excluded ("exclude")
    on_missing: Literal["fallback", "exclude"] = "fallback"
    link: str = ""
    not_before: str = ""  # ISO 8601 with an offset, or "+3d" / "+12h" / "+30m" from the run
    expires: str = ""  # the same; past it the message is not sent (skipped, "expired")
    repeat: bool = False  # may send again to a number an earlier run of it sent to
    suppress: bool = False  # a list segment: also stop-list its numbers (end of the flow)
    track: bool | None = None  # short links for its URLs (default: for marketing messages)


class Campaign(Base):
    name: str
    sender: str = ""
    kind: str = "marketing"
    link: str = ""
    max_parts: int = 0  # 0: [defaults] max_parts
    language: str = ""  # the default language of templates given by language
    not_before: str = ""  # every segment's, unless it says otherwise
    expires: str = ""


class RulesFile(Base):
    campaign: Campaign
    columns: Columns = Columns()
    fallbacks: dict[str, Text] = {}
    segments: list[Segment] = []


class Variant(msgspec.Struct, frozen=True):
    """A segment's message in one language."""

    template: str
    placeholders: tuple[str, ...]
    fallbacks: dict[str, str]


class CompiledSegment(msgspec.Struct, frozen=True):
    name: str
    test: Test
    action: str
    placeholders: tuple[str, ...]  # of every language's text
    sender: str
    kind: str
    window: str
    cap: tuple[int, float] | None
    link: str
    variants: dict[str, Variant] = {}  # language -> text; "" is the default
    no_name: dict[str, Variant] = {}  # language -> text for customers without a name
    not_before: str = ""
    expires: str = ""
    repeat: bool = False
    suppress: bool = False
    track: bool | None = None

    def variant(self, language: str, named: bool = True) -> Variant:
        """The text in ``language`` if the segment has one, else the default's; for a
        customer without a name, that language's ``template_no_name`` if it has one."""
        key = language if language in self.variants else ""
        if not named and key in self.no_name:
            return self.no_name[key]
        return self.variants[key]

    @property
    def template(self) -> str:
        """The text in the default language."""
        return self.variants[""].template


class Rules(msgspec.Struct, frozen=True):
    campaign: Campaign
    columns: Columns
    segments: list[CompiledSegment]
    remembers: bool = False  # a condition tests a memory value, or a segment may not repeat

    def batch_id(self, segment: str, as_of: date) -> str:
        return f"{self.campaign.name}-{segment}-{as_of:%Y%m%d}"


def load(path: str | Path, campaign: str | None = None) -> Rules:
    """The rules file at ``path``; ``campaign`` replaces ``[campaign] name``."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise RulesError(f"{p}: {exc.strerror}") from None
    return parse(data, source=str(p), campaign=campaign)


def parse(data: bytes | str, source: str = "rules.toml", campaign: str | None = None) -> Rules:
    raw = decode_toml(data, RulesFile, source, RulesError)
    if campaign is not None:
        raw = msgspec.structs.replace(
            raw, campaign=msgspec.structs.replace(raw.campaign, name=campaign)
        )
    if not _is_name(raw.campaign.name):
        where = "--campaign" if campaign is not None else f"{source}: [campaign] name"
        raise RulesError(f"{where}: {raw.campaign.name!r}: letters, digits, - and _ only")
    if not raw.segments:
        raise RulesError(f"{source}: no [[segments]]: nothing to do")
    if not raw.columns.consent:
        raise RulesError(
            f"{source}: [columns] consent: required: the column that holds each customer's "
            'consent (consent = "sms_consent"), or consent = "assumed" if every customer in '
            "the file has agreed to be messaged"
        )
    for key in ("not_before", "expires"):
        try:
            moment(getattr(raw.campaign, key))
        except ValueError as exc:
            raise RulesError(f"{source}: [campaign] {key}: {exc}") from None
    known = set(DERIVED) | set(raw.columns.fields) | {"name"} | set(memory_names(raw.segments))
    if raw.columns.language:
        known.add("language")
    segments, seen = [], set()
    for i, seg in enumerate(raw.segments):
        where = f"{source}: segments[{i}] ({seg.name})"
        if seg.name in seen:
            raise RulesError(f"{where}: duplicate segment name")
        if not _is_name(seg.name):
            raise RulesError(f"{where}: name: letters, digits, - and _ only")
        seen.add(seg.name)
        if seg.suppress and seg.action != "list":
            raise RulesError(f'{where}: suppress: only for action = "list" (end of the flow)')
        try:
            segments.append(_compile(raw, seg, known))
        except RulesError as exc:
            raise RulesError(f"{where}: {exc}") from None
    return Rules(raw.campaign, raw.columns, segments, remembers(raw.segments))


def _is_name(name: str) -> bool:
    return bool(name) and all(c.isascii() and (c.isalnum() or c in "-_") for c in name)


def _compile(raw: RulesFile, seg: Segment, known: set[str]) -> CompiledSegment:
    test = condition(seg.when, known, "when")
    no_name: dict[str, Variant] = {}
    if seg.action == "send":
        if seg.template_no_name:
            no_name = _variants(raw, seg, known | {"link"}, "template_no_name")
        variants = _variants(raw, seg, known | {"link"}, "template", set(no_name))
    else:
        variants = {"": Variant("", (), {})}
    for key in ("not_before", "expires"):
        try:
            moment(getattr(seg, key))
        except ValueError as exc:
            raise RulesError(f"{key}: {exc}") from None
    every = [*variants.values(), *no_name.values()]
    placeholders = tuple(dict.fromkeys(f for v in every for f in v.placeholders))
    base = seg.link or raw.campaign.link
    if "link" in placeholders and not base:
        raise RulesError("template: {link} but no link in the segment or [campaign]")
    link = ""
    if base:
        utm = urlencode(
            {"utm_source": "sms", "utm_campaign": raw.campaign.name, "utm_content": seg.name}
        )
        link = f"{base}{'&' if '?' in base else '?'}{utm}"
    cap = (seg.cap.max, seconds(seg.cap.period)) if seg.cap else None
    return CompiledSegment(
        name=seg.name,
        test=test,
        action=seg.action,
        placeholders=placeholders,
        sender=seg.sender or raw.campaign.sender,
        kind=seg.kind or raw.campaign.kind,
        window=seg.window,
        cap=cap,
        link=link,
        variants=variants,
        no_name=no_name,
        not_before=seg.not_before or raw.campaign.not_before,
        expires=seg.expires or raw.campaign.expires,
        repeat=seg.repeat,
        suppress=seg.suppress,
        track=seg.track,
    )


def _variants(
    raw: RulesFile, seg: Segment, known: set[str], which: str, unnamed: set[str] | None = None
) -> dict[str, Variant]:
    """The segment's ``which`` template per language ("" is the default), each checked.

    ``unnamed``: the languages with a ``template_no_name``, whose {name} needs no fallback.
    """
    default = raw.campaign.language
    spec: Text = getattr(seg, which)
    no_name = which == "template_no_name"
    if isinstance(spec, str):
        if not spec:
            raise RulesError(f'{which}: required for a segment that sends (or action = "list")')
        if no_name and not isinstance(seg.template, str):
            raise RulesError(f"{which}: a text per language, as template is")
        templates = {"": spec}
        languages = {"": default}
    else:
        if not spec:
            raise RulesError(f"{which}: an empty table (expected a text per language)")
        if not default:
            raise RulesError(
                f"{which}: texts by language need [campaign] language (the default language)"
            )
        if no_name and isinstance(seg.template, str):
            raise RulesError(f"{which}: one text, as template is")
        if default not in spec and not no_name:
            raise RulesError(
                f"{which}: no text for {default!r}, the default language ([campaign] language)"
            )
        for lang in spec:
            if not _is_language(lang):
                raise RulesError(f"{which}.{lang}: expected a language code such as ru or en")
        templates = {lang if lang != default else "": text for lang, text in spec.items()}
        languages = {key: key or default for key in templates}
    fallbacks = raw.fallbacks | seg.fallbacks
    variants = {}
    for key, template in templates.items():
        lang = languages[key]
        where = which if isinstance(spec, str) else f"{which}.{lang}"
        if not template:
            raise RulesError(f"{where}: empty")
        try:
            placeholders = _placeholders(template, known)
        except RulesError as exc:
            raise RulesError(f"{where}{str(exc).removeprefix('template')}") from None
        if no_name and "name" in placeholders:
            raise RulesError(f"{where}: {{name}}: this is the text for customers without a name")
        texts: dict[str, str] = {}
        for field, text in fallbacks.items():
            if isinstance(text, str):
                texts[field] = text
            elif lang in text:
                texts[field] = text[lang]
            elif field in placeholders:
                raise RulesError(
                    f"fallbacks.{field}: no text for {lang!r} ({where} uses {{{field}}})"
                    if lang
                    else f"fallbacks.{field}: texts by language need [campaign] language "
                    "(the default language)"
                )
        if seg.on_missing == "fallback":
            for name in placeholders:
                if name == "name" and key in (unnamed or ()):
                    continue
                if name not in texts and name != "link":
                    hint = (
                        'template_no_name = "..." (the text for customers without a name), '
                        if name == "name"
                        else ""
                    )
                    raise RulesError(
                        f"{where}: {{{name}}} has no fallback: add {hint}fallbacks.{name}, "
                        'or on_missing = "exclude"'
                    )
        variants[key] = Variant(template, placeholders, texts)
    return variants


_RELATIVE = re.compile(r"^\+\s*(\d+(?:\.\d+)?)\s*(m|h|d)$")
_UNIT = {"m": 60.0, "h": 3600.0, "d": 86400.0}


def moment(spec: str) -> datetime | timedelta | None:
    """A time written in the rules: ISO 8601 with an offset, or "+3d"/"+12h"/"+30m"
    (a timedelta from the run); None when empty. ValueError says what was expected."""
    spec = spec.strip()
    if not spec:
        return None
    m = _RELATIVE.match(spec)
    if m:
        return timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2)])
    try:
        t = datetime.fromisoformat(spec)
    except ValueError:
        raise ValueError(
            f"{spec!r}: expected ISO 8601 with an offset (2026-12-10T23:59:00+03:00) "
            'or a time from the run ("+3d", "+12h", "+30m")'
        ) from None
    if t.tzinfo is None:
        raise ValueError(f"{spec!r}: needs a UTC offset, e.g. +03:00")
    return t


def _is_language(code: str) -> bool:
    return 2 <= len(code) <= 3 and code.isascii() and code.isalpha() and code.islower()


def _placeholders(template: str, known: set[str]) -> tuple[str, ...]:
    fields = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RulesError(f"template: {exc} (write {{{{ and }}}} for literal braces)") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise RulesError(f"template: {{{field}}}: only plain {{name}} placeholders")
        if field not in known:
            raise RulesError(
                f"template: {{{field}}}: unknown placeholder "
                f"(expected one of {', '.join(sorted(known))})"
            )
        if field not in fields:
            fields.append(field)
    return tuple(fields)


def condition(spec: Any, known: set[str], path: str) -> Test:
    """Compile a condition table into a test over a customer's values."""
    if not isinstance(spec, dict):
        raise RulesError(f"{path}: expected a table of conditions, got {spec!r}")
    return _all([_clause(key, value, known, f"{path}.{key}") for key, value in spec.items()])


def _all(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda v: a(v) and b(v)
    return lambda v: all(t(v) for t in tests)


def _any(tests: list[Test]) -> Test:
    if len(tests) == 2:
        a, b = tests
        return lambda v: a(v) or b(v)
    return lambda v: any(t(v) for t in tests)


def _clause(key: str, value: Any, known: set[str], path: str) -> Test:
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise RulesError(f"{path}: expected a non-empty list of condition tables")
        parts = [condition(item, known, f"{path}[{i}]") for i, item in enumerate(value)]
        return _all(parts) if key == "all" else _any(parts)
    if key == "not":
        inner = condition(value, known, path)
        return lambda v: not inner(v)
    if key not in known:
        raise RulesError(
            f"{path}: unknown value {key!r} (expected all, any, not, or one of "
            f"{', '.join(sorted(known))})"
        )
    if isinstance(value, dict):
        return _comparisons(key, value, path)
    if isinstance(value, bool | int | float | str):
        return lambda v: v.get(key) == value
    raise RulesError(f"{path}: expected a value or a table of comparisons, got {value!r}")


def _comparisons(key: str, ops: dict[str, Any], path: str) -> Test:
    tests: list[Test] = []
    for op, arg in ops.items():
        where = f"{path}.{op}"
        if op not in COMPARISONS:
            raise RulesError(f"{where}: unknown comparison (expected one of {COMPARISONS})")
        if op == "missing":
            if not isinstance(arg, bool):
                raise RulesError(f"{where}: expected true or false")
            tests.append(lambda v, a=arg: (v.get(key) is None) == a)
        elif op == "in":
            if not isinstance(arg, list):
                raise RulesError(f"{where}: expected a list")
            tests.append(lambda v, a=tuple(arg): v.get(key) in a)
        elif op in ("eq", "ne"):
            tests.append(_equality(key, op, arg))
        else:
            if isinstance(arg, bool) or not isinstance(arg, int | float):
                raise RulesError(f"{where}: expected a number, got {arg!r}")
            tests.append(_order(key, op, float(arg)))
    return _all(tests)


def _equality(key: str, op: str, arg: Any) -> Test:
    if op == "eq":
        return lambda v: v.get(key) == arg
    return lambda v: v.get(key) != arg


ORDER = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}


def _order(key: str, op: str, arg: float) -> Test:
    compare = ORDER[op]

    def test(v: Values) -> bool:
        x = v.get(key)  # a missing value (or a text) satisfies no comparison
        return x.__class__ in (int, float) and compare(x, arg)

    return test
