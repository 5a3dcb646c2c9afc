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
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import lmdb

from engine.store import campaign as camp
from engine.store import layout as L
from engine.store import numbers
from engine.store import records as r
from engine.store.errors import DuplicateId, StoreError
from engine.store.layout import BATCH, KIND, ROUTE
from engine.store.tx import Tx

if TYPE_CHECKING:
    from engine.store.store import Store

T = TypeVar("T")

UNTIMED, TIMED, SCHEDULED = 0, 1, 2  # queued due now; queued with its own due; scheduled


class Group:
    """Messages of one load that share their status record but for their due: same kind,
    route, zone_default flag, and mode. ``ids``: id(8) each, then due_ms(8) unless the
    mode is UNTIMED (due: the load's now). 8 or 16 bytes a message until published."""

    __slots__ = ("flags", "ids", "kind", "mode", "route", "status", "statuses")

    def __init__(self, kind: int, route: int, flags: int, mode: int, status: bytes) -> None:
        self.kind, self.route, self.flags, self.mode = kind, route, flags, mode
        self.ids = bytearray()
        self.status = status  # UNTIMED: every message's status record
        self.statuses: dict[int, bytes] = {}  # due_ms -> status record, for the others

    @property
    def n(self) -> int:
        return len(self.ids) // (8 if self.mode == UNTIMED else 16)

    def entries(self) -> Iterator[tuple[bytes, int]]:
        """(id, due_ms) of each message; UNTIMED ones have due_ms -1."""
        ids = self.ids
        if self.mode == UNTIMED:
            for i in range(0, len(ids), 8):
                yield bytes(ids[i : i + 8]), -1
        else:
            for i in range(0, len(ids), 16):
                yield bytes(ids[i : i + 8]), L.U64.unpack_from(ids, i + 8)[0]


class Staged:
    """What a load wrote, for its publishing transaction: each chunk's groups, added only
    once the chunk's transaction has committed (a replay after the map grew cannot count
    twice)."""

    def __init__(self) -> None:
        self.groups: list[Group] = []
        self.first = 0  # the first id this load took: an id repeated from then on is in it

    @property
    def n(self) -> int:
        return sum(g.n for g in self.groups)

    @property
    def scheduled(self) -> int:
        return sum(g.n for g in self.groups if g.mode == SCHEDULED)


class Step(NamedTuple):
    """The campaign step a batch is (empty: none named by this load)."""

    campaign: str = ""
    segment: str = ""


def enqueue(
    s: Store,
    batch: str,
    messages: Iterable[r.NewMessage],
    now: float,
    progress: Callable[[int], None] | None,
    drop_dead: bool,
    chunk_size: int,
    step: Step = Step(),  # noqa: B008 - an immutable tuple
) -> r.EnqueueResult:
    if s.readonly:
        raise StoreError("the store is open read-only")
    bkey = check_batch_id(batch)
    remember = bool(s._write(lambda tx: _mark_loading(s, tx, bkey, step)))
    staged = Staged()
    dup = 0
    totals = {"dead": 0, "stopped": 0, "dropped": 0}
    try:
        for chunk in chunks(messages, chunk_size):
            load = functools.partial(
                _load_chunk, s, batch=batch, chunk=chunk, now=now, drop=drop_dead, staged=staged,
                remember=remember,
            )  # fmt: skip
            groups, d, tally = s._write(load)
            staged.groups += groups
            dup += d
            for key, n in tally.items():
                totals[key] += n
            if progress:
                progress(sum(g.n for g in groups) + d)
        s._write(lambda tx: _publish(s, tx, batch, staged, now))
    except BaseException:
        abort_load(s, batch)
        raise
    return r.EnqueueResult(batch, staged.n, dup, staged.scheduled, **totals)


