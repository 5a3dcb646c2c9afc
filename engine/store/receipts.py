"""Sent, receipts and inbound messages: the second and third write of a message.

Mark-sent writes the SMSC ids (each with the message's number, so a receipt
finds both in one read) and the status record, packed from the record the
claim saw. A final receipt reads the id and the status, and writes the status:
the fields it changes come first in the record, so the rest is kept as bytes.
A delivery looks at the number's record only when the number had failures at
the claim, or some number gained failures since (the store-wide ``troubled``
counter moved): a failure recorded in between must not survive the delivery.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from engine.store import campaign as camp
from engine.store import layout as L
from engine.store import numbers
from engine.store import records as r
from engine.store.layout import OPERATOR, ROUTE
from engine.store.tx import Tx

if TYPE_CHECKING:
    from engine.store.store import Store

Handler = Callable[["Store", Tx, Any], r.Result]

_STAT = {
    r.DELIVERED: "DELIVRD",
    r.UNDELIVERED: "UNDELIV",
    r.EXPIRED: "EXPIRED",
    r.REJECTED: "REJECTD",
    r.DELETED: "DELETED",
    r.UNKNOWN: "UNKNOWN",
}
_EPOCH = struct.Struct("<I")
_MS = struct.Struct("<q")
_UNKNOWN = L.CODE[r.UNKNOWN]
_DELIVERED = L.CODE[r.DELIVERED]


def _severity(code: int) -> int:
    return L.SEVERITY.get(code, 3)


# -- mark sent --------------------------------------------------------------------------


def _smsc_keys(op: r.MarkSent) -> list[bytes] | str:
    """The SMSC-id index keys of a mark-sent, or why one cannot be an LMDB key."""
    keys = []
    for smsc_id in op.smsc_ids:
        key = L.smsc_key(op.operator, smsc_id)
        if not smsc_id or len(key) > L.MAX_KEY:
            room = L.MAX_KEY - len(L.smsc_key(op.operator, ""))
            size = len(smsc_id.encode())
            return f"SMSC message id {smsc_id[:40]!r}: {size} octets, expected 1 to {room}"
        keys.append(key)
    return keys


def mark_sent_live(s: Store, tx: Tx, op: r.MarkSent, mid: int, entry: L.Live) -> r.Result:
    """A message this store claimed: its status packed from the claim's, nothing read."""
    keys = _smsc_keys(op)
    idkey = L.U64.pack(mid)
    if isinstance(keys, str):
        return _refused(s, tx, op, idkey, entry[1], L.INFLIGHT, keys)
    seq, snap, extra, to, _ = entry
    put, smsc = tx.txn.put, tx.db["smsc"]
    before = L.unpack_tail(snap)
    if before.ids:  # sent before (and given back since): its earlier ids no longer name it
        old = tx.name_of(OPERATOR, L.Status.unpack(snap).operator)
        for smsc_id in before.ids:
            tx.txn.delete(L.smsc_key(old, smsc_id), db=smsc)
    for part, key in enumerate(keys):
        put(key, idkey + L.PART[part & 0xFF] + to, db=smsc)
    at = L.ms(op.at)
    flags = snap[1] & L.KEPT_FLAGS | extra | (0 if op.receipt else L.NO_RECEIPT)
    info = s._sets.get(seq) or tx.new_sets[seq]
    reason = before.reason
    n = len(op.smsc_ids)
    tail = L.pack_tail(op.smsc_ids, bytes(n) if n > 1 else b"", reason)
    if n > 1:
        flags |= L.MULTIPART
    operator = tx.id_of(OPERATOR, op.operator)
    front = L.FRONT.pack(L.SENT, flags, operator, at, at, info[2] & 0xFFFFFFFF)
    raw = front + snap[24:36] + _MS.pack(info[1]) + snap[44:56] + tail  # 36: claimed_ms
    put(idkey, raw, db=tx.db["status"])
    tx.leave_flight(idkey)
    kind, batch, route = L.kind_batch_route(snap)
    tx.moved(batch, kind, L.INFLIGHT, L.SENT, flags, route)
    if op.receipt:
        tx.sent.setdefault(at, []).append(idkey)
        tx.bump(L.AWAITING_KEY, 1)
    return r.Result(True, "", mid)


