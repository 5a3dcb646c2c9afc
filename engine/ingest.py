"""Producer input: JSON Lines or CSV batches, validated line by line into NewMessages.

Numbers are normalised to E.164 with phonenumbers (``[defaults] region`` for
national formats), texts are checked against the part limit, times must carry
an offset. Every bad line is reported as ``FILE:LINE: FIELD: reason``; a file
with any bad line enqueues nothing (the store aborts the load).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import msgspec
import phonenumbers

from engine import links as shortlinks
from engine.config import Config
from engine.e164 import National, fast_e164
from engine.routing import UNROUTED, route_for
from engine.sched.schedule import Scheduler
from engine.smpp import encoding
from engine.store.records import MAX_ID_CHARS, Link, NewMessage

MAX_ERRORS = 1000
BUILTIN_KINDS = ("marketing", "transactional")
FIELDS = ("id", "to", "text", "from", "kind", "not_before", "expires", "track")
_FIELDS = frozenset(FIELDS)
TRACKED_KINDS = ("marketing",)  # whose URLs become short links unless "track": false
_TRUE = {True: True, False: False, "true": True, "false": False, "1": True, "0": False,
         "yes": True, "no": False}  # fmt: skip


class IngestError(Exception):
    """Bad input: ``lines`` holds one ``FILE:LINE: FIELD: reason`` per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class BadField(ValueError):
    """One field of one message is wrong: ``field`` and ``reason`` say which and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class Validator:
    def __init__(
        self,
        cfg: Config,
        *,
        default_kind: str = "marketing",
        scheduler: Scheduler | None = None,
        now: float | None = None,
        window: str = "",
    ) -> None:
        self.cfg = cfg
        self.region = cfg.defaults.region
        self._national = National(self.region)
        self.kinds = set(BUILTIN_KINDS) | set(cfg.windows)
        self.default_kind = default_kind
        self.max_parts = cfg.defaults.max_parts
        self.scheduler = scheduler
        self.now = now
        self.default_zone = 0  # messages whose zone fell back to [defaults] timezone
        self.window = window  # this batch's [windows.NAME] instead of each kind's
        self._send_windows = {op.name: op.send_windows for op in cfg.operators}
        self.link_base = cfg.links.base
        self.code_length = cfg.links.code_length

    def number(self, raw: Any) -> str:
        """E.164 with ``+``, or BadField. Plain international numbers take a fast path."""
        if isinstance(raw, str):
            fast = fast_e164(raw) or self._national(raw)
            if fast is not None:
                return fast
        return self._parse_number(raw)

    def _parse_number(self, raw: Any) -> str:
        if not isinstance(raw, str | int) or not str(raw).strip():
            raise BadField("to", "expected a phone number")
        text = str(raw).strip()
        digits = text.removeprefix("+")
        if (
            digits.isdigit()
            and len(digits) >= 8
            and not text.startswith("+")
            and not text.startswith("8")
        ):
            text = "+" + digits
        try:
            num = phonenumbers.parse(text, self.region)
        except phonenumbers.NumberParseException as exc:
            raise BadField("to", f"{raw!r} is not a phone number ({exc})") from None
        if not phonenumbers.is_valid_number(num):
            raise BadField("to", f"{raw!r} is not a valid number")
        return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)

    def message(self, obj: Any, line: int = 0) -> NewMessage:
        """A producer's message object, validated; ``line``: its line in the file, which
        is also its id when it has none (so that re-running the file adds nothing)."""
        if not isinstance(obj, dict):
            raise BadField("line", "expected a JSON object")
        unknown = obj.keys() - _FIELDS
        if unknown:
            raise BadField(
                sorted(unknown)[0], f"unknown field (expected one of {', '.join(FIELDS)})"
            )
        to = self.number(obj.get("to"))
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            raise BadField("text", "expected a non-empty string")
        kind = obj.get("kind") or self.default_kind
        if kind not in self.kinds:
            raise BadField("kind", f"{kind!r}: expected one of {', '.join(sorted(self.kinds))}")
        text, links = self.tracked(text, kind, self._track(obj.get("track")))
        parts = self.parts(text)
        sender = self.sender(obj.get("from", self.cfg.defaults.sender))
        ext_id = obj.get("id", line or "")
        if not isinstance(ext_id, str | int) or isinstance(ext_id, bool):
            raise BadField("id", "expected a string or an integer")
        if len(str(ext_id)) > MAX_ID_CHARS:
            raise BadField("id", f"{len(str(ext_id))} characters, at most {MAX_ID_CHARS}")
        not_before = self.time(obj, "not_before")
        expires = self.time(obj, "expires")
        if not_before and expires and expires <= not_before:
            raise BadField("expires", "must be after not_before")
        return self.new_message(
            to=to,
            text=text,
            sender=sender,
            kind=kind,
            ext_id=str(ext_id),
            parts=parts,
            window=self.window,
            not_before=not_before,
            expires=expires,
            line=line,
            links=links,
        )

    def _track(self, raw: Any) -> bool | None:
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str | bool | int):
            raise BadField("track", f"{raw!r}: expected true or false")
        value = _TRUE.get(raw.strip().lower() if isinstance(raw, str) else raw)
        if value is None:
            raise BadField("track", f"{raw!r}: expected true or false")
        if value and not self.link_base:
            raise BadField("track", "true needs [links] base in engine.toml (the links' prefix)")
        return value

    def tracked(self, text: str, kind: str, track: bool | None = None) -> tuple[str, list[Link]]:
        """(the text as sent, its links): with [links] base set, each URL of a marketing
        message (or of any message with ``track`` true; none with ``track`` false)
        becomes base + a random code."""
        if not self.link_base or track is False or (track is None and kind not in TRACKED_KINDS):
            return text, []
        return shortlinks.track(text, self.link_base, self.code_length)

    def parts(self, text: str) -> int:
        """The text's parts as sent (BadField "text" past [defaults] max_parts)."""
        try:
            enc, parts = encoding.count_parts(text)
        except encoding.EncodingError as exc:
            raise BadField("text", str(exc)) from None
        if parts > self.max_parts:
            raise BadField(
                "text", f"needs {parts} {enc.value} parts, the limit is {self.max_parts}"
            )
        return parts

    def new_message(
        self,
        *,
        to: str,
        text: str,
        sender: str,
        kind: str,
        ext_id: str,
        parts: int,
        window: str = "",
        not_before: float | None = None,
        expires: float | None = None,
        line: int = 0,
        links: list[Link] | None = None,
    ) -> NewMessage:
        """A validated message, routed and timed: due at its window's next opening if closed.

        A number that no operator routes is refused (BadField "to"); with no operators
        in the config at all (a producer's own config) the engine routes it when it
        sends it.
        """
        route = self.route(to)
        due, zone, zone_default = self.timing(window or kind, kind, to, route, not_before)
        return NewMessage(
            to=to,
            text=text,
            sender=sender,
            kind=kind,
            ext_id=ext_id,
            route=route,
            parts=parts,
            not_before=not_before,
            expires=expires,
            due=due,
            zone=zone,
            window=window,
            zone_default=zone_default,
            line=line,
            links=links or [],
        )

    def route(self, to: str) -> str:
        """The operator that routes ``to`` (BadField if none does)."""
        route = route_for(to, self.cfg.operators)
        if route == UNROUTED and self.cfg.operators:
            raise BadField("to", f"no operator routes {to} (no matching prefixes, no default)")
        return route

    def timing(
        self, window: str, kind: str, to: str, route: str, not_before: float | None = None
    ) -> tuple[float | None, str, bool]:
        """(due, zone, whether the zone fell back to the default) for a message of
        ``kind`` to ``to`` on ``route``, sent in ``window`` (its kind's, or its batch's)."""
        also = self._send_windows.get(route, {}).get(kind, "")
        fallbacks = self.default_zone
        due, zone = self.schedule(window, to, not_before, also)
        return due, zone, self.default_zone > fallbacks

    def schedule(
        self, kind: str, to: str, not_before: float | None, also: str = ""
    ) -> tuple[float | None, str]:
        """(due, zone): not_before, pushed to the next opening of the send window if closed.

        ``also``: the route's operator's window for this kind, which must hold too.
        """
        scheduler = self.scheduler
        if scheduler is None or not (scheduler.windowed(kind) or scheduler.windowed(also)):
            return not_before, ""
        now = self.now if self.now is not None else time.time()
        at = max(now, not_before or now)
        decision = scheduler.decide(kind, to, at, also)
        self.default_zone += decision.zone_source == "default"
        if decision.open:
            return (not_before if not_before and not_before > now else None), decision.zone
        # no opening within reach: due far away; it ends skipped when it expires
        return decision.due or at + 365 * 86400, decision.zone

    def sender(self, raw: Any) -> str:
        if not isinstance(raw, str) or not raw:
            raise BadField("from", "expected a sender id")
        digits = raw.removeprefix("+")
        if digits.isdigit():
            if len(digits) > 15:
                raise BadField("from", f"{raw!r}: a numeric sender has at most 15 digits")
        elif len(raw) > 11 or not raw.isascii():
            raise BadField(
                "from", f"{raw!r}: an alphanumeric sender has at most 11 ASCII characters"
            )
        return raw

    def time(self, obj: dict[str, Any], field: str) -> float | None:
        raw = obj.get(field)
        if raw in (None, ""):
            return None
        try:
            t = datetime.fromisoformat(str(raw))
        except ValueError:
            raise BadField(
                field, f"{raw!r}: expected ISO 8601, e.g. 2026-11-23T10:00:00+03:00"
            ) from None
        if t.tzinfo is None:
            raise BadField(field, f"{raw!r}: needs a UTC offset, e.g. +03:00")
        return t.timestamp()


