"""The durable queue: the Store, its transactions, and the operations it offers.

A message is an immutable body and a small status record (engine/store/layout.py
has the databases and the record's bytes). Every state change is one write
transaction that moves messages between indexes and adjusts the counters in
the same commit, so counters always equal what they count (:meth:`Store.check`
proves it). The engine batches many changes into one transaction
(:meth:`Store.apply`, :meth:`Store.claim`) from one thread; readers in other
processes use read-only transactions and never block the writer.

The work is split by concern: enqueue.py (loads), flow.py (claim, promote, the
moves of a claimed message), receipts.py (sent, receipts, inbound messages),
sweeps.py (receipt timeout, retention), numbers.py (stop list, dead numbers,
failures, caps), batches.py (pause, cancel, re-route), readers.py, recovery.py,
check.py. Each takes the store and, for writes, the transaction (tx.py). The
read-only queries are methods of queries.py's mixin, which the Store inherits.

Campaigns (engine/store/campaign.py: links, clicks, contacts, engagement) are
called from the store's own transactions, so what they write commits or aborts
with the message: ``campaign.on_enqueue`` for each message a load writes (in the
chunk's transaction, before its body is built: a link code drawn again changes
the text), ``campaign.forget`` for each message an unfinished load loses, and
``campaign.on_mo`` for each inbound message (a reply or an opt-out attributed to
the campaign step it answers). Their databases are in ``layout.NAMES``; they
read messages through ``tx.get(id)`` (a Message view, effective state included).
Another store module would do the same, writing through :meth:`Store._write`.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import lmdb

from engine.store import batches, enqueue, flow, hotpath, numbers, readers, recovery, sweeps
from engine.store import campaign as camp
from engine.store import layout as L
from engine.store import outbox as ob
from engine.store import records as r
from engine.store.enqueue import check_batch_id
from engine.store.errors import StoreError
from engine.store.lock import StoreLock
from engine.store.queries import Queries
from engine.store.tx import Names, Tx

__all__ = ["LOAD_CHUNK", "Store", "check_batch_id"]
T = TypeVar("T")
LOAD_CHUNK = 50_000  # messages per enqueue transaction (kept here: tests shrink it)


class CapPolicy(Protocol):
    """What the store needs of frequency caps (engine/sched/caps.py has one)."""

    longest: float

    def capped(self, kind: str) -> bool: ...

    def next_allowed(self, kind: str, sent: Sequence[float], now: float) -> float: ...


class PrunePolicy(Protocol):
    """What the store needs of a dead-number policy (engine/sched/prune.py has one)."""

    ttl: float

    def dead(self, outcomes: Sequence[r.Outcome], route: str) -> bool: ...


class Store(Queries):
    def __init__(self, env: lmdb.Environment, path: Path, readonly: bool, max_map: int) -> None:
        self.env = env
        self.path = path
        self.readonly = readonly
        self._max_map = max_map
        self.coders = L.Coders()
        self.names = Names()
        self.prune_policy: PrunePolicy | None = None
        self.cap_policy: CapPolicy | None = None
        self.stop_exempt_kinds: frozenset[str] = frozenset()
        self.history_limit = 20
        self.on_crash_inflight = "resend"
        self.recovered = 0
        self.owner = b""  # tags this process's claim sets (one per engine process)
        self.reply_window = 7 * 86400.0  # an MO this soon after a campaign step answers it
        # the events [webhooks] asks for ("receipt", "mo", "final"): written to the outbox
        # in the transaction of the change (engine/store/outbox.py); empty: nothing is
        self.webhooks: frozenset[str] = frozenset()
        # the other writings of an SMSC id (hex <-> decimal) a receipt may use: the engine's
        self.id_forms: Callable[[str, str], tuple[str, ...]] | None = None
        # the routing table's fingerprint the producers of this process route with
        self.routing_hint = ""
        # in memory: what this store has in flight, by id, and its claim sets by seq
        self._live: dict[int, L.Live] = {}
        self._sets: dict[int, list[int]] = {}  # seq -> [ids still in flight, claim_ms, epoch]
        self._lock = threading.Lock()
        create = not readonly
        self.db = {name: env.open_db(name.encode(), create=create) for name in L.NAMES}

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
                max_dbs=len(L.NAMES) + L.SPARE_DBS,
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
        _check_schema(env, p, readonly)
        try:
            store = cls(env, p, readonly, max_map_size)
        except lmdb.Error as exc:
            env.close()
            raise StoreError(f"{p}: not a Volley store or from another version: {exc}") from None
        store.on_crash_inflight = on_crash_inflight
        store.prune_policy = prune_policy
        store.cap_policy = cap_policy
        store.history_limit = history_limit
        store.stop_exempt_kinds = stop_exempt_kinds
        if not readonly:
            enqueue.drop_unfinished_loads(store)
        return store

    def close(self) -> None:
        self.env.close()

    # -- transactions --------------------------------------------------------

    def _write(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn(tx)`` in one write transaction; grow the map and replay on MapFullError.

        What ``fn`` changed in the store's memory is undone if the transaction aborts."""
        if self.readonly:
            raise StoreError("the store is open read-only")
        with self._lock:
            while True:
                tx: Tx | None = None
                try:
                    with self.env.begin(write=True) as txn:
                        tx = Tx(self, txn)
                        result = fn(tx)
                        tx.finish()
                except lmdb.MapFullError:
                    if tx is not None:
                        tx.undo()
                    self._grow()
                    continue
                except lmdb.DiskError as exc:
                    if tx is not None:
                        tx.undo()
                    raise StoreError(
                        f"{self.path}: disk error, nothing was written: {exc}"
                    ) from None
                except BaseException:
                    if tx is not None:
                        tx.undo()
                    raise
                tx.committed()
                return result

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

    def _query(self, fn: Callable[[Store, lmdb.Transaction], T]) -> T:
        return self._read(lambda txn: fn(self, txn))

    # -- producer ----------------------------------------------------------------

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
        step = enqueue.Step(campaign, segment)
        return enqueue.enqueue(self, batch, messages, now, progress, drop_dead, LOAD_CHUNK, step)

    # -- the engine's hot path ------------------------------------------------

    def claim(self, route: str, n: int, now: float) -> list[r.Claimed]:
        """The next ``n`` due messages of ``route``, in enqueue order, now in flight.

        A message past its ``expires``, to a pruned number, or to a stop-listed
        one (unless its kind is exempt) is skipped with that reason instead; one
        over its number's frequency cap is scheduled for when the cap allows.
        """
        return self._write(lambda tx: flow.claim(self, tx, route, n, now))

    def promote(self, now: float) -> int:
        """Scheduled messages whose time has come go to the queue, in due order."""
        return self._write(lambda tx: flow.promote(self, tx, now))

    def apply(self, ops: Sequence[r.Op]) -> list[r.Result]:
        """Many state changes in one transaction; a result per op, in order."""
        return self._write(lambda tx: hotpath.apply(self, tx, ops))

    def expire_sent(self, sent_before: float, now: float, limit: int = 10_000) -> int:
        """Sent messages whose receipt never came within the timeout end as unknown (at
        most ``limit``; every message sent before ``sent_before`` is looked at, in
        transactions of sweeps.SWEEP_CHUNK). Returns how many ended."""
        total = 0
        while total < limit:
            sweep = functools.partial(sweeps.expire_sent, self, sent_before=sent_before,
                                      now=now, limit=limit - total)  # fmt: skip
            moved, more = self._write(sweep)
            total += moved
            if not more:
                break
        return total

    def purge(self, older_than: float, limit: int = 1000) -> int:
        """Retention: final messages older than ``older_than`` and their SMSC ids go.

        The (batch, id) index stays, so re-running an old job does not resend it.
        """
        return self._write(lambda tx: sweeps.purge(self, tx, older_than, limit))

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
        return self._write(lambda tx: recovery.recover(self, tx, owner))

    # -- batches and routes ----------------------------------------------------------

    def pause_batch(self, batch: str, paused: bool = True) -> int:
        """Hold a batch's queued messages out of claims (or let them go again).

        They stay ``queued`` (counts unchanged) but wait in the "parked" index,
        so claims never scan them; messages of the batch that become queued
        later (promoted, requeued) park too. Returns how many were moved.
        """
        return self._write(lambda tx: batches.pause(self, tx, batch, paused))

    def cancel_batch(self, batch: str, at: float) -> int:
        """End a batch: its queued and scheduled messages become ``cancelled``, in one
        transaction; returns how many. Safe while an engine runs: what it has in flight
        goes on (sent is sent), and whatever of the batch would be queued again (a
        throttled retry, a crash's recovery) is cancelled instead.
        """
        return self._write(lambda tx: batches.cancel(self, tx, batch, at))

    def reroute(
        self, route_of: Callable[[str], str], table: str = "", routes: Iterable[str] | None = None
    ) -> tuple[int, int]:
        """Route again what waits (queued, scheduled, parked), with ``route_of(number)``:
        every such message, or only the queued ones of ``routes``. With ``table``
        (the routing table's fingerprint), remembered once every message is done.
        Returns (moved, left unroutable), in transactions of REROUTE_CHUNK messages.
        """
        return batches.reroute(self, route_of, table, routes)

    # -- numbers -----------------------------------------------------------------------

    def stop(self, numbers_: Iterable[str], reason: str, at: float) -> int:
        nums = list(numbers_)

        def stop(tx: Tx) -> None:
            for n in nums:
                numbers.stop(self, tx, n, reason, at)

        self._write(stop)
        return len(nums)

    def restore(self, numbers_: Iterable[str]) -> int:
        """Take numbers off the stop list and the dead list; how many entries went."""
        nums = list(numbers_)
        return self._write(lambda tx: sum(numbers.restore(self, tx, n) for n in nums))

    def mark_dead(self, number: str, evidence: list[r.Outcome], at: float, ttl: float) -> None:
        self._write(lambda tx: numbers.mark_dead(self, tx, number, evidence, at, ttl))

    # -- campaigns' clicks (campaign.py) and the webhooks' outbox (outbox.py) ---------

    def record_clicks(self, clicks: Sequence[r.ClickIn]) -> int:
        """Clicks, in one write transaction (a group commit); how many were kept."""
        return self._write(lambda tx: camp.record_clicks(tx, clicks))

    def acknowledge(self, done: dict[int, list[int]], dead: Sequence[ob.Dead] = ()) -> None:
        """Events delivered (seq -> indexes) or dead-lettered: out of the outbox, in one
        write transaction."""
        self._write(lambda tx: ob.acknowledge(tx, done, list(dead)))

    def forget_dead_letters(self, keys: Sequence[tuple[int, int]]) -> int:
        """Dead letters delivered by a replay: gone from the list and the count."""
        return self._write(lambda tx: ob.forget_dead(tx, keys))

    # -- readers (the one-transaction queries are in queries.py) -----------------------

    def messages(self, batch: str | None = None) -> Iterator[r.Message]:
        """Every message (of a batch), in id order: for tests, exports and tools."""
        return readers.messages(self, batch)

    @property
    def in_flight(self) -> int:
        """How many messages this store object has in flight (its own claims)."""
        return len(self._live)


