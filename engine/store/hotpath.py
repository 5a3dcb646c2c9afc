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

from engine.store import flow, numbers, outbox, receipts
from engine.store import layout as L
from engine.store import records as r
from engine.store.layout import OPERATOR, ROUTE
from engine.store.tx import Tx

if TYPE_CHECKING:
    from engine.store.store import Store

_EPOCH = struct.Struct("<I")
_MS = struct.Struct("<q")
_DELIVERED = L.CODE[r.DELIVERED]
_FINAL_CODE = {name: L.CODE[name] for name in r.FINAL}
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
    if s.webhooks:
        outbox.collect(tx, ops, out)
    return out


# msgpack of [b"", [id], ""] up to the id's bytes, for an id of under 32 bytes (fixstr)
_ONE_ID = [b"\x93\xc4\x00\x91" + bytes((0xA0 | n,)) for n in range(32)]


def _prefix(operator: str) -> bytes:
    return (operator + "\0").encode() if operator else b""


class _Writes:
    """Puts a run defers to one putmulti per database; flushed before the general path
    runs (it may read what the run wrote) and at the end of the run."""

    __slots__ = ("smsc_db", "smsc_keys", "smsc_values", "status", "status_db", "txn")

    def __init__(self, tx: Tx) -> None:
        self.txn, self.smsc_db, self.status_db = tx.txn, tx.db["smsc"], tx.db["status"]
        self.smsc_keys: list[bytes] = []
        self.smsc_values: list[bytes] = []
        self.status: dict[bytes, bytes | bytearray] = {}

    def flush(self) -> None:
        if self.smsc_keys:
            pairs = zip(self.smsc_keys, self.smsc_values, strict=True)
            self.txn.cursor(db=self.smsc_db).putmulti(pairs)
            self.smsc_keys, self.smsc_values = [], []
        if self.status:
            self.txn.cursor(db=self.status_db).putmulti(self.status.items())
            self.status = {}


def _sent_run(s: Store, tx: Tx, ops: Sequence[r.MarkSent], out: list[r.Result]) -> None:
    live, sets, new_sets = s._live, s._sets, tx.new_sets
    pack_id, front, part = L.U64.pack, L.FRONT.pack, L.PART
    kind_batch, kept = L.KIND_BATCH, L.KEPT_FLAGS
    writes = _Writes(tx)
    keys_, values, status = writes.smsc_keys, writes.smsc_values, writes.status
    moves: dict[bytes, int] = {}
    left, left_entries, gone = tx.left, tx.left_entries, tx.gone
    last_op, operator = None, (b"", 0)
    last_seq, epoch, claimed = -1, 0, b""
    sent_at, sent_ids = -1, None
    awaiting = zone = unroutable = 0
    for op in ops:
        mid = op.id
        entry = live.get(mid)
        token = op.token
        if entry is None or (token and token is not entry[4] and token != entry[4]):
            writes.flush()
            out.append(flow.apply_one(s, tx, op))
            keys_, values, status = writes.smsc_keys, writes.smsc_values, writes.status
            continue
        seq, snap, extra, to, _ = entry
        if op.operator is not last_op:
            last_op = op.operator
            operator = (_prefix(last_op), tx.id_of(OPERATOR, last_op))
        ids = op.smsc_ids
        n = len(ids)
        idkey = pack_id(mid)
        sid = ids[0].encode() if n == 1 else b""
        if 0 < len(sid) < 32 and len(snap) == 56 and len(operator[0]) < 400:
            keys_.append(operator[0] + sid)
            values.append(idkey + b"\0" + to)
            tail = _ONE_ID[len(sid)] + sid + b"\xa0"  # what pack_tail([id], b"", "") writes
        else:
            keys = [operator[0] + i.encode() for i in ids]
            if not all(ids) or any(len(k) > 511 for k in keys) or len(snap) > 56:
                writes.flush()
                out.append(flow.apply_one(s, tx, op))  # refused, or a reason to keep
                keys_, values, status = writes.smsc_keys, writes.smsc_values, writes.status
                continue
            keys_ += keys
            values += [idkey + part[p & 0xFF] + to for p in range(n)]
            tail = L.pack_tail(ids, bytes(n) if n > 1 else b"", "")
        at = int(op.at * 1000)
        flags = snap[1] & kept | extra
        if not op.receipt:
            flags |= L.NO_RECEIPT
        if n > 1:
            flags |= L.MULTIPART
        if seq != last_seq:
            last_seq = seq
            info = sets.get(seq) or new_sets[seq]
            epoch, claimed = info[2] & 0xFFFFFFFF, _MS.pack(info[1])  # claimed_ms: at 36
        status[idkey] = (
            front(_SENT, flags, operator[1], at, at, epoch)
            + snap[24:36]
            + claimed
            + snap[44:]
            + tail
        )
        left.append(mid)
        left_entries.append(live.pop(mid))
        gone[seq] = gone.get(seq, 0) + 1
        kb = snap[kind_batch]
        moves[kb] = moves.get(kb, 0) + 1
        if flags & L.ZONE_DEFAULT:
            zone += 1
        if not snap[32] and not snap[33]:
            unroutable += 1
        if op.receipt:
            if at != sent_at:
                sent_at, sent_ids = at, tx.sent.setdefault(at, [])
            sent_ids.append(idkey)  # type: ignore[union-attr]
            awaiting += 1
        out.append(_Result(True, "", mid))
    writes.flush()
    for kb, k in moves.items():
        tx.moved_raw(kb, L.INFLIGHT, _SENT, k)
    tx.bump(L.AWAITING_KEY, awaiting)
    tx.bump(L.ZONE_DEFAULT_KEY, -zone)
    tx.bump(L.UNROUTABLE_KEY, -unroutable)


