"""One write transaction: counted moves, where messages wait, the per-commit sets.

A :class:`Tx` is what every write of the store runs in (``Store._write(fn)``
calls ``fn(tx)``; other store modules, such as engine/store/campaign.py, use the
same runner and ``tx.txn`` / ``tx.db``). Moves are counted per transaction and
written to the counters once, at :meth:`Tx.finish`; the ids that reached
``sent`` or a final state are written as one set per millisecond; claim sets
whose last id left flight are deleted. What the store keeps in memory of its
claims changes only once the transaction has committed (:meth:`Tx.committed`),
and is put back as it was if it aborts (:meth:`Tx.undo`).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import lmdb
import msgspec

from engine.store import layout as L
from engine.store import outbox, readers
from engine.store import records as r
from engine.store.errors import StoreError

if TYPE_CHECKING:
    from engine.store.store import Store

SET_CHUNK = 4096  # ids per sent/final set entry
_UNKNOWN = L.CODE[r.UNKNOWN]
_WAITS = frozenset({L.QUEUED, L.SCHEDULED})  # back to wait: a requeue, a retry, a schedule
_AWAY = frozenset({L.INFLIGHT, L.SENT})
_KIND_BATCH = struct.Struct("<HI")

BATCH, KIND, ROUTE, OPERATOR = L.BATCH, L.KIND, L.ROUTE, L.OPERATOR
_LIMIT = {BATCH: 2**32 - 1, KIND: 2**16 - 1, ROUTE: 2**16 - 1, OPERATOR: 2**16 - 1}
_WHAT = {BATCH: "batches", KIND: "kinds", ROUTE: "routes", OPERATOR: "operators"}


class Names:
    """Batches, kinds, routes and operators as the small ints of status records.

    ``names``: ``n`` cat name -> id(4), ``i`` cat id(4) -> name, ``c`` cat -> the last id.
    "" is 0 in every category (a message no operator routes, no operator yet). What
    other writers added is read from the database on first sight and cached."""

    def __init__(self) -> None:
        self.ids: dict[bytes, dict[str, int]] = {c: {"": 0} for c in _LIMIT}
        self.names: dict[bytes, dict[int, str]] = {c: {0: ""} for c in _LIMIT}

    def id_of(self, txn: lmdb.Transaction, db: Any, cat: bytes, name: str) -> int | None:
        known = self.ids[cat].get(name)
        if known is not None:
            return known
        raw = txn.get(b"n" + cat + name.encode(), db=db)
        if raw is None:
            return None
        return self._learn(cat, name, L.U32.unpack(raw)[0])

    def name_of(self, txn: lmdb.Transaction, db: Any, cat: bytes, i: int) -> str:
        known = self.names[cat].get(i)
        if known is not None:
            return known
        raw = txn.get(b"i" + cat + L.U32.pack(i), db=db)
        if raw is None:
            raise StoreError(f"the store names no {_WHAT[cat][:-1]} {i}: a damaged store?")
        name = bytes(raw).decode()
        self._learn(cat, name, i)
        return name

    def _learn(self, cat: bytes, name: str, i: int) -> int:
        self.ids[cat][name] = i
        self.names[cat][i] = name
        return i


class Tx:
    def __init__(self, store: Store, txn: lmdb.Transaction) -> None:
        self.s = store
        self.txn = txn
        self.db = store.db
        self.moves: dict[tuple[int, int, int, int], int] = {}  # (batch, kind, from, to)
        self.raw_moves: dict[tuple[bytes, int, int], int] = {}  # (kind+batch bytes, from, to)
        self.deltas: dict[tuple[int, int, int], int] = {}  # (batch, kind, state)
        self.bumps: dict[bytes, int] = {}
        self.sent: dict[int, list[bytes]] = {}  # ms -> ids now awaiting a receipt
        self.final: dict[int, list[bytes]] = {}  # ms -> ids now final
        self.new_names: dict[tuple[bytes, str], int] = {}
        self.new_sets: dict[int, list[int]] = {}  # claim seq -> [in flight, claim_ms, epoch]
        self.added: list[int] = []  # ids this transaction claimed
        self.dropped_sets: list[int] = []  # claim sets recovery deleted
        self.left: list[int] = []  # ids it moved out of flight, and what the store
        self.left_entries: list[L.Live] = []  # remembered of them (for undo)
        self.gone: dict[int, int] = {}  # claim seq -> how many of its ids left flight
        self._seq: list[int] = []  # [next, first] once read
        self._paused: frozenset[str] | None = None
        self._cancelled: frozenset[str] | None = None
        self._epoch: list[int] = []  # [value, as read]
        self._numbers: bool | None = None
        self.receipt_events: list[outbox.Receipt] = []  # for the webhooks' outbox (outbox.py)
        self.mo_events: list[tuple[int, float]] = []

    # -- names ------------------------------------------------------------------

    def id_of(self, cat: bytes, name: str) -> int:
        """``name``'s id in ``cat``, given one in this transaction if it has none yet."""
        names = self.s.names
        known = names.ids[cat].get(name)
        if known is not None:
            return known
        pending = self.new_names.get((cat, name))
        if pending is not None:
            return pending
        db = self.db["names"]
        found = names.id_of(self.txn, db, cat, name)
        if found is not None:
            return found
        raw = self.txn.get(b"c" + cat, db=db)
        i = (L.U32.unpack(raw)[0] if raw else 0) + 1
        if i > _LIMIT[cat]:
            raise StoreError(f"the store holds {_LIMIT[cat]:,} {_WHAT[cat]}, its most")
        put = self.txn.put
        put(b"c" + cat, L.U32.pack(i), db=db)
        put(b"n" + cat + name.encode(), L.U32.pack(i), db=db)
        put(b"i" + cat + L.U32.pack(i), name.encode(), db=db)
        self.new_names[(cat, name)] = i
        return i

    def name_of(self, cat: bytes, i: int) -> str:
        known = self.s.names.names[cat].get(i)
        if known is not None:
            return known
        for (c, name), j in self.new_names.items():
            if c == cat and j == i:
                return name
        return self.s.names.name_of(self.txn, self.db["names"], cat, i)

    def get(self, msg_id: int) -> r.Message | None:
        """One message as the upstream sees it (for campaign.py, in this transaction)."""
        return readers.get(self.s, self.txn, msg_id, self.name_of)

    # -- what the store holds for the whole transaction -----------------------------

    @property
    def paused(self) -> frozenset[str]:
        """Paused batches: their queued messages wait in "parked", not in "ready"."""
        if self._paused is None:
            raw = self.txn.get(b"paused", db=self.db["meta"])
            self._paused = frozenset(msgspec.msgpack.decode(raw)) if raw else frozenset()
        return self._paused

    def set_paused(self, names: frozenset[str]) -> None:
        self.txn.put(b"paused", msgspec.msgpack.encode(sorted(names)), db=self.db["meta"])
        self._paused = names

    @property
    def cancelled(self) -> frozenset[str]:
        """Cancelled batches: none of their messages is ever queued again."""
        if self._cancelled is None:
            raw = self.txn.get(b"cancelled", db=self.db["meta"])
            self._cancelled = frozenset(msgspec.msgpack.decode(raw)) if raw else frozenset()
        return self._cancelled

    def set_cancelled(self, names: frozenset[str]) -> None:
        self.txn.put(b"cancelled", msgspec.msgpack.encode(sorted(names)), db=self.db["meta"])
        self._cancelled = names

    def any_numbers(self) -> bool:
        """Whether any number has a record (stop, dead, failures, cap sends): read once."""
        if self._numbers is None:
            self._numbers = self.txn.stat(self.db["numbers"])["entries"] > 0
        return self._numbers

    def numbers_changed(self) -> None:
        self._numbers = None

    @property
    def epoch(self) -> int:
        """How many times a number went from no failures on record to some (ever)."""
        if not self._epoch:
            raw = self.txn.get(L.EPOCH_KEY, db=self.db["counters"])
            value = L.U64.unpack(raw)[0] if raw else 0
            self._epoch = [value, value]
        return self._epoch[0]

    def troubled(self) -> None:
        """A number now has failures on record: later deliveries must look at numbers."""
        self._epoch[0] = self.epoch + 1

    def next_seq(self) -> int:
        """A new sequence number for a set (claim, sent, final): unique, increasing."""
        if not self._seq:
            raw = self.txn.get(b"setseq", db=self.db["meta"])
            first = (L.U64.unpack(raw)[0] if raw else 0) + 1
            self._seq = [first, first]
        seq = self._seq[0]
        self._seq[0] = seq + 1
        return seq

    # -- counted moves ----------------------------------------------------------------

    def moved(self, batch: int, kind: int, old: int, new: int, flags: int, route: int) -> None:
        """Count a move (effective state codes); zone_default and unroutable count what
        is pending."""
        key = (batch, kind, old, new)
        self.moves[key] = self.moves.get(key, 0) + 1
        if (old in L.PENDING) != (new in L.PENDING):
            d = 1 if new in L.PENDING else -1
            if flags & L.ZONE_DEFAULT:
                self.bump(L.ZONE_DEFAULT_KEY, d)
            if route == 0:
                self.bump(L.UNROUTABLE_KEY, d)

    def moved_raw(self, kind_batch: bytes, old: int, new: int, n: int) -> None:
        """Count ``n`` moves of messages whose status records hold ``kind_batch`` (the 6
        bytes at 26): the hot path's way, unpacked once per transaction. The caller counts
        zone_default and unroutable."""
        key = (kind_batch, old, new)
        self.raw_moves[key] = self.raw_moves.get(key, 0) + n

    def count(self, batch: int, kind: int, state: int, n: int) -> None:
        key = (batch, kind, state)
        self.deltas[key] = self.deltas.get(key, 0) + n

    def bump(self, key: bytes, n: int) -> None:
        """A store-wide counter's delta, written with the others at the end."""
        self.bumps[key] = self.bumps.get(key, 0) + n

    # -- where a message waits --------------------------------------------------------

    def queue_key(self, idkey: bytes, batch: int, route: int) -> tuple[bytes, Any]:
        """A queued message's key: parked while its batch is paused, else ready."""
        name = self.name_of(BATCH, batch)
        if name in self.paused:
            return name.encode() + b"\0" + idkey, self.db["parked"]
        return self.name_of(ROUTE, route).encode() + b"\0" + idkey, self.db["ready"]

    def where(self, idkey: bytes, raw: bytes) -> int:
        """A WAITING message's effective state: queued, scheduled or in flight."""
        _, batch, route = L.kind_batch_route(raw)
        key, db = self.queue_key(idkey, batch, route)
        if self.txn.get(key, db=db) is not None:
            return L.QUEUED
        if self.txn.get(L.U64.pack(L.Status.unpack(raw).due_ms) + idkey, db=self.db["sched"]):
            return L.SCHEDULED
        return L.INFLIGHT

    def unplace(self, idkey: bytes, st: L.Status, state: int) -> None:
        """Take a message out of where ``state`` keeps it (final ones stay in their set)."""
        if state == L.QUEUED:
            key, db = self.queue_key(idkey, st.batch, st.route)
            self.txn.delete(key, db=db)
        elif state == L.SCHEDULED:
            self.txn.delete(L.U64.pack(st.due_ms) + idkey, db=self.db["sched"])
        elif state == L.INFLIGHT:
            self.leave_flight(idkey)
        elif state == L.SENT and not st.flags & L.NO_RECEIPT:
            self.bump(L.AWAITING_KEY, -1)

    def place(self, idkey: bytes, st: L.Status, state: int) -> None:
        """Write the status record and put the message where ``state`` keeps it."""
        raw = st.pack()
        self.txn.put(idkey, raw, db=self.db["status"])
        if state == L.QUEUED:
            key, db = self.queue_key(idkey, st.batch, st.route)
            self.txn.put(key, raw, db=db)
        elif state == L.SCHEDULED:
            self.txn.put(L.U64.pack(st.due_ms) + idkey, raw, db=self.db["sched"])
        elif state == L.SENT:
            if not st.flags & L.NO_RECEIPT:
                self.sent.setdefault(st.sent_ms, []).append(idkey)
                self.bump(L.AWAITING_KEY, 1)
        elif state in L.FINAL:
            self.final.setdefault(st.updated_ms, []).append(idkey)

    def move(
        self, idkey: bytes, st: L.Status, old: int, new: int, at_ms: int, reason: str | None = None
    ) -> int:
        """Move a message from its effective state ``old`` to ``new``; returns the state it
        took (a cancelled batch's message is cancelled instead of queued again)."""
        self.unplace(idkey, st, old)
        return self.arrive(idkey, st, old, new, at_ms, reason)

    def arrive(
        self, idkey: bytes, st: L.Status, old: int, new: int, at_ms: int, reason: str | None = None
    ) -> int:
        """The second half of :meth:`move`, for a message already out of its old place."""
        cancelled = new in (L.QUEUED, L.SCHEDULED) and self.cancelled
        if cancelled and self.name_of(BATCH, st.batch) in self.cancelled:
            new, reason = L.CODE[r.CANCELLED], "batch cancelled"
        self.moved(st.batch, st.kind, old, new, st.flags, st.route)
        st.state = L.WAITING if new in L.PENDING else new
        st.updated_ms = at_ms
        if reason is not None:
            st.reason = reason
        self.place(idkey, st, new)
        if new == _UNKNOWN or (new in _WAITS and (old in _AWAY or new != old)):
            self.note(idkey, at_ms, old, new, st.reason, st.due_ms, st.attempts)
        return new

    def note(
        self, idkey: bytes, at_ms: int, old: int, new: int, reason: str, due_ms: int, attempts: int
    ) -> None:
        """A rare transition in the message's history (the common path notes none)."""
        entry = self.s.coders.enc.encode([at_ms, old, new, reason, due_ms, attempts])
        self.txn.put(idkey + L.U64.pack(self.next_seq()), entry, db=self.db["history"])

    # -- flight -------------------------------------------------------------------------

    def leave_flight(self, idkey: bytes) -> None:
        """The message is no longer in flight: its claim set loses it (in memory now,
        put back by :meth:`undo`; the set is deleted at commit once it is empty)."""
        mid = L.U64.unpack(idkey)[0]
        entry = self.s._live.pop(mid, None)
        if entry is not None:
            self.left.append(mid)
            self.left_entries.append(entry)
            self.gone[entry[0]] = self.gone.get(entry[0], 0) + 1

    def claim_info(self, mid: int) -> tuple[int, int] | None:
        """(claim_ms, epoch) of a message this store has in flight, else None."""
        entry = self.s._live.get(mid)
        if entry is None:
            return None
        info = self.s._sets.get(entry[0]) or self.new_sets[entry[0]]
        return info[1], info[2]

    # -- the end ------------------------------------------------------------------------

    def finish(self) -> None:
        """Write what the transaction counted: counters, batches, sets; empty claim sets go."""
        self._write_sets(self.sent, self.db["sent"])
        self._write_sets(self.final, self.db["final"])
        self._drop_empty_claims()
        if self.s.webhooks:
            outbox.append(self)
        if self._seq and self._seq[0] != self._seq[1]:
            self.txn.put(b"setseq", L.U64.pack(self._seq[0] - 1), db=self.db["meta"])
        if self._epoch and self._epoch[0] != self._epoch[1]:
            self.txn.put(L.EPOCH_KEY, L.U64.pack(self._epoch[0]), db=self.db["counters"])
        self._write_counters()

    def _write_sets(self, sets: dict[int, list[bytes]], db: Any) -> None:
        put = self.txn.put
        for at, ids in sets.items():
            for start in range(0, len(ids), SET_CHUNK):
                key = L.U64.pack(at) + L.U64.pack(self.next_seq())
                put(key, b"".join(ids[start : start + SET_CHUNK]), db=db)

    def _drop_empty_claims(self) -> None:
        sets, db = self.s._sets, self.db["inflight"]
        for seq, n in self.gone.items():
            info = sets.get(seq) or self.new_sets.get(seq)
            if info is not None and info[0] <= n:
                self.txn.delete(L.U64.pack(seq), db=db)

    def _write_counters(self) -> None:
        deltas, moves = self.deltas, self.moves
        for (kind_batch, old, new), n in self.raw_moves.items():
            kind, batch = _KIND_BATCH.unpack(kind_batch)
            key = (batch, kind, old, new)
            moves[key] = moves.get(key, 0) + n
        for (batch, kind, old, new), n in self.moves.items():
            was, now = (batch, kind, old), (batch, kind, new)
            deltas[was] = deltas.get(was, 0) - n
            deltas[now] = deltas.get(now, 0) + n
        counters = dict(self.bumps)
        batches: dict[str, dict[str, int]] = {}
        states = r.STATES
        for (batch, kind, state), n in deltas.items():
            if not n:
                continue
            name = states[state]
            for ck in L.counter_keys(self.name_of(KIND, kind), name):
                counters[ck] = counters.get(ck, 0) + n
            per = batches.setdefault(self.name_of(BATCH, batch), {})
            per[name] = per.get(name, 0) + n
        txn, db = self.txn, self.db
        for ckey, n in counters.items():
            if n:
                raw = txn.get(ckey, db=db["counters"])
                value = (L.U64.unpack(raw)[0] if raw else 0) + n
                txn.put(ckey, L.U64.pack(max(0, value)), db=db["counters"])
        for bname, changes in batches.items():
            raw = txn.get(bname.encode(), db=db["batches"])
            info = self.s.coders.batch.decode(raw) if raw else r.BatchInfo()
            for sname, n in changes.items():
                info.counts[sname] = info.counts.get(sname, 0) + n
            info.counts = {k: v for k, v in info.counts.items() if v}
            txn.put(bname.encode(), self.s.coders.enc.encode(info), db=db["batches"])

    def committed(self) -> None:
        """After the commit: names learnt, claim sets counted down (empty ones forgotten)."""
        names = self.s.names
        for (cat, name), i in self.new_names.items():
            names._learn(cat, name, i)
        sets = self.s._sets
        sets.update(self.new_sets)
        for seq, n in self.gone.items():
            info = sets.get(seq)
            if info is not None:
                info[0] -= n
                if info[0] <= 0:
                    del sets[seq]
        for seq in self.dropped_sets:
            sets.pop(seq, None)

    def undo(self) -> None:
        """The transaction aborted: what it changed in memory is put back."""
        live = self.s._live
        for mid, entry in zip(reversed(self.left), reversed(self.left_entries), strict=True):
            live[mid] = entry
        for mid in self.added:
            live.pop(mid, None)
        self.added, self.left, self.left_entries, self.gone = [], [], [], {}
