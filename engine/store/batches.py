"""What an operator does to waiting messages: pause a batch, cancel it, route again."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import lmdb

from engine.store import layout as L
from engine.store import records as r
from engine.store.enqueue import chunks
from engine.store.errors import StoreError
from engine.store.layout import ROUTE
from engine.store.tx import Tx

if TYPE_CHECKING:
    from engine.store.store import Store

REROUTE_CHUNK = 10_000
_CANCELLED = L.CODE[r.CANCELLED]


def _ids_of(tx: Tx, batch: str) -> list[bytes]:
    """A batch's message ids, via its (batch, ext_id) index."""
    prefix = batch.encode() + b"\0"
    cur = tx.txn.cursor(db=tx.db["batchidx"])
    out = []
    if cur.set_range(prefix):
        for key, idkey in cur:
            if not key.startswith(prefix):
                break
            out.append(idkey)
    return out


def pause(s: Store, tx: Tx, batch: str, paused: bool) -> int:
    """Move a batch's queued messages from ready to parked (or back); how many it has."""
    if tx.txn.get(batch.encode(), db=tx.db["batches"]) is None:
        raise StoreError(f"no batch {batch!r}")
    txn, ready, parked = tx.txn, tx.db["ready"], tx.db["parked"]
    bprefix = batch.encode() + b"\0"
    n = 0
    if paused:
        for idkey in _ids_of(tx, batch):
            raw = txn.get(idkey, db=tx.db["status"])
            if raw is None or raw[0] != L.WAITING:
                continue
            key = tx.name_of(ROUTE, L.kind_batch_route(raw)[2]).encode() + b"\0" + idkey
            if txn.get(key, db=ready) is not None:
                txn.delete(key, db=ready)
                txn.put(bprefix + idkey, raw, db=parked)
                n += 1
            elif txn.get(bprefix + idkey, db=parked) is not None:
                n += 1  # paused already
        tx.set_paused(tx.paused | {batch})
        return n
    cur = txn.cursor(db=parked)
    entries = []
    if cur.set_range(bprefix):
        for key, raw in cur:
            if not key.startswith(bprefix):
                break
            entries.append((key, raw))
    for key, raw in entries:
        txn.delete(key, db=parked)
        route = tx.name_of(ROUTE, L.kind_batch_route(raw)[2]).encode()
        txn.put(route + b"\0" + key[len(bprefix) :], raw, db=ready)
    tx.set_paused(tx.paused - {batch})
    return len(entries)


def cancel(s: Store, tx: Tx, batch: str, at: float) -> int:
    bkey = batch.encode()
    raw = tx.txn.get(bkey, db=tx.db["batches"])
    if raw is None or s.coders.batch.decode(raw).loading_pid:
        raise StoreError(f"no batch {batch!r}")
    tx.set_cancelled(tx.cancelled | {batch})
    n = 0
    at_ms = L.ms(at)
    for idkey in _ids_of(tx, batch):
        raw = tx.txn.get(idkey, db=tx.db["status"])
        if raw is None or raw[0] != L.WAITING:
            continue
        state = tx.where(idkey, raw)
        if state in (L.QUEUED, L.SCHEDULED):
            tx.move(idkey, L.Status.unpack(raw), state, _CANCELLED, at_ms, "batch cancelled")
            n += 1
    info = s.coders.batch.decode(tx.txn.get(bkey, db=tx.db["batches"]))
    info.cancelled = info.cancelled or at
    tx.txn.put(bkey, s.coders.enc.encode(info), db=tx.db["batches"])
    return n


# -- routes --------------------------------------------------------------------------


def reroute(
    s: Store, route_of: Callable[[str], str], table: str, routes: Iterable[str] | None
) -> tuple[int, int]:
    ids = s._read(lambda txn: waiting_ids(s, txn, routes))
    moved = unroutable = 0
    for chunk in chunks(ids, REROUTE_CHUNK):
        m, u = s._write(functools.partial(_reroute, s, ids=chunk, route_of=route_of))
        moved, unroutable = moved + m, unroutable + u
    if table:
        s._write(lambda tx: tx.txn.put(b"routing", table.encode(), db=tx.db["meta"]))
    return moved, unroutable


def waiting_ids(s: Store, txn: lmdb.Transaction, routes: Iterable[str] | None) -> list[bytes]:
    """What waits: the queued of ``routes``, or every queued, parked and scheduled one."""
    db = s.db
    if routes is not None:
        ids = []
        for route in routes:
            prefix = route.encode() + b"\0"
            cur = txn.cursor(db=db["ready"])
            if cur.set_range(prefix):
                for key in cur.iternext(values=False):
                    if not key.startswith(prefix):
                        break
                    ids.append(key[-8:])
        return ids
    out = [k[-8:] for k in txn.cursor(db=db["ready"]).iternext(values=False)]
    out += [k[-8:] for k in txn.cursor(db=db["parked"]).iternext(values=False)]
    out += [k[8:] for k in txn.cursor(db=db["sched"]).iternext(values=False)]
    return out


def _reroute(s: Store, tx: Tx, ids: list[bytes], route_of: Callable[[str], str]) -> tuple[int, int]:
    moved = unroutable = 0
    txn = tx.txn
    for idkey in ids:
        raw = txn.get(idkey, db=tx.db["status"])
        if raw is None or raw[0] != L.WAITING:
            continue
        state = tx.where(idkey, raw)
        if state not in (L.QUEUED, L.SCHEDULED):
            continue
        to = s.coders.body.decode(txn.get(idkey, db=tx.db["body"])).to
        route = route_of(to)
        unroutable += route == r.UNROUTED
        new = tx.id_of(ROUTE, route)
        st = L.Status.unpack(raw)
        if new == st.route:
            continue
        tx.unplace(idkey, st, state)
        if (st.route == 0) != (new == 0):
            tx.bump(L.UNROUTABLE_KEY, 1 if new == 0 else -1)
        st.route = new
        tx.place(idkey, st, state)
        moved += 1
    return moved, unroutable
