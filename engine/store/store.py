"""The durable queue: one LMDB environment, one named database per purpose.

Keys are designed for single cursor seeks:

- ``msgs``      id(8, big-endian)        -> Message
- ``ready``     route NUL id(8)          -> ''  claim: one seek per route, enqueue order
- ``sched``     due_ms(8) id(8)          -> ''  promote: walk from the start while due
- ``inflight``  id(8)                    -> ''  crash recovery
- ``sent``      sent_ms(8) id(8)         -> ''  receipt timeout: walk from the start
- ``final``     final_ms(8) id(8)        -> ''  retention purge
- ``smsc``      canonical SMSC id        -> id(8) part(1)
- ``batchidx``  batch NUL ext_id         -> id(8)  idempotent enqueue
- ``batches``   batch                    -> BatchInfo (counts by state)
- ``counters``  s NUL state, k NUL kind NUL state -> count(8)
- ``numbers`` / ``stop`` / ``dead`` / ``mo`` / ``meta``

Every state change is one write transaction that moves the message between
indexes and adjusts the counters in the same commit, so counters always equal
the per-state counts. The engine batches many changes into one transaction
(:meth:`Store.apply`, :meth:`Store.claim`) from one thread. Readers in other
processes use read-only transactions and never block the writer.

After a crash, messages found ``inflight`` are put back at their place in the
queue (``on_crash_inflight = "resend"``: those may be sent twice; at most
window x binds per operator) or marked ``unknown`` (``"hold"``).
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import lmdb
import msgspec

from engine.store import campaign
from engine.store import records as r
from engine.store.errors import DuplicateId, StoreError
from engine.store.lock import StoreLock

SCHEMA = 1


class CapPolicy(Protocol):
    """What the store needs of frequency caps (engine/sched/caps.py has one)."""

    longest: float

    def capped(self, kind: str) -> bool: ...

    def next_allowed(self, kind: str, sent: Sequence[float], now: float) -> float: ...


class PrunePolicy(Protocol):
    """What the store needs of a dead-number policy (engine/sched/prune.py has one)."""

    ttl: float

    def dead(self, outcomes: Sequence[r.Outcome], route: str) -> bool: ...


_U64 = struct.Struct(">Q")
_PART = [bytes([i]) for i in range(256)]
_NAMES = (
    "meta",
    "msgs",
    "ready",
    "sched",
    "inflight",
    "sent",
    "final",
    "smsc",
    "batchidx",
    "batches",
    "counters",
    "numbers",
    "stop",
    "dead",
    "mo",
    "unmatched",
    "parked",
    *campaign.DATABASES,  # campaigns: links, clicks, contacts, engagement (campaign.py)
)
LOAD_CHUNK = 50_000
REROUTE_CHUNK = 10_000
ZONE_DEFAULT = b"zone_default"
UNROUTABLE = b"unroutable"
T = TypeVar("T")


_STAT = {
    r.DELIVERED: "DELIVRD",
    r.UNDELIVERED: "UNDELIV",
    r.EXPIRED: "EXPIRED",
    r.REJECTED: "REJECTD",
    r.DELETED: "DELETED",
    r.UNKNOWN: "UNKNOWN",
}


def _severity(state: str) -> int:
    return r.SEVERITY.get(state, 3)


def _ms(t: float) -> int:
    return max(0, int(t * 1000))


def _enc_id(i: int) -> bytes:
    return _U64.pack(i)


@functools.lru_cache(maxsize=1024)
def _counter_keys(kind: str, state: str) -> tuple[bytes, bytes]:
    return b"s\0" + state.encode(), b"k\0" + kind.encode() + b"\0" + state.encode()


class _Coders:
    def __init__(self) -> None:
        self.enc = msgspec.msgpack.Encoder()
        self.msg = msgspec.msgpack.Decoder(r.Message)
        self.batch = msgspec.msgpack.Decoder(r.BatchInfo)
        self.history = msgspec.msgpack.Decoder(r.NumberHistory)
        self.stop = msgspec.msgpack.Decoder(r.StopEntry)
        self.dead = msgspec.msgpack.Decoder(r.DeadEntry)
        self.mo = msgspec.msgpack.Decoder(r.Mo)
        self.unmatched = msgspec.msgpack.Decoder(r.Unmatched)


class _Tx:
    """One write transaction: state moves, with counter deltas written once at the end."""

    def __init__(self, store: Store, txn: lmdb.Transaction) -> None:
        self.s = store
        self.txn = txn
        self.db = store._db
        self.deltas: dict[tuple[str, str, str] | bytes, int] = {}
        self.moves: dict[tuple[str, str, str, str], int] = {}  # (batch, kind, from, to)
        self._paused: frozenset[str] | None = None
        self._cancelled: frozenset[str] | None = None
        self._barring: tuple[bool, bool] | None = None

    @property
    def paused(self) -> frozenset[str]:
        """Paused batches: their queued messages wait in "parked", not in "ready"."""
        if self._paused is None:
            raw = self.txn.get(b"paused", db=self.db["meta"])
            self._paused = frozenset(msgspec.msgpack.decode(raw)) if raw else frozenset()
        return self._paused

    @property
    def cancelled(self) -> frozenset[str]:
        """Cancelled batches: none of their messages is ever queued again."""
        if self._cancelled is None:
            raw = self.txn.get(b"cancelled", db=self.db["meta"])
            self._cancelled = frozenset(msgspec.msgpack.decode(raw)) if raw else frozenset()
        return self._cancelled

    def count(self, msg: r.Message, state: str, n: int) -> None:
        key = (msg.batch, msg.kind, state)
        self.deltas[key] = self.deltas.get(key, 0) + n

    def get(self, msg_id: int) -> r.Message | None:
        raw = self.txn.get(_U64.pack(msg_id), db=self.db["msgs"])
        return None if raw is None else self.s._c.msg.decode(raw)

    def put(self, msg: r.Message) -> None:
        self.txn.put(_U64.pack(msg.id), self.s._c.enc.encode(msg), db=self.db["msgs"])

    def _state_key(self, msg: r.Message, key: bytes) -> tuple[bytes, Any] | None:
        state, db = msg.state, self.db
        if state == r.QUEUED:
            if msg.batch in self.paused:
                return msg.batch.encode() + b"\0" + key, db["parked"]
            return msg.route.encode() + b"\0" + key, db["ready"]
        if state == r.SCHEDULED:
            return _U64.pack(_ms(msg.due)) + key, db["sched"]
        if state == r.INFLIGHT:
            return key, db["inflight"]
        if state == r.SENT:
            return (_U64.pack(_ms(msg.updated)) + key, db["sent"]) if msg.receipt else None
        if state in r.FINAL:
            return _U64.pack(_ms(msg.updated)) + key, db["final"]
        return None

    def unindex(self, msg: r.Message, key: bytes | None = None) -> None:
        """Remove the message from the index of its current state (final ones stay)."""
        if msg.state not in r.FINAL:
            entry = self._state_key(msg, key or _U64.pack(msg.id))
            if entry:
                self.txn.delete(entry[0], db=entry[1])

    def index(self, msg: r.Message, key: bytes | None = None) -> None:
        entry = self._state_key(msg, key or _U64.pack(msg.id))
        if entry:
            self.txn.put(entry[0], b"", db=entry[1])

    def move(self, msg: r.Message, state: str, at: float, **fields: Any) -> r.Message:
        if state in (r.QUEUED, r.SCHEDULED) and self.cancelled and msg.batch in self.cancelled:
            state, fields = r.CANCELLED, {"reason": "batch cancelled"}
        key = _U64.pack(msg.id)
        self.unindex(msg, key)
        self.moved(msg, state)
        msg.state = state
        msg.updated = at
        for name, value in fields.items():
            setattr(msg, name, value)
        self.index(msg, key)
        self.txn.put(key, self.s._c.enc.encode(msg), db=self.db["msgs"])
        return msg

    def moved(self, msg: r.Message, state: str) -> None:
        """Count a move from the message's current state to ``state`` (before it is set)."""
        key = (msg.batch, msg.kind, msg.state, state)
        moves = self.moves
        moves[key] = moves.get(key, 0) + 1
        if (msg.state in r.PENDING) != (state in r.PENDING):
            if msg.zone_default:
                self.bump(ZONE_DEFAULT, 1 if state in r.PENDING else -1)
            if msg.route == r.UNROUTED:
                self.bump(UNROUTABLE, 1 if state in r.PENDING else -1)

    def set_route(self, msg: r.Message, route: str) -> None:
        """A pending message's new route (its index entry is the caller's), counted."""
        if msg.state in r.PENDING and (msg.route == r.UNROUTED) != (route == r.UNROUTED):
            self.bump(UNROUTABLE, 1 if route == r.UNROUTED else -1)
        msg.route = route

    def barring(self) -> tuple[bool, bool]:
        """Whether any number is pruned, and whether any is stop-listed (read once)."""
        if self._barring is None:
            stat, db = self.txn.stat, self.db
            self._barring = stat(db["dead"])["entries"] > 0, stat(db["stop"])["entries"] > 0
        return self._barring

    def bump(self, key: bytes, n: int) -> None:
        """A store-wide counter's delta, written with the others at the end."""
        self.deltas[key] = self.deltas.get(key, 0) + n

    def finish(self) -> None:
        counters: dict[bytes, int] = {}
        batches: dict[str, dict[str, int]] = {}
        deltas = self.deltas
        for (batch, kind, old, new), n in self.moves.items():
            was, now = (batch, kind, old), (batch, kind, new)
            deltas[was] = deltas.get(was, 0) - n
            deltas[now] = deltas.get(now, 0) + n
        for key, n in deltas.items():
            if not n:
                continue
            if isinstance(key, bytes):
                counters[key] = counters.get(key, 0) + n
                continue
            batch, kind, state = key
            for ck in _counter_keys(kind, state):
                counters[ck] = counters.get(ck, 0) + n
            per = batches.setdefault(batch, {})
            per[state] = per.get(state, 0) + n
        db, txn, enc = self.db, self.txn, self.s._c.enc
        for key, n in counters.items():
            if n:
                raw = txn.get(key, db=db["counters"])
                value = (_U64.unpack(raw)[0] if raw else 0) + n
                txn.put(key, _U64.pack(max(0, value)), db=db["counters"])
        for batch, changes in batches.items():
            raw = txn.get(batch.encode(), db=db["batches"])
            info = self.s._c.batch.decode(raw) if raw else r.BatchInfo()
            for state, n in changes.items():
                info.counts[state] = info.counts.get(state, 0) + n
            info.counts = {k: v for k, v in info.counts.items() if v}
            txn.put(batch.encode(), enc.encode(info), db=db["batches"])


