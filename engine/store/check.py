"""Store.check: every counter equals what it counts, every message is where it says.

A full scan in one read transaction (for tests, the crash tests and tools):
counts by state, batch and kind; zone_default, unroutable and awaiting; every
pending message in exactly one place (ready, parked, sched, or a claim set);
every index entry and SMSC id pointing at a message that has it; every message
awaiting a receipt in a sent set, every final one in a final set; the stop and
dead lists naming the numbers whose records say so; and what this store object
remembers of its claims agreeing with the database.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import lmdb

from engine.store import layout as L
from engine.store import outbox, readers
from engine.store import records as r
from engine.store.errors import StoreError
from engine.store.layout import BATCH, KIND, OPERATOR, ROUTE

if TYPE_CHECKING:
    from engine.store.store import Store


class _Scan:
    def __init__(self) -> None:
        self.states: Counter[str] = Counter()
        self.batches: dict[str, Counter[str]] = {}
        self.kinds: dict[str, Counter[str]] = {}
        self.zone_default = self.unroutable = self.awaiting = 0

    def add(self, batch: str, kind: str, state: str) -> None:
        self.states[state] += 1
        self.batches.setdefault(batch, Counter())[state] += 1
        self.kinds.setdefault(kind, Counter())[state] += 1


def _fail(what: str) -> None:
    raise StoreError(f"store check: {what}")


def check(s: Store, txn: lmdb.Transaction) -> None:
    def name(cat: bytes, i: int) -> str:
        return s.names.name_of(txn, s.db["names"], cat, i)

    places = _places(s, txn, name)
    claimed = readers.claims(s, txn)
    sent_sets = _set_members(txn, s.db["sent"])
    final_sets = _set_members(txn, s.db["final"])
    loading = {
        bytes(k).decode()
        for k, v in txn.cursor(db=s.db["batches"])
        if s.coders.batch.decode(v).loading_pid
    }
    scan = _Scan()
    bodies = txn.cursor(db=s.db["body"])
    for idkey, raw in txn.cursor(db=s.db["status"]):
        mid = L.U64.unpack(idkey)[0]
        if bodies.get(idkey) is None:
            _fail(f"message {mid} has a status and no body")
        st = L.Status.unpack(raw)
        batch, kind = name(BATCH, st.batch), name(KIND, st.kind)
        if batch in loading:
            if mid in places:
                _fail(f"message {mid} of a batch still loading is indexed")
            continue
        state = _state_of(mid, st, raw, places, claimed)
        scan.add(batch, kind, r.STATES[state])
        if state in L.PENDING:
            scan.zone_default += bool(st.flags & L.ZONE_DEFAULT)
            scan.unroutable += st.route == 0
        if state == L.SENT and not st.flags & L.NO_RECEIPT:
            scan.awaiting += 1
            if (st.sent_ms, mid) not in sent_sets:
                _fail(f"message {mid} awaits a receipt but is in no sent set of its time")
        if state in L.FINAL and (st.updated_ms, mid) not in final_sets:
            _fail(f"message {mid} is {r.STATES[state]} but in no final set of its time")
    if txn.stat(s.db["body"])["entries"] != txn.stat(s.db["status"])["entries"]:
        _fail("a body without a status record")
    _counters(s, txn, scan)
    _smsc(s, txn, name)
    _numbers(s, txn)
    _memory(s, claimed, places)
    _outbox(s, txn)


def _outbox(s: Store, txn: lmdb.Transaction) -> None:
    """The webhooks' backlog counter equals the events waiting in the outbox."""
    waiting = 0
    for _, entry, bitmap in outbox.entries(txn, s.db, 0, 1 << 62):
        waiting += sum(not outbox.is_done(bitmap, i) for i in range(len(entry)))
    counted = readers.counter(s, txn, outbox.BACKLOG_KEY)
    if counted != waiting:
        _fail(f"webhooks backlog counter {counted}, but {waiting} event(s) wait in the outbox")


def _places(s: Store, txn: lmdb.Transaction, name: object) -> dict[int, str]:
    """id -> the index it waits in; an entry whose value or key disagrees with its status
    record, or a second place, is an error."""
    out: dict[int, str] = {}
    status = txn.cursor(db=s.db["status"])
    names = {"ready": ROUTE, "parked": BATCH}
    for db in ("ready", "parked", "sched"):
        for key, value in txn.cursor(db=s.db[db]):
            idkey = bytes(key[-8:] if db != "sched" else key[8:])
            mid = L.U64.unpack(idkey)[0]
            raw = status.get(idkey)
            if raw is None or bytes(raw) != bytes(value):
                _fail(f"{db} entry of message {mid} is not its status record")
            st = L.Status.unpack(raw)
            if st.state != L.WAITING:
                _fail(f"message {mid} is {r.STATES[st.state]} and still in {db}")
            if db == "sched":
                right = L.U64.unpack_from(key)[0] == st.due_ms
            else:
                i = st.route if db == "ready" else st.batch
                right = bytes(key[:-9]).decode() == name(names[db], i)  # type: ignore[operator]
            if not right:
                _fail(f"{db} key of message {mid} disagrees with its status record")
            if mid in out:
                _fail(f"message {mid} waits in {out[mid]} and in {db}")
            out[mid] = db
    return out


