"""The webhooks' outbox: events written in the transaction of the change they report.

With ``[webhooks] url`` set, a write transaction that records a receipt, an
inbound message (MO) or a message's final state also appends one outbox entry
(one put per transaction, not per message) saying what happened; ``volley
serve``'s sender (engine/webhooks.py) reads the entries in order, POSTs each
event and deletes what was acknowledged. A crash between the change and its
entry cannot happen: they commit together. With webhooks off nothing is
collected and nothing written.

Databases (their names are in the store's list):

- ``outbox``       seq(8)          -> Entry: a transaction's events, in order
- ``outbox_done``  seq(8)          -> a bitmap of that entry's events already delivered
- ``dead_letters`` seq(8) index(4) -> DeadLetter: an event given up after retry_for

An entry holds ids and what the transaction knew, not the JSON: the sender
fills in the batch, id and number from the message's body (written once, never
rewritten) and a final state from its status record (final is final). The
receipt-timeout sweep and retention leave alone what the outbox still names:
:func:`oldest` bounds the purge. The ``webhooks`` and ``webhooks_dead`` counters
count the events waiting and those dead-lettered.

The hooks: ``collect(tx, ops, results)`` after ``Store.apply`` has run its
operations (receipts and MOs that were recorded), ``append(tx)`` at the end of
every write transaction (what it collected, and every id that became final).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import lmdb
import msgspec

from engine.store import records as r

if TYPE_CHECKING:
    from engine.store.tx import Tx

DATABASES = ("outbox", "outbox_done", "dead_letters")
EVENTS = ("receipt", "mo", "final")
BACKLOG_KEY = b"webhooks"  # counters: events waiting in the outbox
DEAD_KEY = b"webhooks_dead"  # counters: events dead-lettered (ever; fewer once replayed)
FINALS_PER_ENTRY = 4096  # ids of final messages per entry: a big cancel makes several

RECEIPT, MO, FINAL = 0, 1, 2
_U64, _U32 = struct.Struct(">Q"), struct.Struct(">I")  # as layout.py's (which imports this)


def _ms(t: float) -> int:
    return max(0, int(t * 1000))


class Receipt(msgspec.Struct, array_like=True, gc=False):
    """A receipt as recorded: the message, what the receipt said, when, from whom."""

    id: int
    state: str
    stat: str
    err: int | None
    network_error: int | None
    at: float
    final: bool
    smsc_id: str
    operator: str


class Entry(msgspec.Struct, array_like=True, gc=False):
    """One transaction's events: its receipts, then its MOs (their seq in ``mo``), then the
    ids (8 bytes each) that became final. ``at_ms``: its oldest event's time."""

    at_ms: int
    receipts: list[Receipt] = []
    mos: list[int] = []
    finals: bytes = b""

    def __len__(self) -> int:
        return len(self.receipts) + len(self.mos) + len(self.finals) // 8


class DeadLetter(msgspec.Struct, array_like=True, gc=False):
    """An event given up: its JSON body as it was POSTed, why, after how many tries."""

    body: bytes
    at: float  # when it was given up
    attempts: int
    error: str
    type: str = ""


_enc = msgspec.msgpack.Encoder()
_entry = msgspec.msgpack.Decoder(Entry)
_dead = msgspec.msgpack.Decoder(DeadLetter)


# -- writing: the store's hooks ----------------------------------------------------------


def collect(tx: Tx, ops: Sequence[r.Op], results: Sequence[r.Result]) -> None:
    """The receipts and MOs that ``Store.apply`` recorded, for this transaction's entry."""
    events = tx.s.webhooks
    want_receipts, want_mo = "receipt" in events, "mo" in events
    for op, res in zip(ops, results, strict=True):
        if not res.ok:
            continue
        if want_receipts and type(op) is r.RecordReceipt:
            event = Receipt(res.id, op.state, op.stat, op.err, op.network_error, op.at,
                            op.final, op.candidates[0], op.operator)  # fmt: skip
            tx.receipt_events.append(event)
        elif want_mo and type(op) is r.RecordMo:
            tx.mo_events.append((res.id, op.at))