def _receipt_run(s: Store, tx: Tx, ops: Sequence[r.RecordReceipt], out: list[r.Result]) -> None:
    get = tx.txn.get
    smsc_db, status_db = tx.db["smsc"], tx.db["status"]
    writes = _Writes(tx)
    status = writes.status
    epoch = _EPOCH.pack(tx.epoch & 0xFFFFFFFF)
    pack_at, unpack_id = _MS.pack_into, L.U64.unpack
    last_op, prefix = None, b""
    moves: dict[tuple[bytes, int], int] = {}
    final_at, final_ids = -1, None
    awaiting = 0
    for op in ops:
        if op.operator is not last_op:
            last_op = op.operator
            prefix = _prefix(last_op)
        cands = op.candidates
        found = None
        if len(cands) == 1:
            key = prefix + cands[0].encode()
            if op.final and len(prefix) < len(key) <= 511:
                found = get(key, db=smsc_db)
        elif op.final and cands:
            keys = [prefix + c.encode() for c in cands]
            if all(len(prefix) < len(k) <= 511 for k in keys):
                for key in keys:
                    found = get(key, db=smsc_db)
                    if found is not None:
                        break
        idkey = b"" if found is None else found[:8]
        raw = None if found is None else status.get(idkey) or get(idkey, db=status_db)
        code = _FINAL_CODE.get(op.state, -1)
        if code < 0:
            raw = None  # not a final state: refused by the general path
        elif raw is not None and raw[0] == _SENT and raw[1] & L.MULTIPART:
            new = _part(raw, found[8], code, op)  # type: ignore[index]
            if new is not None:
                status[idkey] = new
                out.append(_Result(True, op.state, unpack_id(idkey)[0]))
                continue
        if raw is None or raw[0] != _SENT or raw[1] & L.MULTIPART:
            # refused, intermediate, unmatched, another operator's form, no longer sent,
            # or the last part of a multi-part message
            writes.flush()
            out.append(receipts.receipt(s, tx, op))
            status = writes.status
            continue
        flags = raw[1]
        at = int(op.at * 1000)
        if code == _DELIVERED:
            if flags & L.HISTORY or raw[20:24] != epoch:
                numbers.delivered(s, tx, found[9:])  # type: ignore[index]
            new = bytearray(raw)  # a delivery keeps the codes a failed part left
            new[0], new[1] = code, flags | L.RECEIPTED
            pack_at(new, 4, at)
            status[idkey] = new
        else:
            errs = L.ERRS.pack(receipts.i32(op.err), receipts.i32(op.network_error))
            route = tx.name_of(ROUTE, L.kind_batch_route(bytes(raw))[2])
            outcome = r.Outcome(op.stat, op.err, op.at)
            numbers.failed(s, tx, found[9:], route, outcome)  # type: ignore[index]
            epoch = _EPOCH.pack(tx.epoch & 0xFFFFFFFF)
            status[idkey] = (
                bytes((code, flags | L.RECEIPTED)) + raw[2:4] + _MS.pack(at) + raw[12:48] + errs
                + raw[56:]
            )  # fmt: skip
        if at != final_at:
            final_at, final_ids = at, tx.final.setdefault(at, [])
        final_ids.append(idkey)  # type: ignore[union-attr]
        mk = (bytes(raw[26:32]), code)
        moves[mk] = moves.get(mk, 0) + 1
        if not flags & L.NO_RECEIPT:
            awaiting += 1
        out.append(_Result(True, op.state, unpack_id(idkey)[0]))
    writes.flush()
    for (kb, code), k in moves.items():
        tx.moved_raw(kb, _SENT, code, k)
    tx.bump(L.AWAITING_KEY, -awaiting)


def _part(raw: bytes | bytearray, part: int, code: int, op: r.RecordReceipt) -> bytearray | None:
    """A receipt for one part of a multi-part message that leaves another part waiting:
    its state byte set in place (and the codes, if it is the worst part so far). None when
    this receipt makes the message final (the general path records its one outcome)."""
    n = raw[58] if len(raw) > L.PARTS_AT and raw[56] == 0x93 and raw[57] == 0xC4 else 0
    if part >= n:
        return None
    codes = raw[L.PARTS_AT : L.PARTS_AT + n]
    waiting = codes.count(0) - (codes[part] == 0)
    if not waiting:
        return None
    new = bytearray(raw)
    new[L.PARTS_AT + part] = code + 1
    if code != _DELIVERED:
        worst = L.SEVERITY.get(code, 3)
        others = (c - 1 for i, c in enumerate(codes) if c and i != part)
        if all(worst >= L.SEVERITY.get(c, 3) for c in others):
            L.ERRS.pack_into(new, 48, receipts.i32(op.err), receipts.i32(op.network_error))
    return new
