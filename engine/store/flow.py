"""The hot path: claim, promote, and the operations on a claimed message.

A claim takes the next entries of a route from ``ready`` (their values are the
status records), reads each body, asks the number's record once when any number
has one, and writes one claim set for the whole transaction: no status record
is written. The store remembers each claimed id (its claim set, its status as
claimed, its number), so the operation that answers the claim writes the new
status without reading the old one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.store import layout as L
from engine.store import numbers, receipts
from engine.store import records as r
from engine.store.errors import StoreError
from engine.store.layout import BATCH, ROUTE
from engine.store.tx import Tx

if TYPE_CHECKING:
    from engine.store.store import Store

PROMOTE_CHUNK = 10_000
_SKIPPED = L.CODE[r.SKIPPED]


def claim(s: Store, tx: Tx, route: str, n: int, now: float) -> list[r.Claimed]:
    prefix = route.encode() + b"\0"
    txn = tx.txn
    cur = txn.cursor(db=tx.db["ready"])
    if n <= 0 or not cur.set_range(prefix):
        return []
    get, numbers_db = txn.get, tx.db["numbers"]
    bodies, records = txn.cursor(db=tx.db["body"]), txn.cursor(db=numbers_db)
    decode, decode_number = s.coders.claimed.decode, s.coders.number.decode
    check_numbers = tx.any_numbers()
    caps = s.cap_policy
    seq = tx.next_seq()
    token = L.U64.pack(seq)
    now_ms = L.ms(now)
    live, unpack_id = s._live, L.U64.unpack
    kind_batch, attempts_at, history = L.KIND_BATCH, L.ATTEMPTS_AT, L.HISTORY
    counts: dict[bytes, int] = {}
    ids: list[bytes] = []
    mids: list[int] = []
    out: list[r.Claimed] = []
    left = n
    while left:
        asked = left
        idkeys, snaps = _take(cur, prefix, asked)
        if not idkeys:
            break
        found = bodies.getmulti(idkeys)  # bodies never change: read them all at once
        if len(found) != len(idkeys):
            raise StoreError(f"route {route!r}: a queued message has no body (damaged store?)")
        msgs = [decode(raw) for _, raw in found]
        tos = [m.to.encode() for m in msgs]
        # the numbers' records, all at once (one by one with caps: a claim writes them)
        known = dict(records.getmulti(tos)) if check_numbers and caps is None else {}
        for idkey, snap, msg, to in zip(idkeys, snaps, msgs, tos, strict=True):
            rec = None
            if check_numbers:
                raw = known.get(to) if caps is None else get(to, db=numbers_db)
                if raw is not None:
                    rec = decode_number(raw)
            if (msg.expires is not None and msg.expires <= now) or rec is not None:
                why = _skip_reason(s, msg, rec, now)
                if why:
                    tx.arrive(idkey, L.Status.unpack(snap), L.QUEUED, _SKIPPED, now_ms, why)
                    continue
            if caps is not None and caps.capped(msg.kind):
                if rec is None and not check_numbers:
                    raw = get(to, db=numbers_db)
                    rec = None if raw is None else decode_number(raw)
                if not numbers.within_cap(s, tx, idkey, snap, msg, rec, now):
                    continue
            mid = unpack_id(idkey)[0]
            msg.id = mid
            msg.route = route
            msg.attempts = snap[attempts_at]
            msg.token = token
            live[mid] = (seq, snap, history if rec is not None and rec.outcomes else 0, to, token)
            ids.append(idkey)
            mids.append(mid)
            out.append(msg)
            kb = snap[kind_batch]
            counts[kb] = counts.get(kb, 0) + 1
            left -= 1
        if len(idkeys) < asked:
            break  # the route has no more
    if ids:
        txn.put(token, L.inflight_value(s.owner, now_ms, ids), db=tx.db["inflight"])
        tx.new_sets[seq] = [len(ids), now_ms, tx.epoch]
        tx.added += mids
        for kb, k in counts.items():
            tx.moved_raw(kb, L.QUEUED, L.INFLIGHT, k)
    return out


def _take(cur: object, prefix: bytes, k: int) -> tuple[list[bytes], list[bytes]]:
    """The next ``k`` entries of a route in ``ready``, taken out: (ids, status records)."""
    item, delete = cur.item, cur.delete  # type: ignore[attr-defined]
    start = len(prefix)
    ids: list[bytes] = []
    snaps: list[bytes] = []
    while len(ids) < k:
        key, snap = item()
        if not key.startswith(prefix):
            break
        delete()
        ids.append(key[start:])
        snaps.append(snap)
    return ids, snaps


def _skip_reason(s: Store, msg: r.Claimed, rec: r.NumberRecord | None, now: float) -> str:
    """Why a due message must not go out: expired, a dead number, the stop list."""
    if msg.expires is not None and msg.expires <= now:
        return "expired"
    return numbers.barred(s, rec, msg.kind, now)


def promote(s: Store, tx: Tx, now: float) -> int:
    """Scheduled messages whose time has come move to ready (or parked): no status write."""
    txn, sched = tx.txn, tx.db["sched"]
    end = L.U64.pack(L.ms(now) + 1)
    cur = txn.cursor(db=sched)
    entries: list[tuple[bytes, bytes]] = []
    if cur.first():
        for key, raw in cur:
            if key >= end or len(entries) >= PROMOTE_CHUNK:
                break
            entries.append((key, raw))
    cancelled = tx.cancelled
    for key, raw in entries:
        idkey = key[8:]
        kind, batch, route = L.kind_batch_route(raw)
        if cancelled and tx.name_of(BATCH, batch) in cancelled:
            txn.delete(key, db=sched)
            tx.arrive(idkey, L.Status.unpack(raw), L.SCHEDULED, L.QUEUED, L.ms(now))
            continue
        txn.delete(key, db=sched)
        qkey, db = tx.queue_key(idkey, batch, route)
        txn.put(qkey, raw, db=db)
        tx.moved(batch, kind, L.SCHEDULED, L.QUEUED, raw[1], route)
    return len(entries)


# -- operations ------------------------------------------------------------------------


def apply_one(s: Store, tx: Tx, op: r.Op) -> r.Result:
    handler = _HANDLERS.get(type(op))
    if handler is None:
        return r.Result(False, f"unknown operation {type(op).__name__}", op.id)
    return handler(s, tx, op)


class Current:
    """A message an operation moves: its status, where it is, when it was claimed."""

    __slots__ = ("at_ms", "idkey", "raw", "state")

    def __init__(self, idkey: bytes, raw: bytes, state: int, at_ms: int) -> None:
        self.idkey, self.raw, self.state, self.at_ms = idkey, raw, state, at_ms


def current(s: Store, tx: Tx, op: r.Op) -> Current | r.Result:
    """The message ``op`` moves, or why it cannot: unknown, final, or a stale token.

    ``at_ms``: when it last changed (for a message in flight, its claim)."""
    mid = op.id
    idkey = L.U64.pack(mid)
    entry = s._live.get(mid)
    if entry is not None:
        snap = entry[1]
        if op.token and op.token != entry[4]:
            return r.Result(False, f"message {mid}: a stale claim (claimed again since)", mid)
        info = tx.claim_info(mid)
        return Current(idkey, snap, L.INFLIGHT, info[0] if info else 0)
    raw = tx.txn.get(idkey, db=tx.db["status"])
    if raw is None:
        return r.Result(False, f"no message {mid}", mid)
    state = raw[0]
    if state in L.FINAL:
        return r.Result(False, f"message {mid} is already {r.STATES[state]}", mid)
    at_ms = L.Status.unpack(raw).updated_ms
    if state == L.WAITING:
        state = tx.where(idkey, raw)
        if state == L.INFLIGHT:
            at_ms = _claimed_at(tx, mid) or at_ms
    return Current(idkey, raw, state, at_ms)


def _claimed_at(tx: Tx, mid: int) -> int:
    """When a message in flight that this store did not claim was claimed (its newest set)."""
    cur = tx.txn.cursor(db=tx.db["inflight"])
    if cur.last():
        for _, raw in cur.iterprev():
            _, claim_ms, ids = L.read_inflight(raw)
            if mid in ids:
                return claim_ms
    return 0


def _requeue(s: Store, tx: Tx, op: r.Requeue) -> r.Result:
    c = current(s, tx, op)
    if isinstance(c, r.Result):
        return c
    st = L.Status.unpack(c.raw)
    due = L.ms(op.due)
    new = L.QUEUED if due <= c.at_ms or op.due <= 0 else L.SCHEDULED
    st.due_ms = due
    st.attempts += op.retry
    tx.move(c.idkey, st, c.state, new, c.at_ms, op.reason)
    return r.Result(True, "", op.id)


def _reroute(s: Store, tx: Tx, op: r.Reroute) -> r.Result:
    c = current(s, tx, op)
    if isinstance(c, r.Result):
        return c
    st = L.Status.unpack(c.raw)
    tx.unplace(c.idkey, st, c.state)
    route = tx.id_of(ROUTE, op.route)
    if c.state in L.PENDING and (st.route == 0) != (route == 0):
        tx.bump(L.UNROUTABLE_KEY, 1 if route == 0 else -1)
    st.route = route
    tx.arrive(c.idkey, st, c.state, L.QUEUED, c.at_ms, "re-routed")
    return r.Result(True, "", op.id)


def _schedule(s: Store, tx: Tx, op: r.Schedule) -> r.Result:
    c = current(s, tx, op)
    if isinstance(c, r.Result):
        return c
    st = L.Status.unpack(c.raw)
    st.due_ms = L.ms(op.due)
    tx.move(c.idkey, st, c.state, L.SCHEDULED, c.at_ms, op.reason)
    return r.Result(True, "", op.id)


def _fail(s: Store, tx: Tx, op: r.Fail) -> r.Result:
    c = current(s, tx, op)
    if isinstance(c, r.Result):
        return c
    st = L.Status.unpack(c.raw)
    st.code = op.status
    tx.move(c.idkey, st, c.state, L.CODE[r.FAILED], L.ms(op.at), op.description)
    return r.Result(True, "", op.id)


def _end(state: str) -> receipts.Handler:
    code = L.CODE[state]

    def end(s: Store, tx: Tx, op: r.Op) -> r.Result:
        c = current(s, tx, op)
        if isinstance(c, r.Result):
            return c
        st = L.Status.unpack(c.raw)
        tx.move(c.idkey, st, c.state, code, L.ms(op.at), op.reason)  # type: ignore[attr-defined]
        return r.Result(True, "", op.id)

    return end


def _mark_sent(s: Store, tx: Tx, op: r.MarkSent) -> r.Result:
    entry = s._live.get(op.id)
    if entry is not None and (not op.token or op.token == entry[4]):
        return receipts.mark_sent_live(s, tx, op, op.id, entry)
    c = current(s, tx, op)
    if isinstance(c, r.Result):
        return c
    return receipts.mark_sent(s, tx, op, c.idkey, c.raw, c.state, c.at_ms)


_HANDLERS: dict[type, receipts.Handler] = {
    r.MarkSent: _mark_sent,
    r.RecordReceipt: receipts.receipt,
    r.RecordMo: receipts.mo,
    r.Requeue: _requeue,
    r.Reroute: _reroute,
    r.Schedule: _schedule,
    r.Fail: _fail,
    r.Skip: _end(r.SKIPPED),
    r.MarkUnknown: _end(r.UNKNOWN),
}