class Store:
    def __init__(self, env: lmdb.Environment, path: Path, readonly: bool, max_map: int) -> None:
        self.env = env
        self.path = path
        self.readonly = readonly
        self._max_map = max_map
        self._c = _Coders()
        self.prune_policy: PrunePolicy | None = None
        self.cap_policy: CapPolicy | None = None
        self.stop_exempt_kinds: frozenset[str] = frozenset()
        self.history_limit = 20
        self.on_crash_inflight = "resend"
        self.recovered = 0
        self.owner = b""  # tags this process's claims in "inflight" (one per engine process)
        self.reply_window = 7 * 86400.0  # an MO this soon after a campaign step answers it
        self._db = {name: env.open_db(name.encode(), create=not readonly) for name in _NAMES}

    # -- opening ------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        on_crash_inflight: str = "resend",
        map_size: int = 256 << 20,
        max_map_size: int = 64 << 30,
        sync: bool = True,
        prune_policy: PrunePolicy | None = None,
        cap_policy: CapPolicy | None = None,
        history_limit: int = 20,
        stop_exempt_kinds: frozenset[str] = frozenset(),
    ) -> Store:
        """Open (or create: directory 0700, files 0600) the store. Never recovers:
        what a crash left in flight is put back only by :meth:`recover_inflight`,
        which asks for the store's lock (one engine per store)."""
        p = Path(path)
        if readonly and not (p / "data.mdb").exists():
            raise StoreError(f"{p}: no store here yet")
        try:
            if not readonly:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.mkdir(mode=0o700, exist_ok=True)
            _tighten(p)
            env = lmdb.open(
                str(p),
                map_size=map_size,
                max_dbs=len(_NAMES) + 2,
                readonly=readonly,
                sync=sync,
                metasync=sync,
                max_readers=256,
                lock=True,
                mode=0o600,
            )
            _tighten(p)
        except (lmdb.Error, OSError) as exc:
            raise StoreError(f"{p}: cannot open the store: {exc}") from None
        if readonly:
            env.set_mapsize(0)
        try:
            store = cls(env, p, readonly, max_map_size)
        except lmdb.Error as exc:
            env.close()
            raise StoreError(f"{p}: not a Volley store or from another version: {exc}") from None
        store._check_schema()
        store.on_crash_inflight = on_crash_inflight
        store.prune_policy = prune_policy
        store.cap_policy = cap_policy
        store.history_limit = history_limit
        store.stop_exempt_kinds = stop_exempt_kinds
        if not readonly:
            store._drop_unfinished_loads()
        return store

    def close(self) -> None:
        self.env.close()

    def _check_schema(self) -> None:
        with self.env.begin(db=self._db["meta"]) as txn:
            raw = txn.get(b"schema")
        if raw is None:
            if not self.readonly:
                self._write(
                    lambda tx: tx.txn.put(b"schema", str(SCHEMA).encode(), db=self._db["meta"])
                )
            return
        if int(raw) != SCHEMA:
            raise StoreError(
                f"{self.path}: written with store schema {int(raw)}, this Volley reads schema "
                f"{SCHEMA}; use the Volley version that wrote it, or a new store path"
            )

    # -- transactions --------------------------------------------------------

    def _write(self, fn: Callable[[_Tx], T]) -> T:
        """Run ``fn`` in one write transaction; grow the map and replay on MapFullError."""
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    tx = _Tx(self, txn)
                    result = fn(tx)
                    tx.finish()
                return result
            except lmdb.MapFullError:
                self._grow()
            except lmdb.DiskError as exc:
                raise StoreError(f"{self.path}: disk error, nothing was written: {exc}") from None

    def _grow(self) -> None:
        size = self.env.info()["map_size"]
        if size >= self._max_map:
            raise StoreError(
                f"{self.path}: the store is full at {size >> 20} MiB (max_map_size_mb); "
                "nothing was written: purge old messages or raise the limit"
            )
        try:
            self.env.set_mapsize(min(self._max_map, size * 2))
        except lmdb.Error as exc:
            raise StoreError(f"{self.path}: cannot grow the store: {exc}") from None

    def _read(self, fn: Callable[[lmdb.Transaction], T]) -> T:
        for _ in range(3):
            try:
                with self.env.begin() as txn:
                    return fn(txn)
            except lmdb.MapResizedError:
                self.env.set_mapsize(0)
        raise StoreError(f"{self.path}: the map keeps being resized; try again")

    def _next_ids(self, tx: _Tx, n: int) -> int:
        raw = tx.txn.get(b"seq", db=self._db["meta"])
        first = (_U64.unpack(raw)[0] if raw else 0) + 1
        tx.txn.put(b"seq", _U64.pack(first + n - 1), db=self._db["meta"])
        return first

    # -- crash recovery -----------------------------------------------------

    def recover_inflight(self, lock: StoreLock, owner: bytes | None = None) -> int:
        """Messages left in flight by a crash go back to the queue at their place
        (``on_crash_inflight = "resend"``) or end ``unknown`` ("hold").

        Only for the engine that has just taken the store's ``lock`` (or its
        supervisor): any other process would put back what a running engine is
        sending, and it would be sent twice. ``owner``: only those claimed by
        that engine process (its :attr:`owner` tag), when the others are still
        running; ``None``: all of them.
        """
        if not isinstance(lock, StoreLock) or lock.inherited or not lock.covers(self.path):
            raise StoreError(f"{self.path}: only the engine holding the store's lock recovers")
        policy = self.on_crash_inflight

        def recover(tx: _Tx) -> int:
            n = 0
            entries = list(tx.txn.cursor(db=self._db["inflight"]))
            for key, tag in entries:
                if owner is not None and tag != owner:
                    continue
                msg = tx.get(_U64.unpack(key)[0])
                if msg is None:
                    tx.txn.delete(key, db=self._db["inflight"])
                    continue
                if policy == "hold":
                    tx.move(msg, r.UNKNOWN, msg.updated, reason="inflight at a crash (hold)")
                else:
                    tx.move(msg, r.QUEUED, msg.updated, reason="resent after a crash")
                n += 1
            return n

        return self._write(recover)

    def _drop_unfinished_loads(self) -> None:
        def loads(txn: lmdb.Transaction) -> list[tuple[str, int]]:
            out = []
            for key, raw in txn.cursor(db=self._db["batches"]):
                info = self._c.batch.decode(raw)
                if info.loading_pid:
                    out.append((key.decode(), info.loading_pid))
            return out

        for batch, pid in self._read(loads):
            if not _alive(pid):
                self._abort_load(batch)

    # -- producer -----------------------------------------------------------

    def enqueue(
        self,
        batch: str,
        messages: Iterable[r.NewMessage],
        *,
        now: float,
        progress: Callable[[int], None] | None = None,
        drop_dead: bool = False,
        campaign: str = "",
        segment: str = "",
    ) -> r.EnqueueResult:
        """All or nothing, idempotent on (batch, ext_id), streaming in chunks.

        Chunks are written with the batch marked as loading (invisible to
        claims and counts); a last small transaction makes it visible. A
        loader that dies leaves a marker that the next writer to open the
        store removes, with what it wrote. ``campaign``/``segment``: the batch
        is that campaign's step (kept on the batch; its numbers remembered).
        """
        if self.readonly:
            raise StoreError("the store is open read-only")
        bkey = check_batch_id(batch)
        step = self._write(lambda tx: self._mark_loading(tx, bkey, campaign, segment))
        staged = _Staged()
        dup = 0
        totals = {"dead": 0, "stopped": 0, "dropped": 0}
        try:
            for chunk in _chunks(messages, LOAD_CHUNK):
                load = functools.partial(
                    self._load_chunk,
                    batch=batch,
                    chunk=chunk,
                    now=now,
                    drop_dead=drop_dead,
                    staged=staged,
                    remember=bool(step),
                )
                part, d, tally = self._write(load)
                staged.merge(part)
                dup += d
                for key, n in tally.items():
                    totals[key] += n
                if progress:
                    progress(part.n + d)
            self._write(lambda tx: self._publish(tx, batch, staged, now))
        except BaseException:
            self._abort_load(batch)
            raise
        return r.EnqueueResult(batch, staged.n, dup, staged.scheduled, **totals)

    def _mark_loading(self, tx: _Tx, bkey: bytes, campaign: str, segment: str) -> str:
        """The batch marked loading (and named a campaign's step); returns its campaign."""
        raw = tx.txn.get(bkey, db=self._db["batches"])
        info = self._c.batch.decode(raw) if raw else r.BatchInfo()
        if info.loading_pid and _alive(info.loading_pid) and info.loading_pid != os.getpid():
            raise StoreError(
                f"batch {bkey.decode()!r} is being loaded by process {info.loading_pid}"
            )
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
        tx.txn.put(bkey, self._c.enc.encode(info), db=self._db["batches"])
        return info.campaign

    def _load_chunk(
        self,
        tx: _Tx,
        batch: str,
        chunk: list[r.NewMessage],
        now: float,
        drop_dead: bool,
        staged: _Staged,
        remember: bool = False,
    ) -> tuple[_Staged, int, dict[str, int]]:
        """Write a chunk's messages (not yet indexed: invisible to claims), staged apart
        from ``staged`` until the transaction commits."""
        db, txn, enc = self._db, tx.txn, self._c.enc
        batchidx, msgs = db["batchidx"], db["msgs"]
        prefix = batch.encode() + b"\0"
        tally = {"dead": 0, "stopped": 0, "dropped": 0}
        first = self._next_ids(tx, len(chunk))
        staged.first = staged.first or first
        dead, stopped = tx.barring()
        part = _Staged(staged.routes)
        for mid, m in enumerate(chunk, first):
            key = prefix + (m.ext_id or f"#{mid}").encode()
            if len(m.ext_id) > r.MAX_ID_CHARS:
                raise StoreError(
                    f"id {m.ext_id[:20]!r}...: longer than {r.MAX_ID_CHARS} characters"
                )
            idkey = _U64.pack(mid)
            if not txn.put(key, idkey, db=batchidx, overwrite=False):
                self._check_repeat(tx, batch, m, txn.get(key, db=batchidx), staged.first)
                continue  # already in this batch: from an earlier run or this file
            barred = self._barred(txn, m.to, m.kind, now) if dead or stopped else ""
            if barred == "dead" and drop_dead:
                txn.delete(key, db=batchidx)
                tally["dropped"] += 1
                continue
            if barred:
                tally[barred] += 1
            m = campaign.on_enqueue(tx, mid, m, remember)  # its links; its number's contact
            due = m.due if m.due is not None else now
            msg = r.Message(
                id=mid,
                batch=batch,
                ext_id=m.ext_id,
                to=m.to,
                text=m.text,
                sender=m.sender,
                kind=m.kind,
                route=m.route,
                created=now,
                not_before=m.not_before,
                expires=m.expires,
                parts=m.parts,
                state=r.SCHEDULED if due > now else r.QUEUED,
                due=due,
                updated=now,
                zone=m.zone,
                window=m.window,
                zone_default=m.zone_default,
                line=m.line,
                links=m.links,
            )
            txn.put(idkey, enc.encode(msg), db=msgs, append=True)
            part.add(msg)
        return part, len(chunk) - part.n - tally["dropped"], tally

    def _check_repeat(
        self, tx: _Tx, batch: str, m: r.NewMessage, existing: bytes, first: int
    ) -> None:
        """An id seen earlier in this same load must carry the same message."""
        mid = _U64.unpack(existing)[0]
        if mid < first:
            return  # from an earlier load: not queued again (idempotent)
        old = tx.get(mid)
        if old is None:
            return
        same = (old.to, old.sender, old.kind, old.not_before, old.expires) == (
            m.to, m.sender, m.kind, m.not_before, m.expires
        ) and campaign.same_text(old, m)  # fmt: skip
        if not same:
            raise DuplicateId(batch, m.ext_id, old.line, m.line)

    def _publish(self, tx: _Tx, batch: str, staged: _Staged, now: float) -> None:
        """Index the staged messages (one putmulti per index) and count them: now visible."""
        if staged.n and batch in tx.cancelled:
            raise StoreError(
                f"batch {batch!r} was cancelled: nothing enqueued (give new messages another batch)"
            )
        parked = batch in tx.paused
        bprefix = batch.encode() + b"\0"
        routes = [route.encode() + b"\0" for route in staged.routes]
        ready: list[tuple[bytes, bytes]] = []
        sched: list[tuple[bytes, bytes]] = []
        for mid, due_ms, route, scheduled in _STAGED.iter_unpack(staged.buf):
            idkey = _U64.pack(mid)
            if scheduled:
                sched.append((_U64.pack(due_ms) + idkey, b""))
            else:
                ready.append(((bprefix if parked else routes[route]) + idkey, b""))
        txn = tx.txn
        txn.cursor(db=self._db["parked" if parked else "ready"]).putmulti(ready)
        txn.cursor(db=self._db["sched"]).putmulti(sched)
        for (kind, state), n in staged.counts.items():
            tx.deltas[(batch, kind, state)] = tx.deltas.get((batch, kind, state), 0) + n
        tx.bump(ZONE_DEFAULT, staged.zone_default)
        tx.bump(UNROUTABLE, staged.unroutable)
        bkey = batch.encode()
        info = self._c.batch.decode(txn.get(bkey, db=self._db["batches"]))
        info.loading_pid = 0
        info.total += staged.n
        info.created = info.created or now
        txn.put(bkey, self._c.enc.encode(info), db=self._db["batches"])

    def _abort_load(self, batch: str) -> None:
        """Remove what an unfinished load wrote: its messages have no index entries yet."""
        prefix = batch.encode() + b"\0"

        def abort(tx: _Tx) -> None:
            db, txn = self._db, tx.txn
            cur = txn.cursor(db=db["batchidx"])
            doomed = []
            if cur.set_range(prefix):
                for key, raw in cur:
                    if not key.startswith(prefix):
                        break
                    mid = _U64.unpack(raw)[0]
                    msg = tx.get(mid)
                    if msg is None or not self._published(txn, msg):
                        doomed.append((key, mid))
            for key, mid in doomed:
                msg = tx.get(mid)
                if msg is not None:
                    campaign.forget(tx, msg)  # its links and its number's contact
                txn.delete(key, db=db["batchidx"])
                txn.delete(_enc_id(mid), db=db["msgs"])
            raw = txn.get(batch.encode(), db=db["batches"])
            if raw is not None:
                info = self._c.batch.decode(raw)
                info.loading_pid = 0
                if info.total:
                    txn.put(batch.encode(), self._c.enc.encode(info), db=db["batches"])
                else:
                    txn.delete(batch.encode(), db=db["batches"])

        self._write(abort)

    def _published(self, txn: lmdb.Transaction, msg: r.Message) -> bool:
        """Whether a message is in its state's index (an unpublished load's are not)."""
        if msg.state not in (r.QUEUED, r.SCHEDULED):
            return True
        entry = _Tx(self, txn)._state_key(msg, _enc_id(msg.id))
        return entry is not None and txn.get(entry[0], db=entry[1]) is not None

    def screen(
        self,
        numbers: Sequence[str],
        kind: str,
        now: float,
        cap: tuple[int, float] | None = None,
    ) -> list[str]:
        """Why each number should not be messaged now: "dead", "stopped", "capped" or "".

        For producers that exclude before enqueueing (one read transaction per
        call): pruned and stop-listed numbers, and those over the kind's
        frequency cap, or over ``cap`` (max, period seconds) when given.
        """

        def read(txn: lmdb.Transaction) -> list[str]:
            out = []
            for number in numbers:
                reason = self._barred(txn, number, kind, now)
                if not reason and (cap or (self.cap_policy and self.cap_policy.capped(kind))):
                    raw = txn.get(number.encode(), db=self._db["numbers"])
                    sent = self._c.history.decode(raw).sent if raw else []
                    reason = "capped" if self._over_cap(kind, sent, now, cap) else ""
                out.append(reason)
            return out

        return self._read(read)

    def _over_cap(
        self, kind: str, sent: list[float], now: float, cap: tuple[int, float] | None
    ) -> bool:
        if cap is not None and sum(t > now - cap[1] for t in sent) >= cap[0]:
            return True
        policy = self.cap_policy
        return policy is not None and policy.next_allowed(kind, sent, now) > now

    # -- the engine's hot path ------------------------------------------------

    def _skip_reason(self, txn: lmdb.Transaction, msg: r.Message, now: float) -> str:
        """Why a due message must not go out: expired, a dead number, the stop list."""
        if msg.expires is not None and msg.expires <= now:
            return "expired"
        return self._barred(txn, msg.to, msg.kind, now)

    def _barred(self, txn: lmdb.Transaction, to: str, kind: str, now: float) -> str:
        """ "dead" (pruned, not expired), "stopped" (stop list, kind not exempt), or ""."""
        number = to.encode()
        raw = txn.get(number, db=self._db["dead"])
        if raw is not None and self._c.dead.decode(raw).expires > now:
            return "dead"
        if kind not in self.stop_exempt_kinds and txn.get(number, db=self._db["stop"]):
            return "stopped"
        return ""

    def claim(self, route: str, n: int, now: float) -> list[r.Message]:
        """The next ``n`` due messages of ``route``, in enqueue order, moved to inflight.

        A message past its ``expires``, to a pruned number, or to a stop-listed
        one (unless its kind is exempt) is skipped with that reason instead.
        """
        return self._write(lambda tx: self._claim(tx, route, n, now))

    def _claim(self, tx: _Tx, route: str, n: int, now: float) -> list[r.Message]:
        prefix = route.encode() + b"\0"
        cur = tx.txn.cursor(db=self._db["ready"])
        keys: list[bytes] = []
        if cur.set_range(prefix):
            for key in cur.iternext(values=False):
                if len(keys) >= n or not key.startswith(prefix):
                    break
                keys.append(key)
        out: list[r.Message] = []
        put, get, delete = tx.txn.put, tx.txn.get, tx.txn.delete
        msgs, ready, inflight = self._db["msgs"], self._db["ready"], self._db["inflight"]
        decode, encode = self._c.msg.decode, self._c.enc.encode
        dead, stopped = tx.barring()
        caps, owner = self.cap_policy, self.owner
        start = len(prefix)
        for key in keys:
            idkey = key[start:]
            msg = decode(get(idkey, db=msgs))
            if (msg.expires is not None and msg.expires <= now) or dead or stopped:
                reason = self._skip_reason(tx.txn, msg, now)
                if reason:
                    tx.move(msg, r.SKIPPED, now, reason=reason)
                    continue
            if caps is not None and caps.capped(msg.kind) and not self._within_cap(tx, msg, now):
                continue
            delete(key, db=ready)
            put(idkey, owner, db=inflight)
            tx.moved(msg, r.INFLIGHT)
            msg.state = r.INFLIGHT
            msg.updated = now
            put(idkey, encode(msg), db=msgs)
            out.append(msg)
        return out

    def promote(self, now: float) -> int:
        """Scheduled messages whose time has come go to the queue, in due order."""

        def promote(tx: _Tx) -> int:
            keys = _keys_before(tx.txn, self._db["sched"], _U64.pack(_ms(now) + 1), 10_000)
            for key in keys:
                msg = tx.get(_U64.unpack_from(key, 8)[0])
                if msg is not None:
                    tx.move(msg, r.QUEUED, now)
            return len(keys)

        return self._write(promote)

    def apply(self, ops: Sequence[r.Op]) -> list[r.Result]:
        """Many state changes in one transaction; a result per op, in order."""
        return self._write(lambda tx: [self._apply_one(tx, op) for op in ops])

    def _apply_one(self, tx: _Tx, op: r.Op) -> r.Result:
        refused = _bad_keys(op)
        if refused and not isinstance(op, r.MarkSent):
            return r.Result(False, refused, op.id)
        if isinstance(op, r.RecordReceipt):
            return self._receipt(tx, op)
        if isinstance(op, r.RecordMo):
            return self._mo(tx, op)
        msg = tx.get(op.id)
        if msg is None:
            return r.Result(False, f"no message {op.id}", op.id)
        if msg.state in r.FINAL:
            return r.Result(False, f"message {op.id} is already {msg.state}", op.id)
        match op:
            case r.MarkSent(at=at) if refused:  # never a bad key, never stranded in flight
                tx.move(msg, r.UNKNOWN, at, reason=refused)
                return r.Result(False, refused, op.id)
            case r.MarkSent(smsc_ids=ids, at=at, receipt=receipt, operator=operator):
                self._sent(tx, msg, ids, at, receipt, operator)
            case r.Requeue(due=due, reason=reason, retry=retry):
                state = r.QUEUED if due <= msg.updated or due <= 0 else r.SCHEDULED
                tx.move(
                    msg, state, msg.updated, due=due, reason=reason, attempts=msg.attempts + retry
                )
            case r.Reroute(route=route):
                tx.set_route(msg, route)
                tx.move(msg, r.QUEUED, msg.updated, reason="re-routed")
            case r.Schedule(due=due, reason=reason):
                tx.move(msg, r.SCHEDULED, msg.updated, due=due, reason=reason)
            case r.Fail(status=status, description=description, at=at):
                tx.move(msg, r.FAILED, at, status=status, reason=description)
            case r.Skip(reason=reason, at=at):
                tx.move(msg, r.SKIPPED, at, reason=reason)
            case r.MarkUnknown(reason=reason, at=at):
                tx.move(msg, r.UNKNOWN, at, reason=reason)
            case _:
                return r.Result(False, f"unknown operation {type(op).__name__}", op.id)
        return r.Result(True, "", op.id)

    def _sent(
        self, tx: _Tx, msg: r.Message, ids: list[str], at: float, receipt: bool, operator: str
    ) -> None:
        key = _U64.pack(msg.id)
        put, smsc = tx.txn.put, self._db["smsc"]
        for part, smsc_id in enumerate(ids):
            put(_smsc_key(operator, smsc_id), key + _PART[part & 0xFF], db=smsc)
        if msg.state != r.INFLIGHT:
            tx.move(
                msg,
                r.SENT,
                at,
                smsc_ids=ids,
                part_states=[""] * len(ids),
                receipt=receipt,
                operator=operator,
            )
            return
        tx.txn.delete(key, db=self._db["inflight"])
        if receipt:
            put(_U64.pack(_ms(at)) + key, b"", db=self._db["sent"])
        tx.moved(msg, r.SENT)
        msg.state = r.SENT
        msg.updated = at
        msg.smsc_ids = ids
        msg.part_states = [""] * len(ids)
        msg.receipt = receipt
        msg.operator = operator
        put(key, self._c.enc.encode(msg), db=self._db["msgs"])

    def _receipt(self, tx: _Tx, op: r.RecordReceipt) -> r.Result:
        found = self._find_smsc_id(tx, op.operator, op.candidates)
        if found is None and op.operator:  # sent before ids were kept per operator
            found = self._find_smsc_id(tx, "", op.candidates)
        if found is None:
            if not op.hold:
                tx.bump(b"unmatched", 1)
                key = _U64.pack(_ms(op.at)) + op.candidates[0].encode()
                entry = r.Unmatched(candidates=list(op.candidates), stat=op.stat, at=op.at)
                tx.txn.put(key, self._c.enc.encode(entry), db=self._db["unmatched"])
            return r.Result(False, "unmatched")
        mid, part = _U64.unpack_from(found)[0], found[8]
        msg = tx.get(mid)
        if msg is None or msg.state in r.FINAL or msg.state != r.SENT:
            return r.Result(False, "duplicate" if msg is not None else "purged", mid)
        if not op.final:
            msg.reason = f"receipt {op.stat}"
            tx.put(msg)
            return r.Result(True, "intermediate", mid)
        states = list(msg.part_states) or [""] * max(1, len(msg.smsc_ids))
        others = [s for i, s in enumerate(states) if s and i != part]
        if part < len(states):
            states[part] = op.state
        if op.state != r.DELIVERED and all(_severity(op.state) >= _severity(s) for s in others):
            msg.err, msg.network_error = op.err, op.network_error  # the worst part's codes
        if len(states) == 1:
            self._record_outcome(tx, msg, op)
            self._finish_sent(tx, msg, op.state, op.at, states)
        elif all(states):
            worst = max(states, key=_severity)
            if worst != op.state:  # one outcome per message, not per part: its worst part's
                op = msgspec.structs.replace(
                    op, state=worst, stat=_STAT[worst], err=msg.err, network_error=msg.network_error
                )
            self._record_outcome(tx, msg, op)
            self._finish_sent(tx, msg, worst, op.at, states)
        else:
            msg.part_states = states
            tx.put(msg)
        return r.Result(True, op.state, mid)

    def _find_smsc_id(self, tx: _Tx, operator: str, candidates: Sequence[str]) -> bytes | None:
        get, db = tx.txn.get, self._db["smsc"]
        for cand in candidates:
            found = get(_smsc_key(operator, cand), db=db)
            if found is not None:
                return found
        return None

    def _finish_sent(
        self, tx: _Tx, msg: r.Message, state: str, at: float, part_states: list[str]
    ) -> None:
        """A sent message's final state (from its receipts): out of "sent", into "final"."""
        key = _U64.pack(msg.id)
        txn, db = tx.txn, self._db
        if msg.receipt:
            txn.delete(_U64.pack(_ms(msg.updated)) + key, db=db["sent"])
        txn.put(_U64.pack(_ms(at)) + key, b"", db=db["final"])
        tx.moved(msg, state)
        msg.state = state
        msg.updated = at
        msg.part_states = part_states
        txn.put(key, self._c.enc.encode(msg), db=db["msgs"])

    def _within_cap(self, tx: _Tx, msg: r.Message, now: float) -> bool:
        """Count this send against the number's cap, or reschedule it (skip past expiry)."""
        policy = self.cap_policy
        if policy is None:
            return True
        history = self._history(tx, msg.to)
        sent = [t for t in history.sent if t > now - policy.longest]
        allowed = policy.next_allowed(msg.kind, sent, now)
        if allowed > now:
            if msg.expires is not None and allowed >= msg.expires:
                tx.move(msg, r.SKIPPED, now, reason="frequency cap")
            else:
                tx.move(msg, r.SCHEDULED, now, due=allowed, reason="frequency cap")
            return False
        history.sent = [*sent, now]
        self._put_history(tx, msg.to, history)
        return True

    def _record_outcome(self, tx: _Tx, msg: r.Message, op: r.RecordReceipt) -> None:
        """Failures are kept (the last ``history_limit``) for pruning; a delivery resets them.

        With a prune policy set, a history that proves the number dead marks it
        dead, with that history as the evidence, until the policy's ttl.
        """
        number = msg.to
        raw = tx.txn.get(number.encode(), db=self._db["numbers"])
        if op.state == r.DELIVERED and (raw is None or not self._c.history.decode(raw).outcomes):
            return
        history = self._c.history.decode(raw) if raw else r.NumberHistory()
        if op.state == r.DELIVERED:
            history.outcomes = []
        else:
            keep = self.history_limit - 1
            history.outcomes = [*history.outcomes[-keep:], r.Outcome(op.stat, op.err, op.at)]
        self._put_history(tx, number, history)
        policy = self.prune_policy
        if policy is not None and history.outcomes and policy.dead(history.outcomes, msg.route):
            entry = r.DeadEntry(at=op.at, expires=op.at + policy.ttl, evidence=history.outcomes)
            tx.txn.put(number.encode(), self._c.enc.encode(entry), db=self._db["dead"])
            tx.bump(b"pruned", 1)

    def _mo(self, tx: _Tx, op: r.RecordMo) -> r.Result:
        raw = tx.txn.get(b"mo_seq", db=self._db["meta"])
        n = (_U64.unpack(raw)[0] if raw else 0) + 1
        tx.txn.put(b"mo_seq", _U64.pack(n), db=self._db["meta"])
        step = campaign.on_mo(tx, op, self.reply_window)  # a reply to a campaign's step?
        mo = r.Mo(
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
        tx.txn.put(_enc_id(n), self._c.enc.encode(mo), db=self._db["mo"], append=True)
        if op.stop:
            self._stop(tx, op.source, f"MO {op.text!r}", op.at)
        return r.Result(True, "mo", n)

    def _history(self, tx: _Tx, number: str) -> r.NumberHistory:
        raw = tx.txn.get(number.encode(), db=self._db["numbers"])
        return self._c.history.decode(raw) if raw else r.NumberHistory()

    def _put_history(self, tx: _Tx, number: str, history: r.NumberHistory) -> None:
        tx.txn.put(number.encode(), self._c.enc.encode(history), db=self._db["numbers"])

    def expire_sent(self, sent_before: float, now: float, limit: int = 10_000) -> int:
        """Sent messages whose receipt never came within the timeout end as unknown."""

        def expire(tx: _Tx) -> int:
            keys = _keys_before(tx.txn, self._db["sent"], _U64.pack(_ms(sent_before)), limit)
            for key in keys:
                msg = tx.get(_U64.unpack_from(key, 8)[0])
                if msg is not None:
                    tx.move(msg, r.UNKNOWN, now, reason="no receipt within receipt_timeout")
            return len(keys)

        return self._write(expire)

    def purge(self, older_than: float, limit: int = 1000) -> int:
        """Retention: final messages older than ``older_than`` and their SMSC ids go.

        The (batch, id) index stays, so re-running an old job does not resend it.
        """

        def purge(tx: _Tx) -> int:
            end = _U64.pack(_ms(older_than))
            keys = _keys_before(tx.txn, self._db["final"], end, limit)
            for key in _keys_before(tx.txn, self._db["unmatched"], end, limit):
                tx.txn.delete(key, db=self._db["unmatched"])
            for key in keys:
                mid = _U64.unpack_from(key, 8)[0]
                msg = tx.get(mid)
                tx.txn.delete(key, db=self._db["final"])
                if msg is None:
                    continue
                for smsc_id in msg.smsc_ids:
                    tx.txn.delete(_smsc_key(msg.operator, smsc_id), db=self._db["smsc"])
                tx.txn.delete(_enc_id(mid), db=self._db["msgs"])
                tx.count(msg, msg.state, -1)
                tx.bump(b"purged", 1)
            return len(keys)

        return self._write(purge)

    def list_unmatched(self, last: int = 20) -> list[r.Unmatched]:
        """The most recent receipts that matched no message, newest first (for diagnosis)."""

        def read(txn: lmdb.Transaction) -> list[r.Unmatched]:
            cur = txn.cursor(db=self._db["unmatched"])
            out = []
            if cur.last():
                for _, raw in cur.iterprev():
                    out.append(self._c.unmatched.decode(raw))
                    if len(out) >= last:
                        break
            return out

        return self._read(read)

    # -- numbers: stop list, dead numbers ------------------------------------

    def _stop(self, tx: _Tx, number: str, reason: str, at: float) -> None:
        entry = r.StopEntry(reason=reason, at=at)
        tx.txn.put(number.encode(), self._c.enc.encode(entry), db=self._db["stop"])

    def stop(self, numbers: Iterable[str], reason: str, at: float) -> int:
        nums = list(numbers)

        def stop(tx: _Tx) -> None:
            for n in nums:
                self._stop(tx, n, reason, at)

        self._write(stop)
        return len(nums)

    def restore(self, numbers: Iterable[str]) -> int:
        nums = list(numbers)

        def restore(tx: _Tx) -> int:
            done = 0
            for n in nums:
                done += tx.txn.delete(n.encode(), db=self._db["stop"])
                done += tx.txn.delete(n.encode(), db=self._db["dead"])
            return done

        return self._write(restore)

    def is_stopped(self, number: str) -> bool:
        return self._read(lambda txn: txn.get(number.encode(), db=self._db["stop"]) is not None)

    def list_stopped(self) -> list[tuple[str, r.StopEntry]]:
        return self._read(
            lambda txn: [
                (k.decode(), self._c.stop.decode(v)) for k, v in txn.cursor(db=self._db["stop"])
            ]
        )

    def mark_dead(self, number: str, evidence: list[r.Outcome], at: float, ttl: float) -> None:
        entry = r.DeadEntry(at=at, expires=at + ttl, evidence=evidence)
        self._write(
            lambda tx: tx.txn.put(number.encode(), self._c.enc.encode(entry), db=self._db["dead"])
        )

    def list_dead(self) -> list[tuple[str, r.DeadEntry]]:
        return self._read(
            lambda txn: [
                (k.decode(), self._c.dead.decode(v)) for k, v in txn.cursor(db=self._db["dead"])
            ]
        )

    def list_mo(self) -> list[r.Mo]:
        return self._read(
            lambda txn: [self._c.mo.decode(v) for _, v in txn.cursor(db=self._db["mo"])]
        )

    def history(self, number: str) -> r.NumberHistory:
        raw = self._read(lambda txn: txn.get(number.encode(), db=self._db["numbers"]))
        return self._c.history.decode(raw) if raw else r.NumberHistory()

    # -- readers ---------------------------------------------------------------

    def get(self, msg_id: int) -> r.Message | None:
        raw = self._read(lambda txn: txn.get(_enc_id(msg_id), db=self._db["msgs"]))
        return None if raw is None else self._c.msg.decode(raw)

    def messages(self, batch: str | None = None) -> Iterator[r.Message]:
        """Every message (of a batch), in id order: for tests, exports and tools."""
        with self.env.begin() as txn:
            for _, raw in txn.cursor(db=self._db["msgs"]):
                msg = self._c.msg.decode(raw)
                if batch is None or msg.batch == batch:
                    yield msg

    def counts(self) -> r.Counts:
        def read(txn: lmdb.Transaction) -> r.Counts:
            states: dict[str, int] = dict.fromkeys(r.STATES, 0)
            kinds: dict[str, dict[str, int]] = {}
            unmatched = zone_default = unroutable = 0
            for key, raw in txn.cursor(db=self._db["counters"]):
                n = _U64.unpack(raw)[0]
                parts = key.split(b"\0")
                if parts[0] == b"s":
                    states[parts[1].decode()] = n
                elif parts[0] == b"k" and n:
                    kinds.setdefault(parts[1].decode(), {})[parts[2].decode()] = n
                elif key == b"unmatched":
                    unmatched = n
                elif key == ZONE_DEFAULT:
                    zone_default = n
                elif key == UNROUTABLE:
                    unroutable = n
            batches = {}
            for key, raw in txn.cursor(db=self._db["batches"]):
                info = self._c.batch.decode(raw)
                if not info.loading_pid:
                    batches[key.decode()] = dict(info.counts)
            return r.Counts(states, batches, kinds, unmatched, zone_default, unroutable)

        return self._read(read)

    def due_count(self, now: float) -> int:
        """Messages that could be sent now: queued, plus scheduled whose time has come."""

        def read(txn: lmdb.Transaction) -> int:
            ready = txn.stat(self._db["ready"])["entries"]
            return ready + len(_keys_before(txn, self._db["sched"], _U64.pack(_ms(now) + 1)))

        return self._read(read)

    def scheduled_by_hour(self, limit: int = 1_000_000) -> dict[int, int]:
        """Scheduled messages by due hour (epoch seconds of the hour's start)."""

        def read(txn: lmdb.Transaction) -> dict[int, int]:
            hours: dict[int, int] = {}
            for key in _keys_before(txn, self._db["sched"], b"\xff" * 8, limit):
                hour = _U64.unpack_from(key)[0] // 3_600_000 * 3600
                hours[hour] = hours.get(hour, 0) + 1
            return hours

        return self._read(read)

    def awaiting_receipts(self) -> int:
        """Sent messages still waiting for their final receipt."""
        return self._read(lambda txn: txn.stat(self._db["sent"])["entries"])

    def pause_batch(self, batch: str, paused: bool = True) -> int:
        """Hold a batch's queued messages out of claims (or let them go again).

        They stay ``queued`` (counts unchanged) but wait in the "parked" index,
        so claims never scan them; messages of the batch that become queued
        later (promoted, requeued) park too. Returns how many were moved.
        """

        def pause(tx: _Tx) -> int:
            if tx.txn.get(batch.encode(), db=self._db["batches"]) is None:
                raise StoreError(f"no batch {batch!r}")
            queued = self._queued_of(tx, batch, parked=not paused)
            for msg in queued:
                tx.unindex(msg)
            names = (tx.paused | {batch}) if paused else (tx.paused - {batch})
            tx.txn.put(b"paused", self._c.enc.encode(sorted(names)), db=self._db["meta"])
            tx._paused = frozenset(names)
            for msg in queued:
                tx.index(msg)
            return len(queued)

        return self._write(pause)

    def cancel_batch(self, batch: str, at: float) -> int:
        """End a batch: its queued and scheduled messages become ``cancelled``, in one
        transaction; returns how many. Safe while an engine runs: what it has in flight
        goes on (sent is sent), and whatever of the batch would be queued again (a
        throttled retry, a crash's recovery) is cancelled instead.
        """

        def cancel(tx: _Tx) -> int:
            bkey = batch.encode()
            raw = tx.txn.get(bkey, db=self._db["batches"])
            if raw is None or self._c.batch.decode(raw).loading_pid:
                raise StoreError(f"no batch {batch!r}")
            names = tx.cancelled | {batch}
            tx.txn.put(b"cancelled", self._c.enc.encode(sorted(names)), db=self._db["meta"])
            tx._cancelled = frozenset(names)
            n = 0
            for msg in self._pending_of(tx, batch):
                tx.move(msg, r.CANCELLED, at, reason="batch cancelled")
                n += 1
            info = self._c.batch.decode(tx.txn.get(bkey, db=self._db["batches"]))
            info.cancelled = info.cancelled or at
            tx.txn.put(bkey, self._c.enc.encode(info), db=self._db["batches"])
            return n

        return self._write(cancel)

    def _pending_of(self, tx: _Tx, batch: str) -> list[r.Message]:
        """A batch's queued and scheduled messages, via its (batch, id) index."""
        prefix = batch.encode() + b"\0"
        cur = tx.txn.cursor(db=self._db["batchidx"])
        out = []
        if cur.set_range(prefix):
            for key, value in cur:
                if not key.startswith(prefix):
                    break
                msg = tx.get(_U64.unpack(value)[0])
                if msg is not None and msg.state in (r.QUEUED, r.SCHEDULED):
                    out.append(msg)
        return out

    # -- routes: chosen by the running engine's config -------------------------

    def routing_table(self) -> str:
        """The fingerprint of the routing table the queue was last routed with."""
        raw = self._read(lambda txn: txn.get(b"routing", db=self._db["meta"]))
        return raw.decode() if raw else ""

    def ready_routes(self) -> list[str]:
        """The routes with queued messages (paused batches' excepted): one seek per route."""

        def read(txn: lmdb.Transaction) -> list[str]:
            out = []
            cur = txn.cursor(db=self._db["ready"])
            more = cur.first()
            while more:
                route = cur.key()[:-9]  # route NUL id(8)
                out.append(route.decode())
                more = cur.set_range(route + b"\x01")
            return out

        return self._read(read)

    def ready_count(self, route: str) -> int:
        """How many messages are queued on ``route``."""
        return self._read(lambda txn: len(self._waiting_ids(txn, [route])))

    def reroute(
        self, route_of: Callable[[str], str], table: str = "", routes: Iterable[str] | None = None
    ) -> tuple[int, int]:
        """Route again what waits (queued, scheduled, parked), with ``route_of(number)``:
        every such message, or only the queued ones of ``routes``. With ``table``
        (the routing table's fingerprint), remembered once every message is done.
        Returns (moved, left unroutable), in transactions of REROUTE_CHUNK messages.
        """
        ids = self._read(lambda txn: self._waiting_ids(txn, routes))
        moved = unroutable = 0
        for chunk in _chunks(ids, REROUTE_CHUNK):
            m, u = self._write(functools.partial(self._reroute, ids=chunk, route_of=route_of))
            moved, unroutable = moved + m, unroutable + u
        if table:
            self._write(lambda tx: tx.txn.put(b"routing", table.encode(), db=self._db["meta"]))
        return moved, unroutable

    def _waiting_ids(self, txn: lmdb.Transaction, routes: Iterable[str] | None) -> list[int]:
        db = self._db
        if routes is not None:
            ids = []
            for route in routes:
                prefix = route.encode() + b"\0"
                cur = txn.cursor(db=db["ready"])
                if cur.set_range(prefix):
                    for key in cur.iternext(values=False):
                        if not key.startswith(prefix):
                            break
                        ids.append(_U64.unpack_from(key, len(key) - 8)[0])
            return ids
        ready = [
            _U64.unpack_from(k, len(k) - 8)[0]
            for k in txn.cursor(db=db["ready"]).iternext(values=False)
        ]
        parked = [
            _U64.unpack_from(k, len(k) - 8)[0]
            for k in txn.cursor(db=db["parked"]).iternext(values=False)
        ]
        sched = [
            _U64.unpack_from(k, 8)[0] for k in txn.cursor(db=db["sched"]).iternext(values=False)
        ]
        return ready + parked + sched

    def _reroute(self, tx: _Tx, ids: list[int], route_of: Callable[[str], str]) -> tuple[int, int]:
        moved = unroutable = 0
        for mid in ids:
            msg = tx.get(mid)
            if msg is None or msg.state not in (r.QUEUED, r.SCHEDULED):
                continue
            route = route_of(msg.to)
            unroutable += route == r.UNROUTED
            if route == msg.route:
                continue
            key = _U64.pack(mid)
            tx.unindex(msg, key)
            tx.set_route(msg, route)
            tx.index(msg, key)
            tx.put(msg)
            moved += 1
        return moved, unroutable

    def _queued_of(self, tx: _Tx, batch: str, parked: bool) -> list[r.Message]:
        """A batch's queued messages: from "parked" (a paused batch) or via its index."""
        prefix = batch.encode() + b"\0"
        db = self._db["parked"] if parked else self._db["batchidx"]
        cur = tx.txn.cursor(db=db)
        out = []
        if cur.set_range(prefix):
            for key, value in cur:
                if not key.startswith(prefix):
                    break
                mid = _U64.unpack_from(key, len(prefix))[0] if parked else _U64.unpack(value)[0]
                msg = tx.get(mid)
                if msg is not None and msg.state == r.QUEUED:
                    out.append(msg)
        return out

    def paused_batches(self) -> list[str]:
        raw = self._read(lambda txn: txn.get(b"paused", db=self._db["meta"]))
        return sorted(msgspec.msgpack.decode(raw)) if raw else []

    def number_counts(self) -> tuple[int, int]:
        """(dead, stopped): how many numbers are pruned and how many stop-listed."""

        def read(txn: lmdb.Transaction) -> tuple[int, int]:
            stat = txn.stat
            return stat(self._db["dead"])["entries"], stat(self._db["stop"])["entries"]

        return self._read(read)

    def batch_progress(self, batch: str) -> dict[str, int]:
        raw = self._read(lambda txn: txn.get(batch.encode(), db=self._db["batches"]))
        return dict(self._c.batch.decode(raw).counts) if raw else {}

    # -- campaigns: links, clicks, replies, memory (engine/store/campaign.py) -------

    def resolve_link(self, code: str) -> r.LinkTarget | None:
        """Where a short link's code leads (one read), or None."""
        return self._read(lambda txn: campaign.resolve(txn, self._db, code))

    def record_clicks(self, clicks: Sequence[r.ClickIn]) -> int:
        """Clicks, in one write transaction (a group commit); how many were kept."""
        return self._write(lambda tx: campaign.record_clicks(tx, clicks))

    def engagement(self, msg_id: int, limit: int = 100) -> tuple[r.Engagement, list[r.Click]]:
        """What came back from one message: its counters and its clicks (oldest first)."""

        def read(txn: lmdb.Transaction) -> tuple[r.Engagement, list[r.Click]]:
            eng = campaign.engagement(txn, self._db, msg_id) or r.Engagement()
            return eng, campaign.clicks_of(txn, self._db, msg_id, limit)

        return self._read(read)

    def step_stats(self, batches: Iterable[str] | None = None) -> dict[str, r.StepStats]:
        """Clicks, clickers, replies and opt-outs per batch (every batch with any, if None)."""

        def read(txn: lmdb.Transaction) -> dict[str, r.StepStats]:
            if batches is not None:
                return {b: campaign.step_stats(txn, self._db, b) for b in batches}
            names = [k.decode() for k, _ in txn.cursor(db=self._db["steps"]) if k[:1] != b"\0"]
            return {b: campaign.step_stats(txn, self._db, b) for b in names}

        return self._read(read)

    def batch_infos(self, campaign_name: str | None = None) -> dict[str, r.BatchInfo]:
        """The published batches (of one campaign), by id."""

        def read(txn: lmdb.Transaction) -> dict[str, r.BatchInfo]:
            out = {}
            for key, raw in txn.cursor(db=self._db["batches"]):
                info = self._c.batch.decode(raw)
                wanted = campaign_name is None or info.campaign == campaign_name
                if wanted and not info.loading_pid:
                    out[key.decode()] = info
            return out

        return self._read(read)

    def contacts(self, number: str) -> list[int]:
        """The ids of the campaign steps' messages to ``number``, oldest first."""
        return self._read(lambda txn: campaign.contacts(txn, self._db, number))

    def memory(self, numbers: Sequence[str], campaign_name: str) -> dict[str, dict[str, r.Memory]]:
        """Per number, per segment of ``campaign_name``: what its earlier steps did
        (sent, delivered, clicked, replied, when); numbers it never reached are left out."""
        segments = {b: i.segment for b, i in self.batch_infos(campaign_name).items()}

        def read(txn: lmdb.Transaction) -> dict[str, dict[str, r.Memory]]:
            msgs, decode = self._db["msgs"], self._c.msg.decode

            def message(msg_id: int) -> r.Message | None:
                raw = txn.get(_enc_id(msg_id), db=msgs)
                return None if raw is None else decode(raw)

            return campaign.memory(txn, self._db, numbers, segments, message)

        return self._read(read) if segments else {}

    # -- lookups for the operations interface (volley message, serve) ------------

    def find(self, batch: str, ext_id: str) -> r.Message | None:
        """The message the upstream calls ``ext_id`` in ``batch`` (its batch index entry)."""

        def read(txn: lmdb.Transaction) -> r.Message | None:
            key = txn.get(batch.encode() + b"\0" + ext_id.encode(), db=self._db["batchidx"])
            raw = None if key is None else txn.get(key, db=self._db["msgs"])
            return None if raw is None else self._c.msg.decode(raw)

        return self._read(read)

    def queue_heads(self) -> dict[str, float]:
        """Route → since when the next message to be claimed on it has been due (epoch s)."""

        def read(txn: lmdb.Transaction) -> dict[str, float]:
            heads: dict[str, float] = {}
            cur = txn.cursor(db=self._db["ready"])
            found = cur.first()
            while found:
                key = cur.key()
                route = key[: key.index(b"\0")]
                raw = txn.get(key[len(route) + 1 :], db=self._db["msgs"])
                if raw is not None:
                    msg = self._c.msg.decode(raw)
                    heads[route.decode()] = max(msg.created, msg.due)
                found = cur.set_range(route + b"\x01")
            return heads

        return self._read(read)


MAX_KEY = 511  # LMDB's default maximum key size, in octets


def _bad_keys(op: r.Op) -> str:
    """Why an operation's keys cannot go into LMDB ("" when they can): checked before any
    write, so one bad operation is refused alone and never aborts a group commit."""
    keys: Sequence[str]
    if isinstance(op, r.MarkSent):
        room = MAX_KEY - len(_smsc_key(op.operator, ""))
        keys, what = op.smsc_ids, "SMSC message id"
    elif isinstance(op, r.RecordReceipt):
        room = MAX_KEY - max(8, len(_smsc_key(op.operator, "")))  # unmatched: time(8) + id
        keys, what = op.candidates, "receipt id"
        if not keys:
            return "receipt without an id"
    elif isinstance(op, r.RecordMo) and op.stop:
        keys, room, what = (op.source,), MAX_KEY, "number"
    else:
        return ""
    for key in keys:
        size = len(key.encode())
        if not 0 < size <= room:
            return f"{what} {key[:40]!r}: {size} octets, expected 1 to {room}"
    return ""


def _smsc_key(operator: str, smsc_id: str) -> bytes:
    """SMSC ids are unique per SMSC only: the index is keyed by operator and id."""
    return (operator + "\0" + smsc_id).encode() if operator else smsc_id.encode()


def _keys_before(txn: lmdb.Transaction, db: Any, end: bytes, limit: int = 1 << 62) -> list[bytes]:
    """Keys of a time-ordered index from its start up to ``end`` (excluded), at most ``limit``."""
    keys: list[bytes] = []
    cur = txn.cursor(db=db)
    if cur.first():
        for key in cur.iternext(values=False):
            if key >= end or len(keys) >= limit:
                break
            keys.append(key)
    return keys


_STAGED = struct.Struct(">QQH?")  # id, due in ms, route number, scheduled


class _Staged:
    """What a load wrote, packed (21 bytes a message), for its publishing transaction."""

    def __init__(self, routes: dict[str, int] | None = None) -> None:
        self.buf = bytearray()
        self.routes: dict[str, int] = {} if routes is None else routes
        self.counts: dict[tuple[str, str], int] = {}
        self.n = self.scheduled = self.zone_default = self.unroutable = 0
        self.first = 0  # the first id this load took: an id repeated from then on is in it

    def add(self, msg: r.Message) -> None:
        route = self.routes.setdefault(msg.route, len(self.routes))
        scheduled = msg.state == r.SCHEDULED
        self.buf += _STAGED.pack(msg.id, _ms(msg.due), route, scheduled)
        key = (msg.kind, msg.state)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.n += 1
        self.scheduled += scheduled
        self.zone_default += msg.zone_default
        self.unroutable += msg.route == r.UNROUTED

    def merge(self, other: _Staged) -> None:
        self.buf += other.buf
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.n += other.n
        self.scheduled += other.scheduled
        self.zone_default += other.zone_default
        self.unroutable += other.unroutable


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
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


def _tighten(path: Path) -> None:
    """The store readable by its owner only: directory 0700, files 0600 (if they are ours)."""
    if not path.is_dir() or path.stat().st_uid != os.geteuid():
        return
    path.chmod(0o700)
    for name in ("data.mdb", "lock.mdb", "volley.lock"):
        f = path / name
        if f.exists() and f.stat().st_uid == os.geteuid():
            f.chmod(0o600)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