def _mark_loading(s: Store, tx: Tx, bkey: bytes, step: Step) -> str:
    """The batch marked loading (and named a campaign's step); returns its campaign."""
    raw = tx.txn.get(bkey, db=tx.db["batches"])
    info = s.coders.batch.decode(raw) if raw else r.BatchInfo()
    if info.loading_pid and _alive(info.loading_pid) and info.loading_pid != os.getpid():
        raise StoreError(f"batch {bkey.decode()!r} is being loaded by process {info.loading_pid}")
    campaign, segment = step
    if campaign and info.campaign and (info.campaign, info.segment) != (campaign, segment):
        raise StoreError(
            f"batch {bkey.decode()!r} is step {info.segment!r} of campaign "
            f"{info.campaign!r}, not {segment!r} of {campaign!r}"
        )
    if campaign and not info.campaign:
        if raw is not None and info.total:
            raise StoreError(f"batch {bkey.decode()!r} exists outside any campaign")
        info.campaign, info.segment = campaign, segment
    info.loading_pid = os.getpid()
    tx.txn.put(bkey, s.coders.enc.encode(info), db=tx.db["batches"])
    return info.campaign


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
    drop: bool,
    staged: Staged,
    remember: bool = False,
) -> tuple[list[Group], int, dict[str, int]]:
    """Write a chunk's (batch, id) keys, bodies and status records (not yet indexed:
    invisible to claims); what the publishing transaction needs is returned, not kept."""
    txn, db = tx.txn, tx.db
    put, batchidx = txn.put, db["batchidx"]
    encode, Body, pack_id = s.coders.enc.encode, r.Body, L.U64.pack
    prefix = batch.encode() + b"\0"
    tally = {"dead": 0, "stopped": 0, "dropped": 0}
    first = _next_ids(tx, len(chunk))
    staged.first = staged.first or first
    check_numbers = tx.any_numbers()
    batch_id = tx.id_of(BATCH, batch)
    now_ms = L.ms(now)
    groups: dict[tuple[str, str, bool, int], Group] = {}
    bodies: list[tuple[bytes, bytes]] = []
    statuses: list[tuple[bytes, bytes]] = []
    for mid, m in enumerate(chunk, first):
        ext = m.ext_id
        if len(ext) > r.MAX_ID_CHARS:
            raise StoreError(f"id {ext[:20]!r}...: longer than {r.MAX_ID_CHARS} characters")
        key = prefix + (ext or f"#{mid}").encode()
        idkey = pack_id(mid)
        if not put(key, idkey, db=batchidx, overwrite=False):
            _check_repeat(s, tx, batch, m, txn.get(key, db=batchidx), staged.first, bodies)
            continue  # already in this batch: from an earlier run or this file
        if check_numbers:
            barred = numbers.barred(s, numbers.read(s, txn, m.to.encode()), m.kind, now)
            if barred == "dead" and drop:
                txn.delete(key, db=batchidx)
                tally["dropped"] += 1
                continue
            if barred:
                tally[barred] += 1
        if m.links or remember:  # its link codes; its number's contact with the step
            m = camp.on_enqueue(tx, mid, m, remember)
        due = now if m.due is None else m.due
        mode = UNTIMED if m.due is None else SCHEDULED if due > now else TIMED
        gkey = (m.kind, m.route, m.zone_default, mode)
        group = groups.get(gkey)
        if group is None:
            group = groups[gkey] = _group(tx, m, batch_id, mode, now_ms)
        if mode == UNTIMED:
            group.ids += idkey
            status = group.status
        else:
            due_ms = max(0, int(due * 1000))
            group.ids += idkey + pack_id(due_ms)
            status = group.statuses.get(due_ms) or group.statuses.setdefault(
                due_ms, L.enqueued(group.kind, batch_id, group.route, due_ms, now_ms, group.flags)
            )
        body = Body(batch, ext, m.to, m.text, m.sender, m.kind, m.route, now, m.not_before,
                    m.expires, m.parts, m.zone, m.window, m.zone_default, m.line, due,
                    m.links)  # fmt: skip
        bodies.append((idkey, encode(body)))
        statuses.append((idkey, status))
    txn.cursor(db=db["body"]).putmulti(bodies, append=True)
    txn.cursor(db=db["status"]).putmulti(statuses, append=True)
    written = len(bodies)
    return list(groups.values()), len(chunk) - written - tally["dropped"], tally


def _group(tx: Tx, m: r.NewMessage, batch_id: int, mode: int, now_ms: int) -> Group:
    kind, route = tx.id_of(KIND, m.kind), tx.id_of(ROUTE, m.route)
    flags = L.ZONE_DEFAULT if m.zone_default else 0
    return Group(kind, route, flags, mode, L.enqueued(kind, batch_id, route, now_ms, now_ms, flags))


def _check_repeat(
    s: Store,
    tx: Tx,
    batch: str,
    m: r.NewMessage,
    existing: bytes,
    first: int,
    bodies: list[tuple[bytes, bytes]],
) -> None:
    """An id seen earlier in this same load must carry the same message (this chunk's
    bodies are not written yet: ``bodies``)."""
    mid = L.U64.unpack(existing)[0]
    if mid < first:
        return  # from an earlier load: not queued again (idempotent)
    raw = tx.txn.get(existing, db=tx.db["body"])
    if raw is None:
        raw = next((body for idkey, body in reversed(bodies) if idkey == existing), None)
    if raw is None:
        return
    old = s.coders.body.decode(raw)
    same = (old.to, old.sender, old.kind, old.not_before, old.expires) == (
        m.to, m.sender, m.kind, m.not_before, m.expires
    ) and camp.same_text(old, m)  # fmt: skip
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
    ready: list[tuple[bytes, bytes]] = []
    sched: list[tuple[bytes, bytes]] = []
    zone_default = unroutable = 0
    for group in staged.groups:
        n = group.n
        state = L.SCHEDULED if group.mode == SCHEDULED else L.QUEUED
        tx.count(batch_id, group.kind, state, n)
        zone_default += n if group.flags & L.ZONE_DEFAULT else 0
        unroutable += n if group.route == 0 else 0
        prefix = bprefix if parked else tx.name_of(ROUTE, group.route).encode() + b"\0"
        if group.mode == UNTIMED:
            status = group.status
            ready += [(prefix + idkey, status) for idkey, _ in group.entries()]
            continue
        into = sched if group.mode == SCHEDULED else ready
        for idkey, due_ms in group.entries():
            key = L.U64.pack(due_ms) + idkey if group.mode == SCHEDULED else prefix + idkey
            into.append((key, group.statuses[due_ms]))
    txn = tx.txn
    txn.cursor(db=tx.db["parked" if parked else "ready"]).putmulti(ready)
    txn.cursor(db=tx.db["sched"]).putmulti(sched)
    tx.bump(L.ZONE_DEFAULT_KEY, zone_default)
    tx.bump(L.UNROUTABLE_KEY, unroutable)
    if s.routing_hint and txn.get(b"routing", db=tx.db["meta"]) is None:
        # the first producer's routing is the queue's: an engine with the same one
        # need not route everything again at its start
        txn.put(b"routing", s.routing_hint.encode(), db=tx.db["meta"])
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
        body = txn.get(idkey, db=db["body"])
        if body is not None:  # its link codes and its number's contact go too
            msg = s.coders.claimed.decode(body)
            msg.id = L.U64.unpack(idkey)[0]
            camp.forget(tx, msg)
        txn.delete(key, db=db["batchidx"])
        txn.delete(idkey, db=db["body"])
        txn.delete(idkey, db=db["status"])
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