def _check_schema(env: lmdb.Environment, path: Path, readonly: bool) -> None:
    """Before any database is opened: a store of another schema is refused untouched."""
    try:
        with env.begin() as txn:
            raw = txn.get(b"schema", db=env.open_db(b"meta", txn=txn, create=False))
    except lmdb.NotFoundError:
        raw = None
    if raw is None and not readonly:
        with env.begin(write=True) as txn:
            txn.put(b"schema", str(L.SCHEMA).encode(), db=env.open_db(b"meta", txn=txn))
        return
    if raw is None or not raw.isdigit() or int(raw) != L.SCHEMA:
        found = "none" if raw is None else bytes(raw).decode(errors="replace")
        env.close()
        raise StoreError(
            f"{path}: written with store schema {found}, this Volley reads schema "
            f"{L.SCHEMA}; use the Volley version that wrote it, or a new store path"
        )


def _tighten(path: Path) -> None:
    """The store readable by its owner only: directory 0700, files 0600 (if they are ours)."""
    if not path.is_dir() or path.stat().st_uid != os.geteuid():
        return
    path.chmod(0o700)
    for name in ("data.mdb", "lock.mdb", "volley.lock"):
        f = path / name
        if f.exists() and f.stat().st_uid == os.geteuid():
            f.chmod(0o600)
