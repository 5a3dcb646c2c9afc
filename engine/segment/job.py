"""The segmentation job: customers in, one batch per segment out (or a dry-run report).

Two streaming passes over the CSV. The first ranks the rows of each phone
(engine/segment/duplicates.py: the row that can be messaged wins). The second
validates each row, drops the rows that lost to another of their phone,
checks consent, classifies the row into the first segment whose condition
holds, screens it against the store (stop list, dead numbers, frequency caps),
and renders and spools its message to a temporary file per segment, timed
(the segment's ``not_before``/``expires``, its send window) and priced
(``[[operators]] price_per_part``). Before a chunk is classified, each
customer's memory values (what the campaign's earlier runs did with their
number, engine/segment/memory.py) are read from the store; a segment that may
not repeat excludes whoever it already sent to (``already_sent``). URLs become
tracked short links ([links]); parts are counted as sent. Nothing is enqueued
until the whole file has been read without a segment error; then each
segment's spool goes to ``Store.enqueue`` as its own batch, the campaign's step
(idempotent on the customer's id: a re-run the same day adds nothing), and the
numbers of ``suppress`` list segments are stop-listed. Memory holds one chunk
of rows and one int per distinct phone (engine/segment/spool.py: the files).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import msgspec

from engine import ingest
from engine import links as shortlinks
from engine.config import Config
from engine.sched.caps import Caps
from engine.sched.schedule import Scheduler
from engine.segment import limits
from engine.segment.customers import BadRow, Customer, Reader, rows
from engine.segment.duplicates import Duplicates, standing
from engine.segment.memory import Recall
from engine.segment.rules import CompiledSegment, Rules, RulesError
from engine.segment.spool import rewindable, spooled
from engine.smpp import encoding
from engine.store import MAX_ID_CHARS, EnqueueResult, NewMessage, Store, StoreError
from engine.store.store import check_batch_id

CHUNK = 4096
SAMPLES = 3
LINES_SHOWN = 10
PARTS_CACHE = 100_000


class SegmentResult(msgspec.Struct):
    name: str
    batch: str
    action: str
    recipients: int = 0
    excluded: dict[str, int] = {}
    messages: dict[str, int] = {}  # encoding -> messages
    parts: dict[str, int] = {}  # encoding -> parts
    samples: list[str] = []
    error: str = ""
    enqueued: EnqueueResult | None = None
    not_before: float | None = None  # the messages' not_before and expires, resolved
    expires: float | None = None
    later: int = 0  # messages that wait for their send window (or not_before)
    cost: float = 0.0  # parts x the route's [[operators]] price_per_part
    unpriced_parts: int = 0  # parts on routes without a price
    suppressed: int = 0  # a suppress list segment's numbers stop-listed by this run

    @property
    def total_parts(self) -> int:
        return sum(self.parts.values())


class Report(msgspec.Struct):
    campaign: str
    as_of: date
    customers: int = 0
    not_targeted: int = 0
    excluded: dict[str, int] = {}
    bad_lines: list[str] = []
    duplicate_lines: list[str] = []  # the rows that lost to another row of their phone
    segments: list[SegmentResult] = []
    removal_list: str = ""
    priced: bool = False  # some operator has a price_per_part
    zone: str = "UTC"  # the zone times are shown in ([defaults] timezone)

    @property
    def errors(self) -> list[str]:
        return [f"segment {s.name}: {s.error}" for s in self.segments if s.error]


class _Segment:
    """One segment's running state: counters, samples, its spool file."""

    def __init__(self, seg: CompiledSegment, batch: str, spool: IO[bytes] | None) -> None:
        self.seg = seg
        self.result = SegmentResult(seg.name, batch, seg.action)
        self.excluded: Counter[str] = Counter()
        self.spool = spool
        self.pending: list[Customer] = []  # matched in this chunk, not yet screened
        self.suppress: list[str] = []  # a suppress list segment's numbers