def _state_of(
    mid: int, st: L.Status, raw: bytes, places: dict[int, str], claimed: dict[int, int]
) -> int:
    if st.state != L.WAITING:
        if mid in places:
            _fail(f"message {mid} is {r.STATES[st.state]} and waits in {places[mid]}")
        return st.state
    where = places.get(mid)
    if where is None:
        if mid not in claimed:
            _fail(f"message {mid} is pending but waits nowhere and is in no claim set")
        return L.INFLIGHT
    return L.SCHEDULED if where == "sched" else L.QUEUED


def _set_members(txn: lmdb.Transaction, db: object) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for key, raw in txn.cursor(db=db):
        at = L.U64.unpack_from(key)[0]
        out.update((at, mid) for mid in L.unpack_ids(raw))
    return out


def _counters(s: Store, txn: lmdb.Transaction, scan: _Scan) -> None:
    counts = readers.counts(s, txn)
    states = {k: v for k, v in counts.states.items() if v}
    if states != dict(scan.states):
        _fail(f"state counters {states} != messages by state {dict(scan.states)}")
    for batch, per in scan.batches.items():
        if counts.batches.get(batch, {}) != dict(per):
            _fail(f"batch {batch!r} counts {counts.batches.get(batch)} != its messages {dict(per)}")
    extra = {b for b, per in counts.batches.items() if per} - set(scan.batches)
    if extra:
        _fail(f"batch counts for batches without messages: {sorted(extra)}")
    kinds = {k: dict(v) for k, v in scan.kinds.items()}
    if counts.kinds != kinds:
        _fail(f"kind counters {counts.kinds} != messages by kind {kinds}")
    for what, counted, scanned in (
        ("zone_default", counts.zone_default, scan.zone_default),
        ("unroutable", counts.unroutable, scan.unroutable),
        ("awaiting", readers.counter(s, txn, L.AWAITING_KEY), scan.awaiting),
    ):
        if counted != scanned:
            _fail(f"{what} counter {counted} != {scanned} messages")


def _smsc(s: Store, txn: lmdb.Transaction, name: object) -> None:
    status, body = txn.cursor(db=s.db["status"]), txn.cursor(db=s.db["body"])
    for key, value in txn.cursor(db=s.db["smsc"]):
        idkey, part, to = bytes(value[:8]), value[8], bytes(value[9:])
        mid = L.U64.unpack(idkey)[0]
        raw = status.get(idkey)
        if raw is None:
            _fail(f"SMSC id {bytes(key)!r} points at message {mid}, which is gone")
        st = L.Status.unpack(raw)
        operator = name(OPERATOR, st.operator)  # type: ignore[operator]
        if part >= len(st.ids) or L.smsc_key(operator, st.ids[part]) != bytes(key):
            _fail(f"SMSC id {bytes(key)!r} points at message {mid}, which has {st.ids}")
        if s.coders.body.decode(body.get(idkey)).to.encode() != to:
            _fail(f"SMSC id {bytes(key)!r} names another number than message {mid}'s")


def _numbers(s: Store, txn: lmdb.Transaction) -> None:
    listed = {
        which: {bytes(k) for k in txn.cursor(db=s.db[which]).iternext(values=False)}
        for which in ("stop", "dead")
    }
    for key, raw in txn.cursor(db=s.db["numbers"]):
        rec = s.coders.number.decode(raw)
        if not (rec.outcomes or rec.sent or rec.stop or rec.dead):
            _fail(f"number {bytes(key)!r} has an empty record")
        for which in ("stop", "dead"):
            has = getattr(rec, which) is not None
            if has != (bytes(key) in listed[which]):
                _fail(f"number {bytes(key)!r}: its record and the {which} list disagree")
            listed[which].discard(bytes(key))
    for which, left in listed.items():
        if left:
            _fail(f"the {which} list names numbers without a record: {sorted(left)[:3]}")


def _memory(s: Store, claimed: dict[int, int], places: dict[int, str]) -> None:
    per_set: Counter[int] = Counter()
    for mid, (seq, *_) in s._live.items():
        if mid not in claimed or mid in places:
            _fail(f"this store has message {mid} in flight; the database does not")
        per_set[seq] += 1
    for seq, info in s._sets.items():
        if per_set[seq] != info[0]:
            _fail(f"claim set {seq}: {info[0]} in flight remembered, {per_set[seq]} found")
