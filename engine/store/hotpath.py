"""Store.apply: runs of mark-sent and of receipts in tight loops, the rest one by one.

The engine commits lists of operations; most are mark-sent (a submit_sm_resp)
and final receipts of one-part messages this store claimed. Those take the
loops below, which do per message only what the move needs: the SMSC-id index,
the status record packed from bytes, and counts kept by the raw (kind, batch)
bytes of the record, expanded once per transaction. Anything else in a run (a
message this store did not claim, a stale token, an id that cannot be a key, a
multi-part message, an intermediate or unmatched receipt) goes through the
general path (flow.py, receipts.py) at its place, so results keep their order.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.store import flow, numbers, receipts
from engine.store import layout as L
from engine.store import records as r
from engine.store.tx import OPERATOR, ROUTE, Tx

if TYPE_CHECKING:
    from engine.store.store import Store

_EPOCH = struct.Struct("<I")
_MS = struct.Struct("<q")
_DELIVERED = L.CODE[r.DELIVERED]
_CODE = L.CODE
_SENT = L.SENT
_Result = r.Result


def apply(s: Store, tx: Tx, ops: Sequence[r.Op]) -> list[r.Result]:
    out: list[r.Result] = []
    i, n = 0, len(ops)
    while i < n:
        kind = type(ops[i])
        j = i + 1
        if kind is r.MarkSent or kind is r.RecordReceipt:
            while j < n and type(ops[j]) is kind:
                j += 1
            run = _sent_run if kind is r.MarkSent else _receipt_run
            run(s, tx, ops[i:j], out)  # type: ignore[arg-type]
        else:
            out.append(flow.apply_one(s, tx, ops[i]))
        i = j
    return out


def _one_id(smsc_id: str) -> bytes:
    """The record's tail for one SMSC id, no part states, no reason (msgpack, by hand for
    the common short id: what :func:`layout.pack_tail` would write)."""
    raw = smsc_id.encode()
    if len(raw) < 32:
        return b"\x93\x91" + bytes((0xA0 | len(raw),)) + raw + b"\xc4\x00\xa0"
    return L.pack_tail([smsc_id], b"", "")


def _prefix(operator: str) -> bytes:
    return (operator + "\0").encode() if operator else b""


def _sent_run(s: Store, tx: Tx, ops: Sequence[r.MarkSent], out: list[r.Result]) -> None:
    live, sets, new_sets = s._live, s._sets, tx.new_sets
    put, smsc, status = tx.txn.put, tx.db["smsc"], tx.db["status"]
    pack_id, front, pack_tail, part = L.U64.pack, L.FRONT.pack, L.pack_tail, L.PART
    moves: dict[bytes, int] = {}
    left = tx.left
    operators: dict[str, tuple[bytes, int]] = {}
    epochs: dict[int, bytes] = {}
    sent_at, sent_ids = -1, None
    awaiting = zone = unroutable = 0
    for op in ops:
        mid = op.id
        entry = live.get(mid)
        token = op.token
        if entry is None or (token and L.U64.unpack_from(token)[0] != entry[0]):
            out.append(flow.apply_one(s, tx, op))
            continue
        seq, snap, extra, to = entry
        operator = operators.get(op.operator)
        if operator is None:
            operator = operators[op.operator] = (
                _prefix(op.operator),
                tx.id_of(OPERATOR, op.operator),
            )
        ids = op.smsc_ids
        n = len(ids)
        idkey = pack_id(mid)
        if n == 1 and ids[0] and len(snap) == 56:
            key = operator[0] + ids[0].encode()
            if len(key) > 511:
                out.append(flow.apply_one(s, tx, op))  # refused: not a key
                continue
            put(key, idkey + b"\0" + to, db=smsc)
            tail = _one_id(ids[0])
        else:
            keys = [operator[0] + i.encode() for i in ids]
            if not all(ids) or any(len(k) > 511 for k in keys) or len(snap) > 56:
                out.append(flow.apply_one(s, tx, op))  # refused, or a reason to keep
                continue
            for p, key in enumerate(keys):
                put(key, idkey + part[p & 0xFF] + to, db=smsc)
            tail = pack_tail(ids, bytes(n) if n > 1 else b"", "")
        at = int(op.at * 1000)
        flags = snap[1] | extra
        if not op.receipt:
            flags |= L.NO_RECEIPT
        if n > 1:
            flags |= L.MULTIPART
        epoch = epochs.get(seq)
        if epoch is None:
            info = sets.get(seq) or new_sets[seq]
            epoch = epochs[seq] = _EPOCH.pack(info[2] & 0xFFFFFFFF)
        raw = front(_SENT, flags, operator[1], at, at) + snap[20:40] + epoch + snap[44:56] + tail
        put(idkey, raw, db=status)
        left.append((mid, live.pop(mid)))
        kb = snap[22:28]
        moves[kb] = moves.get(kb, 0) + 1
        if flags & L.ZONE_DEFAULT:
            zone += 1
        if not snap[28] and not snap[29]:
            unroutable += 1
        if op.receipt:
            if at != sent_at:
                sent_at, sent_ids = at, tx.sent.setdefault(at, [])
            sent_ids.append(idkey)  # type: ignore[union-attr]
            awaiting += 1
        out.append(_Result(True, "", mid))
    for kb, k in moves.items():
        tx.moved_raw(kb, L.INFLIGHT, _SENT, k)
    tx.bump(L.AWAITING_KEY, awaiting)
    tx.bump(L.ZONE_DEFAULT_KEY, -zone)
    tx.bump(L.UNROUTABLE_KEY, -unroutable)


def _receipt_run(s: Store, tx: Tx, ops: Sequence[r.RecordReceipt], out: list[r.Result]) -> None:
    get, put = tx.txn.get, tx.txn.put
    smsc, status = tx.db["smsc"], tx.db["status"]
    epoch = _EPOCH.pack(tx.epoch & 0xFFFFFFFF)
    prefixes: dict[str, bytes] = {}
    moves: dict[tuple[bytes, int], int] = {}
    final_at, final_ids = -1, None
    awaiting = 0
    for op in ops:
        prefix = prefixes.get(op.operator)
        if prefix is None:
            prefix = prefixes[op.operator] = _prefix(op.operator)
        cands = op.candidates
        if len(cands) == 1:
            key = prefix + cands[0].encode()
            bad = len(key) > 511 or len(key) == len(prefix)
            found = None if bad or not op.final else get(key, db=smsc)
        else:
            keys = [prefix + c.encode() for c in cands]
            bad = not keys or any(len(k) > 511 or len(k) == len(prefix) for k in keys)
            found = None
            if not bad and op.final:
                for key in keys:
                    found = get(key, db=smsc)
                    if found is not None:
                        break
        if found is None:  # refused, intermediate, another operator's form, or unmatched
            out.append(receipts.receipt(s, tx, op))
            continue
        idkey = found[:8]
        raw = get(idkey, db=status)
        if raw is None or raw[0] != _SENT or raw[1] & L.MULTIPART:
            out.append(receipts.receipt(s, tx, op))
            continue
        code = _CODE[op.state]
        flags = raw[1]
        if code == _DELIVERED:
            errs = raw[48:56]  # a delivery keeps what was there
            if flags & L.HISTORY or raw[40:44] != epoch:
                numbers.delivered(s, tx, found[9:])
        else:
            errs = L.ERRS.pack(receipts.i32(op.err), receipts.i32(op.network_error))
            route = tx.name_of(ROUTE, L.kind_batch_route(raw)[2])
            numbers.failed(s, tx, found[9:], route, r.Outcome(op.stat, op.err, op.at))
            epoch = _EPOCH.pack(tx.epoch & 0xFFFFFFFF)
        at = int(op.at * 1000)
        put(
            idkey,
            bytes((code, flags | L.RECEIPTED)) + raw[2:4] + _MS.pack(at) + raw[12:48] + errs
            + raw[56:],
            db=status,
        )  # fmt: skip
        if at != final_at:
            final_at, final_ids = at, tx.final.setdefault(at, [])
        final_ids.append(idkey)  # type: ignore[union-attr]
        mk = (raw[22:28], code)
        moves[mk] = moves.get(mk, 0) + 1
        if not flags & L.NO_RECEIPT:
            awaiting += 1
        out.append(_Result(True, op.state, L.U64.unpack(idkey)[0]))
    for (kb, code), k in moves.items():
        tx.moved_raw(kb, _SENT, code, k)
    tx.bump(L.AWAITING_KEY, -awaiting)
