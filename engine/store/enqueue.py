"""Loading a batch: all or nothing, idempotent on (batch, ext_id), streaming in chunks.

Each chunk's transaction writes the messages' (batch, id) keys, bodies and
status records, not yet indexed (invisible to claims and counts), with the
batch marked as loading; a last small transaction indexes them all (one
putmulti per index) and counts them. A loader that dies leaves the marker; the
next writer to open the store removes what it wrote.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

import lmdb

from engine.store import layout as L
from engine.store import numbers
from engine.store import records as r
from engine.store.errors import DuplicateId, StoreError
from engine.store.tx import BATCH, KIND, ROUTE, Tx

if TYPE_CHECKING:
    from engine.store.store import Store

T = TypeVar("T")

# what a load keeps of each message for its publishing transaction: id, due_ms, route,
# kind, flags, scheduled (22 bytes; the status record is rebuilt from them, byte for byte)
_STAGED = struct.Struct(">QQHHB?")


class Staged:
    def __init__(self) -> None:
        self.buf = bytearray()
        self.counts: dict[tuple[int, int], int] = {}  # (kind, state) -> n
        self.n = self.scheduled = self.zone_default = self.unroutable = 0
        self.first = 0  # the first id this load took: an id repeated from then on is in it

    def add(self, mid: int, due_ms: int, route: int, kind: int, flags: int, sched: bool) -> None:
        self.buf += _STAGED.pack(mid, due_ms, route, kind, flags, sched)
        key = (kind, L.SCHEDULED if sched else L.QUEUED)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.n += 1
        self.scheduled += sched
        self.zone_default += bool(flags & L.ZONE_DEFAULT)
        self.unroutable += route == 0

    def merge(self, other: Staged) -> None:
        self.buf += other.buf
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.n += other.n
        self.scheduled += other.scheduled
        self.zone_default += other.zone_default
        self.unroutable += other.unroutable


def enqueue(
    s: Store,
    batch: str,
    messages: Iterable[r.NewMessage],
    now: float,
    progress: Callable[[int], None] | None,
    drop_dead: bool,
    chunk_size: int,
) -> r.EnqueueResult:
    if s.readonly:
        raise StoreError("the store is open read-only")
    bkey = check_batch_id(batch)
    s._write(lambda tx: _mark_loading(s, tx, bkey))
    staged = Staged()
    dup = 0
    totals = {"dead": 0, "stopped": 0, "dropped": 0}
    try:
        for chunk in chunks(messages, chunk_size):
            load = functools.partial(
                _load_chunk,
                s,
                batch=batch,
                chunk=chunk,
                now=now,
                drop_dead=drop_dead,
                staged=staged,
            )
            part, d, tally = s._write(load)
            staged.merge(part)
            dup += d
            for key, n in tally.items():
                totals[key] += n
            if progress:
                progress(part.n + d)
        s._write(lambda tx: _publish(s, tx, batch, staged, now))
    except BaseException:
        abort_load(s, batch)
        raise
    return r.EnqueueResult(batch, staged.n, dup, staged.scheduled, **totals)


def _mark_loading(s: Store, tx: Tx, bkey: bytes) -> None:
    raw = tx.txn.get(bkey, db=tx.db["batches"])
    info = s.coders.batch.decode(raw) if raw else r.BatchInfo()
    if info.loading_pid and _alive(info.loading_pid) and info.loading_pid != os.getpid():
        raise StoreError(f"batch {bkey.decode()!r} is being loaded by process {info.loading_pid}")
    info.loading_pid = os.getpid()
    tx.txn.put(bkey, s.coders.enc.encode(info), db=tx.db["batches"])


def _next_ids(tx: Tx, n: int) -> int:
    raw = tx.txn.get(b"seq", db=tx.db["meta"])
    first = (L.U64.unpack(raw)[0] if raw else 0) + 1
    tx.txn.put(b"seq", L.U64.pack(first + n - 1), db=tx.db["meta"])
    return first


def _load_chunk(
    s: Store,
    tx: Tx,
    batch: str,
    chunk: list[r.NewMessage],
    now: float,
    drop_dead: bool,
    staged: Staged,
) -> tuple[Staged, int, dict[str, int]]:
    """Write a chunk's messages (not yet indexed: invisible to claims), staged apart
    from ``staged`` until the transaction commits."""
    txn, db = tx.txn, tx.db
    put, batchidx = txn.put, db["batchidx"]
    encode = s.coders.enc.encode
    prefix = batch.encode() + b"\0"
    tally = {"dead": 0, "stopped": 0, "dropped": 0}
    first = _next_ids(tx, len(chunk))
    staged.first = staged.first or first
    check_numbers = tx.any_numbers()
    hooks = s.hooks.enqueue
    batch_id = tx.id_of(BATCH, batch)
    now_ms = L.ms(now)
    kinds: dict[str, int] = {}
    routes: dict[str, int] = {}
    bodies: list[tuple[bytes, bytes]] = []
    statuses: list[tuple[bytes, bytes]] = []
    written: dict[bytes, bytes] = {}  # this chunk's bodies, by id: not in the database yet
    part = Staged()
    for mid, m in enumerate(chunk, first):
        ext = m.ext_id
        if len(ext) > r.MAX_ID_CHARS:
            raise StoreError(f"id {ext[:20]!r}...: longer than {r.MAX_ID_CHARS} characters")
        key = prefix + (ext or f"#{mid}").encode()
        idkey = L.U64.pack(mid)
        if not put(key, idkey, db=batchidx, overwrite=False):
            _check_repeat(s, tx, batch, m, txn.get(key, db=batchidx), staged.first, written)
            continue  # already in this batch: from an earlier run or this file
        if check_numbers:
            rec = numbers.read(s, txn, m.to.encode())
            barred = numbers.barred(s, rec, m.kind, now)
            if barred == "dead" and drop_dead:
                txn.delete(key, db=batchidx)
                tally["dropped"] += 1
                continue
            if barred:
                tally[barred] += 1
        due = m.due if m.due is not None else now
        kind = kinds.get(m.kind)
        if kind is None:
            kind = kinds[m.kind] = tx.id_of(KIND, m.kind)
        route = routes.get(m.route)
        if route is None:
            route = routes[m.route] = tx.id_of(ROUTE, m.route)
        flags = L.ZONE_DEFAULT if m.zone_default else 0
        due_ms = L.ms(due)
        body = r.Body(
            batch=batch,
            ext_id=ext,
            to=m.to,
            text=m.text,
            sender=m.sender,
            kind=m.kind,
            route=m.route,
            created=now,
            not_before=m.not_before,
            expires=m.expires,
            parts=m.parts,
            zone=m.zone,
            window=m.window,
            zone_default=m.zone_default,
            line=m.line,
            due=due,
        )
        raw = written[idkey] = encode(body)
        bodies.append((idkey, raw))
        statuses.append((idkey, L.enqueued(kind, batch_id, route, due_ms, now_ms, flags)))
        part.add(mid, due_ms, route, kind, flags, due > now)
        if hooks:
            for hook in hooks:  # engine/store/campaign.py: links, contacts
                hook(tx, mid, m)
    txn.cursor(db=db["body"]).putmulti(bodies, append=True)
    txn.cursor(db=db["status"]).putmulti(statuses, append=True)
    return part, len(chunk) - part.n - tally["dropped"], tally


def _check_repeat(
    s: Store,
    tx: Tx,
    batch: str,
    m: r.NewMessage,
    existing: bytes,
    first: int,
    written: dict[bytes, bytes],
) -> None:
    """An id seen earlier in this same load must carry the same message."""
    mid = L.U64.unpack(existing)[0]
    if mid < first:
        return  # from an earlier load: not queued again (idempotent)
    raw = written.get(existing) or tx.txn.get(existing, db=tx.db["body"])
    if raw is None:
        return
    old = s.coders.body.decode(raw)
    same = (old.to, old.text, old.sender, old.kind, old.not_before, old.expires) == (
        m.to, m.text, m.sender, m.kind, m.not_before, m.expires
    )  # fmt: skip
    if not same:
        raise DuplicateId(batch, m.ext_id, old.line, m.line)


def _publish(s: Store, tx: Tx, batch: str, staged: Staged, now: float) -> None:
    """Index the staged messages (one putmulti per index) and count them: now visible."""
    if staged.n and batch in tx.cancelled:
        raise StoreError(
            f"batch {batch!r} was cancelled: nothing enqueued (give new messages another batch)"
        )
    batch_id = tx.id_of(BATCH, batch)
    parked = batch in tx.paused
    bprefix = batch.encode() + b"\0"
    prefixes: dict[int, bytes] = {}
    now_ms = L.ms(now)
    ready: list[tuple[bytes, bytes]] = []
    sched: list[tuple[bytes, bytes]] = []
    for mid, due_ms, route, kind, flags, scheduled in _STAGED.iter_unpack(staged.buf):
        idkey = L.U64.pack(mid)
        status = L.enqueued(kind, batch_id, route, due_ms, now_ms, flags)
        if scheduled:
            sched.append((L.U64.pack(due_ms) + idkey, status))
            continue
        prefix = bprefix if parked else prefixes.get(route)
        if prefix is None:
            prefix = prefixes[route] = tx.name_of(ROUTE, route).encode() + b"\0"
        ready.append((prefix + idkey, status))
    txn = tx.txn
    txn.cursor(db=tx.db["parked" if parked else "ready"]).putmulti(ready)
    txn.cursor(db=tx.db["sched"]).putmulti(sched)
    for (kind, state), n in staged.counts.items():
        tx.count(batch_id, kind, state, n)
    tx.bump(L.ZONE_DEFAULT_KEY, staged.zone_default)
    tx.bump(L.UNROUTABLE_KEY, staged.unroutable)
    bkey = batch.encode()
    info = s.coders.batch.decode(txn.get(bkey, db=tx.db["batches"]))
    info.loading_pid = 0
    info.total += staged.n
    info.created = info.created or now
    txn.put(bkey, s.coders.enc.encode(info), db=tx.db["batches"])


def abort_load(s: Store, batch: str) -> None:
    """Remove what an unfinished load wrote: its messages have no index entries yet."""
    s._write(lambda tx: _abort(s, tx, batch))


def _abort(s: Store, tx: Tx, batch: str) -> None:
    txn, db = tx.txn, tx.db
    prefix = batch.encode() + b"\0"
    cur = txn.cursor(db=db["batchidx"])
    claimed = inflight_ids(txn, db["inflight"])
    doomed = []
    if cur.set_range(prefix):
        for key, idkey in cur:
            if not key.startswith(prefix):
                break
            raw = txn.get(idkey, db=db["status"])
            if raw is None or _unpublished(tx, idkey, raw, claimed):
                doomed.append((key, idkey))
    for key, idkey in doomed:
        txn.delete(key, db=db["batchidx"])
        txn.delete(idkey, db=db["body"])
        txn.delete(idkey, db=db["status"])
    if doomed:
        ids = [L.U64.unpack(idkey)[0] for _, idkey in doomed]
        for hook in s.hooks.load_aborted:
            hook(tx, batch, ids)
    raw = txn.get(batch.encode(), db=db["batches"])
    if raw is not None:
        info = s.coders.batch.decode(raw)
        info.loading_pid = 0
        if info.total:
            txn.put(batch.encode(), s.coders.enc.encode(info), db=db["batches"])
        else:
            txn.delete(batch.encode(), db=db["batches"])


def _unpublished(tx: Tx, idkey: bytes, raw: bytes, claimed: set[int]) -> bool:
    """Waiting, yet neither in its index nor ever claimed: written by the unfinished load."""
    if raw[0] != L.WAITING or tx.where(idkey, raw) != L.INFLIGHT:
        return False
    return L.U64.unpack(idkey)[0] not in claimed


def inflight_ids(txn: lmdb.Transaction, db: object) -> set[int]:
    """Every id in any claim set (those still in flight, and any a crash left behind)."""
    out: set[int] = set()
    for raw in txn.cursor(db=db).iternext(keys=False):
        out.update(L.read_inflight(raw)[2])
    return out


def drop_unfinished_loads(s: Store) -> None:
    def loads(txn: lmdb.Transaction) -> list[tuple[str, int]]:
        out = []
        for key, raw in txn.cursor(db=s.db["batches"]):
            info = s.coders.batch.decode(raw)
            if info.loading_pid:
                out.append((bytes(key).decode(), info.loading_pid))
        return out

    for batch, pid in s._read(loads):
        if not _alive(pid):
            abort_load(s, batch)


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def check_batch_id(batch: str) -> bytes:
    """A batch id as its key: non-empty, at most MAX_BATCH_BYTES, no control characters."""
    key = batch.encode()
    if not key or len(key) > r.MAX_BATCH_BYTES:
        raise StoreError(f"batch id: {len(key)} bytes, expected 1 to {r.MAX_BATCH_BYTES}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in batch):
        raise StoreError(f"batch id {batch!r}: no control characters allowed")
    return key


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
