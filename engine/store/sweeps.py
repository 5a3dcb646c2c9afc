"""The receipt timeout and the retention purge: walks of the per-commit sets.

``sent`` and ``final`` hold one set of ids per commit and millisecond, in time
order. A message leaves ``sent`` by changing its status, not its set, so the
sweep reads each old id's status and skips those that moved on: it walks every
id sent once, in transactions of SWEEP_CHUNK ids, and ``limit`` bounds how many
it ends, not how many it reads. A set is deleted once walked (or rewritten with
what a limit left of it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.store import layout as L
from engine.store import outbox
from engine.store import records as r
from engine.store.layout import OPERATOR
from engine.store.tx import Tx

if TYPE_CHECKING:
    from engine.store.store import Store

_UNKNOWN = L.CODE[r.UNKNOWN]
OUTBOX_MARGIN = 3600.0  # seconds: the purge keeps what became final this long before
# the webhooks' oldest waiting event (entries are in commit order, their times nearly so)
SWEEP_CHUNK = 20_000  # ids one sweep transaction walks (most have moved on: one get each)


def _sets_before(tx: Tx, db: Any, end: bytes, limit: int) -> list[tuple[bytes, list[bytes]]]:
    """The sets keyed before ``end``, oldest first, holding at most ``limit`` ids in all
    (the last one cut short if need be)."""
    out: list[tuple[bytes, list[bytes]]] = []
    room = limit
    cur = tx.txn.cursor(db=db)
    if cur.first():
        for key, raw in cur:
            if key >= end or room <= 0:
                break
            ids = [raw[i : i + 8] for i in range(0, len(raw), 8)]
            out.append((key, ids))
            room -= len(ids)
    return out


def _walked(tx: Tx, db: Any, key: bytes, ids: list[bytes], done: int) -> None:
    if done >= len(ids):
        tx.txn.delete(key, db=db)
    else:
        tx.txn.put(key, b"".join(ids[done:]), db=db)


def expire_sent(s: Store, tx: Tx, sent_before: float, now: float, limit: int) -> tuple[int, bool]:
    """One transaction of the receipt-timeout sweep: walk at most SWEEP_CHUNK ids of the
    sent sets older than ``sent_before``, end at most ``limit`` of them as unknown (those
    still sent: most have had their receipt). Returns (how many ended, more to walk)."""
    db, status = tx.db["sent"], tx.db["status"]
    end = L.U64.pack(L.ms(sent_before))
    at, walked, moved = L.ms(now), 0, 0
    for key, ids in _sets_before(tx, db, end, SWEEP_CHUNK):
        sent_ms = L.U64.unpack_from(key)[0]
        done = 0
        for idkey in ids:
            if walked >= SWEEP_CHUNK or moved >= limit:
                break
            walked += 1
            done += 1
            raw = tx.txn.get(idkey, db=status)
            if raw is None or raw[0] != L.SENT:
                continue  # final since, or purged
            st = L.Status.unpack(raw)
            if st.sent_ms != sent_ms:
                continue  # marked sent again later: in a later set
            tx.move(idkey, st, L.SENT, _UNKNOWN, at, "no receipt within receipt_timeout")
            moved += 1
        _walked(tx, db, key, ids, done)
        if done < len(ids):
            break
    return moved, walked >= SWEEP_CHUNK and moved < limit


def purge(s: Store, tx: Tx, older_than: float, limit: int) -> int:
    """Final messages older than ``older_than`` go, with their SMSC ids; unmatched
    receipts older than that too. The (batch, id) index stays."""
    txn, db = tx.txn, tx.db
    first = outbox.oldest(txn, db)  # what the webhooks' outbox names must stay readable
    if first is not None:
        older_than = min(older_than, first / 1000 - OUTBOX_MARGIN)
    end = L.U64.pack(L.ms(older_than))
    _purge_unmatched(tx, end, limit)
    room, done = limit, 0
    for key, ids in _sets_before(tx, db["final"], end, limit):
        walk = ids[:room]
        for idkey in walk:
            raw = txn.get(idkey, db=db["status"])
            if raw is None or raw[0] not in L.FINAL:
                continue
            st = L.Status.unpack(raw)
            operator = tx.name_of(OPERATOR, st.operator)
            for smsc_id in st.ids:
                txn.delete(L.smsc_key(operator, smsc_id), db=db["smsc"])
            txn.delete(idkey, db=db["status"])
            txn.delete(idkey, db=db["body"])
            _forget_history(tx, idkey)
            tx.count(st.batch, st.kind, st.state, -1)
            tx.bump(b"purged", 1)
        room -= len(walk)
        done += len(walk)
        _walked(tx, db["final"], key, ids, len(walk))
    return done


def _forget_history(tx: Tx, idkey: bytes) -> None:
    cur = tx.txn.cursor(db=tx.db["history"])
    if cur.set_range(idkey):
        while cur.key()[:8] == idkey and cur.delete():
            pass


def _purge_unmatched(tx: Tx, end: bytes, limit: int) -> None:
    db = tx.db["unmatched"]
    cur = tx.txn.cursor(db=db)
    keys: list[bytes] = []
    if cur.first():
        for key in cur.iternext(values=False):
            if key >= end or len(keys) >= limit:
                break
            keys.append(key)
    for key in keys:
        tx.txn.delete(key, db=db)