def append(tx: Tx) -> None:
    """At the end of a write transaction: its events as outbox entries (none: no write)."""
    receipts, mos = tx.receipt_events, tx.mo_events
    finals = b""
    if tx.final and "final" in tx.s.webhooks:
        finals = b"".join(b"".join(ids) for ids in tx.final.values())
    if not receipts and not mos and not finals:
        return
    times = [_ms(e.at) for e in receipts] + [_ms(at) for _, at in mos]
    at_ms = min(times + (list(tx.final) if finals else []))
    step = FINALS_PER_ENTRY * 8
    chunks = [finals[i : i + step] for i in range(0, len(finals), step)] or [b""]
    db, seqs = tx.db["outbox"], [seq for seq, _ in mos]
    for i, chunk in enumerate(chunks):
        entry = Entry(at_ms, receipts if i == 0 else [], seqs if i == 0 else [], chunk)
        tx.txn.put(_U64.pack(tx.next_seq()), _enc.encode(entry), db=db, append=True)
    tx.bump(BACKLOG_KEY, len(receipts) + len(mos) + len(finals) // 8)


# -- reading and acknowledging: the sender's side ----------------------------------------


def entries(
    txn: lmdb.Transaction, db: dict[str, Any], after: int, limit: int
) -> list[tuple[int, Entry, bytes]]:
    """Up to ``limit`` entries after seq ``after``, in order: (seq, entry, done bitmap)."""
    cur = txn.cursor(db=db["outbox"])
    done = db["outbox_done"]
    out: list[tuple[int, Entry, bytes]] = []
    if not cur.set_range(_U64.pack(after + 1)):
        return out
    for key, raw in cur:
        seq = _U64.unpack(key)[0]
        out.append((seq, _entry.decode(raw), bytes(txn.get(key, db=done) or b"")))
        if len(out) >= limit:
            break
    return out


def is_done(bitmap: bytes | bytearray, index: int) -> bool:
    byte = index >> 3
    return byte < len(bitmap) and bool(bitmap[byte] >> (index & 7) & 1)


Dead = tuple[int, int, DeadLetter]  # (seq, index, letter)


def acknowledge(tx: Tx, done: dict[int, list[int]], dead: list[Dead]) -> None:
    """Events delivered (``done``: seq -> indexes) or given up (``dead``: kept as dead
    letters, and done too); an entry whose every event is done goes."""
    txn, outbox, done_db = tx.txn, tx.db["outbox"], tx.db["outbox_done"]
    letters = tx.db["dead_letters"]
    for seq, index, letter in dead:
        txn.put(_U64.pack(seq) + _U32.pack(index), _enc.encode(letter), db=letters)
        done.setdefault(seq, []).append(index)
    removed = 0
    for seq, indexes in done.items():
        key = _U64.pack(seq)
        raw = txn.get(key, db=outbox)
        if raw is None:
            continue  # acknowledged already (another sender before a restart)
        total = len(_entry.decode(raw))
        bitmap = bytearray(txn.get(key, db=done_db) or b"")
        bitmap.extend(bytes(max(0, (total + 7) // 8 - len(bitmap))))
        for i in indexes:
            if 0 <= i < total and not bitmap[i >> 3] >> (i & 7) & 1:
                bitmap[i >> 3] |= 1 << (i & 7)
                removed += 1
        if all(is_done(bitmap, i) for i in range(total)):
            txn.delete(key, db=outbox)
            txn.delete(key, db=done_db)
        else:
            txn.put(key, bytes(bitmap), db=done_db)
    tx.bump(BACKLOG_KEY, -removed)
    tx.bump(DEAD_KEY, len(dead))


def oldest(txn: lmdb.Transaction, db: dict[str, Any]) -> int | None:
    """The time (ms) of the first entry still in the outbox (None: empty). The retention
    purge keeps the messages that became final since (less a margin: entries are in
    commit order, their times nearly so), so the sender can still read them."""
    cur = txn.cursor(db=db["outbox"])
    if not cur.first():
        return None
    return int(_entry.decode(cur.value()).at_ms)


def dead_letters(
    txn: lmdb.Transaction, db: dict[str, Any], limit: int, oldest_first: bool = False
) -> list[tuple[int, int, DeadLetter]]:
    """Up to ``limit`` dead letters, newest first, or oldest first (the order their events
    happened, as a replay sends them): (seq, index, letter)."""
    cur = txn.cursor(db=db["dead_letters"])
    out: list[tuple[int, int, DeadLetter]] = []
    if cur.first() if oldest_first else cur.last():
        for key, raw in cur.iternext() if oldest_first else cur.iterprev():
            out.append((_U64.unpack_from(key)[0], _U32.unpack_from(key, 8)[0], _dead.decode(raw)))
            if len(out) >= limit:
                break
    return out


def forget_dead(tx: Tx, keys: Sequence[tuple[int, int]]) -> int:
    """Dead letters delivered after all (a replay): gone, and counted no more. How many."""
    letters = tx.db["dead_letters"]
    gone = sum(tx.txn.delete(_U64.pack(seq) + _U32.pack(index), db=letters) for seq, index in keys)
    tx.bump(DEAD_KEY, -gone)
    return gone


def decode_letter(raw: bytes) -> DeadLetter:
    return _dead.decode(raw)


class Event(msgspec.Struct, gc=False):
    """One event of an entry, with what the store holds of its subject: the message (for
    a receipt or a final state; None if retention purged it) or the inbound message."""

    seq: int
    index: int
    type: str  # "receipt", "mo", "final"
    message: r.Message | None = None
    receipt: Receipt | None = None
    mo: r.Mo | None = None
    mo_seq: int = 0
    message_id: int = 0


def events(s: Any, txn: lmdb.Transaction, after: int, limit: int) -> tuple[list[Event], int]:
    """The events not yet delivered of up to ``limit`` entries after seq ``after``, in
    order, each with its message read in this transaction; and the last seq read."""
    from engine.store import readers

    out: list[Event] = []
    last = after
    mo_db = s.db["mo"]
    for seq, entry, bitmap in entries(txn, s.db, after, limit):
        last = seq
        index = 0
        for rec in entry.receipts:
            if not is_done(bitmap, index):
                msg = readers.get(s, txn, rec.id)
                out.append(Event(seq, index, "receipt", msg, rec, message_id=rec.id))
            index += 1
        for mo_seq in entry.mos:
            if not is_done(bitmap, index):
                raw = txn.get(_U64.pack(mo_seq), db=mo_db)
                mo = None if raw is None else s.coders.mo.decode(raw)
                out.append(Event(seq, index, "mo", mo=mo, mo_seq=mo_seq))
            index += 1
        finals = entry.finals
        for start in range(0, len(finals), 8):
            if not is_done(bitmap, index):
                mid = _U64.unpack_from(finals, start)[0]
                out.append(Event(seq, index, "final", readers.get(s, txn, mid), message_id=mid))
            index += 1
    return out, last