class _Text:
    """A file's lines as text: bytes decoded line by line, so that a byte that is not
    UTF-8 is reported with its line and its offset in the file (a bad line reads as
    empty, and is reported once)."""

    def __init__(self, stream: Iterable[str] | Iterable[bytes], errors: list[str], name: str):
        self.stream, self.errors, self.name = stream, errors, name

    def __iter__(self) -> Iterator[str]:
        offset = 0
        for n, raw in enumerate(self.stream, 1):
            if isinstance(raw, str):
                yield raw
                continue
            start = 3 if n == 1 and raw.startswith(b"\xef\xbb\xbf") else 0
            try:
                yield raw[start:].decode("utf-8")
            except UnicodeDecodeError as exc:
                at = offset + start + exc.start
                if len(self.errors) < MAX_ERRORS:
                    self.errors.append(
                        f"{self.name}:{n}: line: not UTF-8 ({exc.reason} at byte {at} of the "
                        f"file, byte {start + exc.start + 1} of the line)"
                    )
                yield "\n"
            offset += len(raw)


def _json_lines(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    decoder = msgspec.json.Decoder()
    for n, line in enumerate(lines, 1):
        if not line or line.isspace():
            continue
        try:
            yield n, decoder.decode(line)
        except msgspec.DecodeError as exc:
            yield n, BadField("line", f"not valid JSON: {exc}")


def _csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(lines)
    missing = {"to", "text"} - set(reader.fieldnames or ())
    if missing:
        yield 1, BadField("header", f"missing column(s) {', '.join(sorted(missing))}")
        return
    for row in reader:
        yield reader.line_num, {k: v for k, v in row.items() if k and v not in (None, "")}


def messages(
    stream: io.TextIOBase | io.BufferedIOBase | Iterable[str] | Iterable[bytes],
    name: str,
    validator: Validator,
    *,
    fmt: str = "auto",
) -> Iterator[NewMessage]:
    """Valid messages in file order; raises IngestError at the end if any line was bad.

    ``stream``: text, or bytes (then a byte that is not UTF-8 is reported with its
    line and offset). After the first bad line nothing more is yielded, but every
    line is still checked so that the error lists them all (up to MAX_ERRORS).
    A line without an id takes its line number as id.
    """
    if fmt == "auto":
        fmt = "csv" if name.endswith(".csv") else "jsonl"
    errors: list[str] = []
    lines = stream if isinstance(stream, io.TextIOBase) else _Text(stream, errors, name)
    rows: Iterable[tuple[int, Any]] = _csv_rows(lines) if fmt == "csv" else _json_lines(lines)
    for n, obj in rows:
        try:
            if isinstance(obj, BadField):
                raise obj
            msg = validator.message(obj, line=n)
        except BadField as bad:
            if len(errors) < MAX_ERRORS:
                errors.append(f"{name}:{n}: {bad.field}: {bad.reason}")
            continue
        if not errors:
            yield msg
    if errors:
        raise IngestError(errors)