def mark_sent(
    s: Store, tx: Tx, op: r.MarkSent, idkey: bytes, raw: bytes, state: int, claimed_ms: int = 0
) -> r.Result:
    """A message this store did not claim (another store object, a tool): read first."""
    keys = _smsc_keys(op)
    if isinstance(keys, str):
        return _refused(s, tx, op, idkey, raw, state, keys)
    body = s.coders.body.decode(tx.txn.get(idkey, db=tx.db["body"]))
    to = body.to.encode()
    st = L.Status.unpack(raw)
    old = tx.name_of(OPERATOR, st.operator)
    for smsc_id in st.ids:  # sent before: its earlier ids no longer name it
        tx.txn.delete(L.smsc_key(old, smsc_id), db=tx.db["smsc"])
    for part, key in enumerate(keys):
        tx.txn.put(key, idkey + L.PART[part & 0xFF] + to, db=tx.db["smsc"])
    tx.unplace(idkey, st, state)
    st.ids = list(op.smsc_ids)
    multi = len(st.ids) > 1
    st.parts = bytes(len(st.ids)) if multi else b""
    st.flags = st.flags & L.KEPT_FLAGS | L.HISTORY  # not claimed here: look at the number
    st.flags |= (0 if op.receipt else L.NO_RECEIPT) | (L.MULTIPART if multi else 0)
    st.operator = tx.id_of(OPERATOR, op.operator)
    st.sent_ms = L.ms(op.at)
    st.due_ms = claimed_ms  # once sent: when it was claimed
    tx.arrive(idkey, st, state, L.SENT, st.sent_ms)
    return r.Result(True, "", op.id)


def _refused(
    s: Store, tx: Tx, op: r.MarkSent, idkey: bytes, raw: bytes, state: int, why: str
) -> r.Result:
    """An id that cannot be a key: never written, and the message never stranded in flight."""
    st = L.Status.unpack(raw)
    tx.move(idkey, st, state, _UNKNOWN, L.ms(op.at), why)
    return r.Result(False, why, op.id)


# -- receipts ----------------------------------------------------------------------------


def _receipt_refused(op: r.RecordReceipt) -> str:
    if not op.candidates:
        return "receipt without an id"
    if op.final and op.state not in r.FINAL:
        return f"receipt state {op.state[:20]!r}: not a final state"
    room = L.MAX_KEY - max(8, len(L.smsc_key(op.operator, "")))  # unmatched: time(8) + id
    for cand in op.candidates:
        size = len(cand.encode())
        if not 0 < size <= room:
            return f"receipt id {cand[:40]!r}: {size} octets, expected 1 to {room}"
    return ""


def _find(tx: Tx, operator: str, candidates: Sequence[str]) -> bytes | None:
    get, db = tx.txn.get, tx.db["smsc"]
    for cand in candidates:
        found = get(L.smsc_key(operator, cand), db=db)
        if found is not None:
            return found
    return None


def receipt(s: Store, tx: Tx, op: r.RecordReceipt) -> r.Result:
    refused = _receipt_refused(op)
    if refused:
        return r.Result(False, refused, op.id)
    candidates = op.candidates
    if op.forms and s.id_forms is not None:
        candidates = tuple(dict.fromkeys((*candidates, *s.id_forms(candidates[0], op.forms))))
    found = _find(tx, op.operator, candidates)
    if found is None and op.operator:  # sent before ids were kept per operator
        found = _find(tx, "", candidates)
    if found is None:
        if not op.hold:
            tx.bump(L.UNMATCHED_KEY, 1)
            key = L.U64.pack(L.ms(op.at)) + op.candidates[0].encode()
            entry = r.Unmatched(candidates=list(candidates), stat=op.stat, at=op.at)
            tx.txn.put(key, s.coders.enc.encode(entry), db=tx.db["unmatched"])
        return r.Result(False, "unmatched")
    idkey, part, to = found[:8], found[8], found[9:]
    mid = L.U64.unpack(idkey)[0]
    raw = tx.txn.get(idkey, db=tx.db["status"])
    if raw is None or raw[0] != L.SENT:
        return r.Result(False, "duplicate" if raw is not None else "purged", mid)
    if not op.final:
        st = L.Status.unpack(raw)
        st.reason = f"receipt {op.stat}"
        tx.txn.put(idkey, st.pack(), db=tx.db["status"])
        tx.note(idkey, L.ms(op.at), L.SENT, L.SENT, st.reason, 0, st.attempts)
        return r.Result(True, "intermediate", mid)
    if not raw[1] & L.MULTIPART:
        _final_single(s, tx, op, idkey, raw, bytes(to))
    else:
        _final_part(s, tx, op, idkey, raw, part, bytes(to))
    return r.Result(True, op.state, mid)