class Job:
    def __init__(
        self,
        cfg: Config,
        rules: Rules,
        store: Store | None,
        *,
        as_of: date,
        now: float | None = None,
        dry_run: bool = False,
        removal_list: Path | None = None,
    ) -> None:
        self.cfg, self.rules, self.store = cfg, rules, store
        self.as_of, self.dry_run = as_of, dry_run
        self.now = time.time() if now is None else now
        self._source = ""
        self.removal_path = removal_list
        self.validator = ingest.Validator(cfg, scheduler=Scheduler(cfg), now=self.now)
        self.max_parts = rules.campaign.max_parts or cfg.defaults.max_parts
        self.zone = ZoneInfo(cfg.defaults.timezone)
        # relative times ("+3d") count from the run, or from the start of the --as-of
        # day when that is later (a batch prepared for a coming day)
        start = datetime.combine(as_of, datetime.min.time(), self.zone)
        self.reference = max(datetime.fromtimestamp(self.now, self.zone), start)
        self._prices = {
            op.name: op.price_per_part for op in cfg.operators if op.price_per_part is not None
        }
        self._times: dict[str, tuple[float | None, float | None]] = {}
        self._check(rules)
        self._encoder = msgspec.msgpack.Encoder()
        self._duplicates = Duplicates()
        self._excluded: Counter[str] = Counter()
        self._bad: list[str] = []
        self._lost: list[str] = []
        self._parts: dict[str, tuple[encoding.Encoding, int]] = {}
        names = [seg.name for seg in rules.segments]
        self.recall = Recall(store, rules.campaign.name, names, as_of, self.zone, rules.remembers)

    def _check(self, rules: Rules) -> None:
        caps = Caps(self.cfg)
        for seg in rules.segments:
            if seg.action != "send":
                continue
            if seg.kind not in self.validator.kinds:
                raise RulesError(
                    f"segment {seg.name}: kind {seg.kind!r}: expected one of "
                    f"{sorted(self.validator.kinds)}"
                )
            if seg.window and seg.window not in self.cfg.windows:
                raise RulesError(f"segment {seg.name}: window: no [windows.{seg.window}]")
            try:
                self.validator.sender(seg.sender or self.cfg.defaults.sender)
            except ingest.BadField as exc:
                raise RulesError(f"segment {seg.name}: sender: {exc.reason}") from None
            if seg.cap is not None:
                limits.check_cap(seg, caps)
            self._times[seg.name] = self._timing(seg)

    def _timing(self, seg: CompiledSegment) -> tuple[float | None, float | None]:
        return limits.deadlines(seg, self.reference, self.now, self.zone)

    # -- the pass ---------------------------------------------------------------

    def run(self, stream: io.TextIOBase, source: str) -> Report:
        self._source = source
        with (
            tempfile.TemporaryDirectory(prefix="volley-segment-") as tmp,
            contextlib.ExitStack() as closing,
        ):
            stream = rewindable(stream, Path(tmp), closing)
            header, numbered = rows(stream, source)
            reader = Reader(self.rules.columns, header, self.as_of, source)
            try:
                self._rank(numbered, reader)
            except csv.Error as exc:
                raise RulesError(f"{source}: not a readable CSV file: {exc}") from None
            stream.seek(0)
            header, numbered = rows(stream, source)
            segments = self._open(Path(tmp))
            removal = self._removal(header)
            report = Report(
                self.rules.campaign.name,
                self.as_of,
                priced=bool(self._prices),
                zone=self.cfg.defaults.timezone,
            )
            try:
                self._classify(numbered, reader, segments, removal, source, report)
            except csv.Error as exc:
                raise RulesError(f"{source}: not a readable CSV file: {exc}") from None
            finally:
                for s in segments:
                    if s.spool:
                        s.spool.close()
                if removal:
                    removal[0].close()
            self._finish(report, segments, Path(tmp))
        return report

    def _classify(
        self,
        numbered: Iterator[tuple[int, list[str]]],
        reader: Reader,
        segments: list[_Segment],
        removal: tuple[IO[str], Any] | None,
        source: str,
        report: Report,
    ) -> None:
        """The second pass, a chunk of rows at a time."""
        chunk: list[tuple[int, list[str]]] = []
        for item in numbered:
            chunk.append(item)
            if len(chunk) >= CHUNK:
                self._chunk(chunk, reader, segments, removal, source, report)
                chunk = []
        self._chunk(chunk, reader, segments, removal, source, report)

    def _rank(self, numbered: Iterator[tuple[int, list[str]]], reader: Reader) -> None:
        """The first pass: each valid row's standing among the rows of its phone."""
        number, offer = self.validator.number, self._duplicates.offer
        for line, cells in numbered:
            try:
                phone, consent, activity, signup = reader.standing(cells)
                key = int(number(phone)[1:])
            except (BadRow, ingest.BadField):
                continue  # reported by the second pass
            offer(key, standing(line, consent, activity, signup))

    def _open(self, tmp: Path) -> list[_Segment]:
        out = []
        for seg in self.rules.segments:
            spool = None
            if seg.action == "send" and not self.dry_run:
                spool = open(tmp / f"{seg.name}.spool", "wb")  # noqa: SIM115
            batch = self.rules.batch_id(seg.name, self.as_of)
            try:
                check_batch_id(batch)
            except StoreError as exc:
                raise RulesError(f"segment {seg.name}: {exc}") from None
            out.append(_Segment(seg, batch, spool))
        return out

    def _removal(self, header: list[str]) -> tuple[IO[str], Any] | None:
        if self.dry_run or self.removal_path is None:
            return None
        if not any(s.action == "list" for s in self.rules.segments):
            return None
        tmp = self.removal_path.with_name(self.removal_path.name + ".part")
        handle = open(tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115
        writer = csv.writer(handle)
        writer.writerow(["segment", "line", *header])
        return handle, writer

    def _chunk(
        self,
        chunk: list[tuple[int, list[str]]],
        reader: Reader,
        segments: list[_Segment],
        removal: tuple[IO[str], Any] | None,
        source: str,
        report: Report,
    ) -> None:
        customers = []
        for line, cells in chunk:
            report.customers += 1
            customer = self._customer(reader, line, cells, source)
            if customer is not None:
                customers.append((customer, cells))
        self.recall.fill([customer for customer, _ in customers])
        for customer, cells in customers:
            for s in segments:
                if s.seg.test(customer.values):
                    self._matched(s, customer, cells, removal)
                    break
            else:
                report.not_targeted += 1
        for s in segments:
            if s.pending:
                self._screen_and_spool(s)

    def _matched(
        self, s: _Segment, customer: Customer, cells: list[str], removal: tuple[IO[str], Any] | None
    ) -> None:
        seg = s.seg
        if seg.action == "list":
            s.result.recipients += 1
            if removal:
                removal[1].writerow([seg.name, customer.line, *cells])
            if seg.suppress:
                s.suppress.append(customer.phone)
        elif not seg.repeat and customer.values.get(f"sent_{seg.name}"):
            s.excluded["already_sent"] += 1  # an earlier run of this segment sent to them
        else:
            s.pending.append(customer)

    def _customer(
        self, reader: Reader, line: int, cells: list[str], source: str
    ) -> Customer | None:
        """The row as a Customer with an E.164 phone, or None (counted with its reason)."""
        try:
            customer = reader.customer(line, cells)
            e164 = self.validator.number(customer.phone)
            self.validator.route(e164)
        except BadRow as exc:
            self._exclude("bad_row", f"{source}:{line}: {exc.field}: {exc.reason}")
            return None
        except ingest.BadField as exc:
            column = self.rules.columns.phone
            self._exclude("invalid_number", f"{source}:{line}: {column}: {exc.reason}")
            return None
        key = int(e164[1:])
        kept = self._duplicates.winner(key, line)
        if kept:
            self._excluded["duplicate"] += 1
            if len(self._lost) < LINES_SHOWN:
                self._lost.append(self._lost_to(customer, e164, kept, source))
            return None
        if not customer.values["consent"]:
            self._excluded["no_consent"] += 1
            return None
        customer.phone = e164
        return customer

    def _lost_to(self, customer: Customer, e164: str, kept: int, source: str) -> str:
        """Which row of this customer's phone is kept instead of theirs, and why."""
        v = customer.values
        rank = standing(
            customer.line, v["consent"], v["days_since_activity"], v["days_since_signup"]
        )
        why = self._duplicates.why(int(e164[1:]), rank)
        return (
            f"{source}:{customer.line}: {self.rules.columns.phone}: {e164} is also on line "
            f"{kept}, which is kept ({why})"
        )

    def _exclude(self, reason: str, detail: str) -> None:
        self._excluded[reason] += 1
        if len(self._bad) < LINES_SHOWN:
            self._bad.append(detail)

    def _screen_and_spool(self, s: _Segment) -> None:
        seg, pending, s.pending = s.seg, s.pending, []
        numbers = [customer.phone for customer in pending]
        reasons = (
            self.store.screen(numbers, seg.kind, self.now, seg.cap)
            if self.store is not None
            else [""] * len(numbers)
        )
        batch: list[NewMessage] = []
        for customer, reason in zip(pending, reasons, strict=True):
            if reason:
                s.excluded[reason] += 1
                continue
            text = self._render(s, customer)
            if text is None:
                continue
            message = self._message(s, customer, text)
            if message is not None:
                batch.append(message)
        if batch and s.spool is not None:
            body = self._encoder.encode(batch)
            s.spool.write(len(body).to_bytes(4, "big") + body)

    def _render(self, s: _Segment, customer: Customer) -> str | None:
        """The customer's text in their language; None (counted) if a placeholder has
        no value and no fallback: never a literal ``{name}``."""
        seg = s.seg
        variant = seg.variant(customer.language, named=bool(customer.texts.get("name")))
        values: dict[str, str] = {}
        for field in variant.placeholders:
            value = seg.link if field == "link" else customer.texts.get(field, "")
            if not value:
                if field not in variant.fallbacks:  # on_missing = "exclude" (checked at load)
                    s.excluded[f"missing_{field}"] += 1
                    return None
                value = variant.fallbacks[field]
            values[field] = value
        return variant.template.format_map(values)

    def _message(self, s: _Segment, customer: Customer, text: str) -> NewMessage | None:
        """Count the text's parts as sent (a segment error past the limit); the message
        to spool. Its URLs become tracked short links ([links] base)."""
        phone = customer.phone
        seg, result = s.seg, s.result
        text, links = self.validator.tracked(text, seg.kind, seg.track)
        try:
            enc, parts = self._count_parts(shortlinks.shape(text, links))
        except encoding.EncodingError as exc:
            result.error = result.error or f"line {customer.line}: {exc}"
            return None
        if parts > self.max_parts:
            if not result.error:
                result.error = (
                    f"a message needs {parts} {enc.value.upper()} parts, the limit is "
                    f"{self.max_parts} (line {customer.line}: {text!r})"
                )
            return None
        ext_id = customer.id or phone
        if len(ext_id) > MAX_ID_CHARS:  # it would be a key of the store: an error, not a cut
            column = self.rules.columns.id
            result.error = result.error or (
                f"{self._source}:{customer.line}: {column}: {len(ext_id)} characters, "
                f"at most {MAX_ID_CHARS}"
            )
            return None
        not_before, expires = self._times[seg.name]
        message = self.validator.new_message(
            to=phone,
            text=text,
            sender=seg.sender or self.cfg.defaults.sender,
            kind=seg.kind,
            ext_id=ext_id,
            parts=parts,
            window=seg.window,
            line=customer.line,
            not_before=not_before,
            expires=expires,
            links=links,
        )
        if expires is not None and (message.due or self.now) >= expires:
            s.excluded["expires_before_window"] += 1  # it could only be skipped, expired
            return None
        result.recipients += 1
        result.later += message.due is not None
        name = enc.value.upper()
        result.messages[name] = result.messages.get(name, 0) + 1
        result.parts[name] = result.parts.get(name, 0) + parts
        price = self._prices.get(message.route)
        if price is None:
            result.unpriced_parts += parts
        else:
            result.cost += parts * price
        if len(result.samples) < SAMPLES:
            result.samples.append(f"{phone}: {text}")
        return message if s.spool is not None else None

    def _suppress(self, s: _Segment, campaign: str) -> None:
        """Stop-list an end-of-flow segment's numbers (those stop-listed already keep
        their reason, an opt-out's for one)."""
        assert self.store is not None
        why = self.store.screen(s.suppress, "marketing", self.now)
        numbers = [n for n, reason in zip(s.suppress, why, strict=True) if reason != "stopped"]
        reason = f"campaign {campaign}: end of the flow (segment {s.seg.name})"
        s.result.suppressed = self.store.stop(numbers, reason, self.now)

    def _count_parts(self, text: str) -> tuple[encoding.Encoding, int]:
        """Cached: texts repeat (a template with a few names; codes as zeros)."""
        hit = self._parts.get(text)
        if hit is None:
            hit = encoding.count_parts(text)
            if len(self._parts) >= PARTS_CACHE:
                self._parts.clear()
            self._parts[text] = hit
        return hit

    # -- after the pass -----------------------------------------------------------

    def _finish(self, report: Report, segments: list[_Segment], tmp: Path) -> None:
        report.excluded = dict(sorted(self._excluded.items()))
        report.bad_lines = self._bad
        report.duplicate_lines = self._lost
        for s in segments:
            s.result.excluded = dict(sorted(s.excluded.items()))
            s.result.not_before, s.result.expires = self._times.get(s.seg.name, (None, None))
            report.segments.append(s.result)
        if self.dry_run or report.errors or self.store is None:
            if self.removal_path is not None:
                self.removal_path.with_name(self.removal_path.name + ".part").unlink(
                    missing_ok=True
                )
            return
        campaign = self.rules.campaign.name
        for s in segments:
            if s.seg.action == "send" and s.result.recipients:
                s.result.enqueued = self.store.enqueue(
                    s.result.batch,
                    spooled(tmp / f"{s.seg.name}.spool"),
                    now=self.now,
                    campaign=campaign,
                    segment=s.seg.name,
                )
            if s.suppress:
                self._suppress(s, campaign)
        if self.removal_path is not None:
            part = self.removal_path.with_name(self.removal_path.name + ".part")
            if part.exists():
                os.replace(part, self.removal_path)
                report.removal_list = str(self.removal_path)
