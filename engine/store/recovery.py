"""After a crash: what was in flight goes back to the queue, or ends unknown.

What a crash leaves are claim sets: each holds every id its claim took, and is
deleted only when the last of them has moved on. An id of a walked set is in
flight still when its status is waiting, it is in none of the indexes where
messages wait, and this set is the newest claim of it (an id given back and
claimed again by another engine process is that process's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.store import layout as L
from engine.store import records as r
from engine.store.tx import Tx

if TYPE_CHECKING:
    from engine.store.store import Store

_UNKNOWN = L.CODE[r.UNKNOWN]


def recover(s: Store, tx: Tx, owner: bytes | None) -> int:
    txn, db = tx.txn, tx.db["inflight"]
    newest: dict[int, tuple[bytes, int]] = {}  # id -> (owner, claim_ms) of its newest claim
    walked: list[bytes] = []
    for key, raw in txn.cursor(db=db):
        tag, claim_ms, ids = L.read_inflight(raw)
        for mid in ids:
            newest[mid] = (tag, claim_ms)
        if owner is None or tag == owner:
            walked.append(bytes(key))
    hold = s.on_crash_inflight == "hold"
    n = 0
    for mid in sorted(newest):
        tag, claim_ms = newest[mid]
        if owner is not None and tag != owner:
            continue
        idkey = L.U64.pack(mid)
        raw = txn.get(idkey, db=tx.db["status"])
        if raw is None or raw[0] != L.WAITING or tx.where(idkey, raw) != L.INFLIGHT:
            continue  # moved on since its claim
        st = L.Status.unpack(raw)
        if hold:
            tx.move(idkey, st, L.INFLIGHT, _UNKNOWN, claim_ms, "inflight at a crash (hold)")
        else:
            tx.move(idkey, st, L.INFLIGHT, L.QUEUED, claim_ms, "resent after a crash")
        n += 1
    for key in walked:
        txn.delete(key, db=db)
        tx.dropped_sets.append(L.U64.unpack(key)[0])
    return n