def _final_single(
    s: Store, tx: Tx, op: r.RecordReceipt, idkey: bytes, raw: bytes, to: bytes
) -> None:
    """A one-part message's final receipt: 20 bytes packed, the rest of the record kept."""
    code = L.CODE[op.state]
    flags = raw[1] | L.RECEIPTED
    delivered = code == _DELIVERED  # a delivery keeps the codes a failed part left
    errs = raw[48:56] if delivered else L.ERRS.pack(i32(op.err), i32(op.network_error))
    _record_outcome(s, tx, raw, to, code, op)
    at = L.ms(op.at)
    new = bytes((code, flags)) + raw[2:4] + _MS.pack(at) + raw[12:48] + errs + raw[56:]
    tx.txn.put(idkey, new, db=tx.db["status"])
    _finished(tx, idkey, raw, code, at)


def _final_part(
    s: Store, tx: Tx, op: r.RecordReceipt, idkey: bytes, raw: bytes, part: int, to: bytes
) -> None:
    """One part of a multi-part message: final once every part is; its worst part's state."""
    st = L.Status.unpack(raw)
    states = [c - 1 if c else -1 for c in st.parts] or [-1] * max(1, len(st.ids))
    code = L.CODE[op.state]
    others = [c for i, c in enumerate(states) if c >= 0 and i != part]
    if part < len(states):
        states[part] = code
    if code != _DELIVERED and all(_severity(code) >= _severity(c) for c in others):
        st.err, st.net = i32(op.err), i32(op.network_error)  # the worst part's codes
    st.parts = bytes(c + 1 for c in states)
    if not all(c >= 0 for c in states):
        tx.txn.put(idkey, st.pack(), db=tx.db["status"])
        return
    worst = max(states, key=_severity)
    if worst != code:  # one outcome per message, not per part: its worst part's
        name = r.STATES[worst]
        err = None if st.err == L.NONE else st.err
        net = None if st.net == L.NONE else st.net
        op = msgspec.structs.replace(op, state=name, stat=_STAT[name], err=err, network_error=net)
    _record_outcome(s, tx, raw, to, worst, op)
    st.state, st.flags, st.updated_ms = worst, st.flags | L.RECEIPTED, L.ms(op.at)
    tx.txn.put(idkey, st.pack(), db=tx.db["status"])
    _finished(tx, idkey, raw, worst, st.updated_ms)


def _finished(tx: Tx, idkey: bytes, raw: bytes, code: int, at: int) -> None:
    """A sent message is final: counted, in this commit's final set, no longer awaited."""
    kind, batch, route = L.kind_batch_route(raw)
    tx.moved(batch, kind, L.SENT, code, raw[1], route)
    tx.final.setdefault(at, []).append(idkey)
    if not raw[1] & L.NO_RECEIPT:
        tx.bump(L.AWAITING_KEY, -1)


def _record_outcome(
    s: Store, tx: Tx, raw: bytes, to: bytes, code: int, op: r.RecordReceipt
) -> None:
    """Failures are kept for pruning; a delivery clears them (read only when there may be
    some: the number had failures at the claim, or some number gained failures since)."""
    if code == _DELIVERED:
        flags = raw[1]
        if flags & L.HISTORY or _EPOCH.unpack_from(raw, L.EPOCH_AT)[0] != tx.epoch & 0xFFFFFFFF:
            numbers.delivered(s, tx, to)
        return
    route = tx.name_of(ROUTE, L.kind_batch_route(raw)[2])
    numbers.failed(s, tx, to, route, r.Outcome(op.stat, op.err, op.at))


def i32(v: int | None) -> int:
    """An err or network error as the record's i32 (NONE: absent or out of range)."""
    return L.NONE if v is None or not -(2**31) < v < 2**31 else v


# -- inbound messages ----------------------------------------------------------------------


def mo(s: Store, tx: Tx, op: r.RecordMo) -> r.Result:
    if op.stop:
        size = len(op.source.encode())
        if not 0 < size <= L.MAX_KEY:
            return r.Result(False, f"number {op.source[:40]!r}: {size} octets, expected 1 to "
                            f"{L.MAX_KEY}", op.id)  # fmt: skip
    meta = tx.db["meta"]
    raw = tx.txn.get(b"mo_seq", db=meta)
    n = (L.U64.unpack(raw)[0] if raw else 0) + 1
    tx.txn.put(b"mo_seq", L.U64.pack(n), db=meta)
    step = camp.on_mo(tx, op, s.reply_window)  # a reply (or opt-out) to a campaign's step?
    record = r.Mo(
        at=op.at,
        source=op.source,
        destination=op.destination,
        text=op.text,
        bind=op.bind,
        stopped=op.stop,
        stop_rule=op.stop_rule,
        batch=step[0] if step else "",
        message=step[1] if step else 0,
    )
    tx.txn.put(L.U64.pack(n), s.coders.enc.encode(record), db=tx.db["mo"], append=True)
    if op.stop:
        numbers.stop(s, tx, op.source, f"MO {op.text!r}", op.at)
    return r.Result(True, "mo", n)
