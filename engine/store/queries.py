"""The Store's read-only queries, each in one read transaction: numbers, campaigns, the
webhooks' outbox, messages, counts and queues (a mixin the Store inherits)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

import lmdb

from engine.store import campaign as camp
from engine.store import check, numbers, readers
from engine.store import layout as L
from engine.store import outbox as ob
from engine.store import records as r

if TYPE_CHECKING:
    from engine.store.store import Store

T = TypeVar("T")


class Queries:
    def _query(self, fn: Callable[[Store, lmdb.Transaction], T]) -> T:
        """``fn(store, txn)`` in one read transaction (the Store runs it)."""
        raise NotImplementedError

    # -- numbers -----------------------------------------------------------------------

    def screen(
        self, numbers_: Sequence[str], kind: str, now: float, cap: tuple[int, float] | None = None
    ) -> list[str]:
        """Why each number should not be messaged now: "dead", "stopped", "capped" or "".

        For producers that exclude before enqueueing (one read transaction per
        call): pruned and stop-listed numbers, and those over the kind's
        frequency cap, or over ``cap`` (max, period seconds) when given.
        """
        return self._query(lambda s, txn: numbers.screen(s, txn, numbers_, kind, now, cap))

    def is_stopped(self, number: str) -> bool:
        return self._query(lambda s, txn: numbers.is_stopped(s, txn, number))

    def list_stopped(self) -> list[tuple[str, r.StopEntry]]:
        return self._query(lambda s, txn: numbers.listed(s, txn, "stop"))

    def list_dead(self) -> list[tuple[str, r.DeadEntry]]:
        return self._query(lambda s, txn: numbers.listed(s, txn, "dead"))

    def history(self, number: str) -> r.NumberHistory:
        return self._query(lambda s, txn: numbers.history(s, txn, number))

    def number_counts(self) -> tuple[int, int]:
        """(dead, stopped): how many numbers are pruned and how many stop-listed."""
        return self._query(numbers.counts)

    def list_mo(self) -> list[r.Mo]:
        return self._query(readers.list_mo)

    # -- campaigns: links, clicks, replies, memory (engine/store/campaign.py) -------

    def resolve_link(self, code: str) -> r.LinkTarget | None:
        """Where a short link's code leads (one read), or None."""
        return self._query(lambda s, txn: camp.resolve(txn, s.db, code))

    def engagement(self, msg_id: int, limit: int = 100) -> tuple[r.Engagement, list[r.Click]]:
        """What came back from one message: its counters and its clicks (oldest first)."""

        def read(s: Store, txn: lmdb.Transaction) -> tuple[r.Engagement, list[r.Click]]:
            eng = camp.engagement(txn, s.db, msg_id) or r.Engagement()
            return eng, camp.clicks_of(txn, s.db, msg_id, limit)

        return self._query(read)

    def step_stats(self, batches: Iterable[str] | None = None) -> dict[str, r.StepStats]:
        """Clicks, clickers, replies and opt-outs per batch (every batch with any, if None)."""

        def read(s: Store, txn: lmdb.Transaction) -> dict[str, r.StepStats]:
            if batches is not None:
                return {b: camp.step_stats(txn, s.db, b) for b in batches}
            cur = txn.cursor(db=s.db["steps"])
            names = [bytes(k).decode() for k, _ in cur if k[:1] != b"\0"]
            return {b: camp.step_stats(txn, s.db, b) for b in names}

        return self._query(read)

    def batch_infos(self, campaign_name: str | None = None) -> dict[str, r.BatchInfo]:
        """The published batches (of one campaign), by id."""
        return self._query(lambda s, txn: readers.batch_infos(s, txn, campaign_name))

    def contacts(self, number: str) -> list[int]:
        """The ids of the campaign steps' messages to ``number``, oldest first."""
        return self._query(lambda s, txn: camp.contacts(txn, s.db, number))

    def memory(self, numbers_: Sequence[str], campaign_name: str) -> dict[str, dict[str, r.Memory]]:
        """Per number, per segment of ``campaign_name``: what its earlier steps did
        (sent, delivered, clicked, replied, when); numbers it never reached are left out."""
        segments = {b: i.segment for b, i in self.batch_infos(campaign_name).items()}

        def read(s: Store, txn: lmdb.Transaction) -> dict[str, dict[str, r.Memory]]:
            claimed = readers.claims(s, txn)

            def message(msg_id: int) -> r.Message | None:
                return readers.get(s, txn, msg_id, claimed=claimed)

            return camp.memory(txn, s.db, numbers_, segments, message)

        return self._query(read) if segments else {}

    # -- webhooks: the outbox (engine/store/outbox.py) -----------------------------------

    def outbox_events(self, after: int = 0, entries: int = 64) -> tuple[list[ob.Event], int]:
        """Events not yet delivered, in order, from up to ``entries`` outbox entries after
        seq ``after``; and the last seq read (``after`` for the next call)."""
        return self._query(lambda s, txn: ob.events(s, txn, after, entries))

    def webhook_counts(self) -> tuple[int, int, float | None]:
        """(events waiting in the outbox, events dead-lettered, the time of the oldest
        waiting entry or None)."""

        def read(s: Store, txn: lmdb.Transaction) -> tuple[int, int, float | None]:
            oldest = ob.oldest(txn, s.db)
            return (readers.counter(s, txn, ob.BACKLOG_KEY),
                    readers.counter(s, txn, ob.DEAD_KEY),
                    None if oldest is None else oldest / 1000)  # fmt: skip

        return self._query(read)

    def dead_letters(self, limit: int = 100, oldest_first: bool = False) -> list[ob.Dead]:
        """Dead-lettered events, the latest first (or the oldest, as a replay sends them):
        (seq, index, letter)."""
        return self._query(lambda s, txn: ob.dead_letters(txn, s.db, limit, oldest_first))

    # -- messages, counts, queues ------------------------------------------------------

    def get(self, msg_id: int) -> r.Message | None:
        """One message, with its effective state (queued, scheduled, in flight...)."""
        return self._query(lambda s, txn: readers.get(s, txn, msg_id))

    def message_history(self, msg_id: int) -> list[r.Transition]:
        """A message's rare transitions (requeued, retried, scheduled, re-routed, unknown,
        intermediate receipts), oldest first; its body and status record tell the rest."""
        return self._query(lambda s, txn: readers.message_history(s, txn, msg_id))

    def find(self, batch: str, ext_id: str) -> r.Message | None:
        """The message the upstream calls ``ext_id`` in ``batch`` (its batch index entry)."""
        return self._query(lambda s, txn: readers.find(s, txn, batch, ext_id))

    def counts(self) -> r.Counts:
        return self._query(readers.counts)

    def due_count(self, now: float) -> int:
        """Messages that could be sent now: queued, plus scheduled whose time has come."""
        return self._query(lambda s, txn: readers.due_count(s, txn, now))

    def scheduled_by_hour(self, limit: int = 1_000_000) -> dict[int, int]:
        """Scheduled messages by due hour (epoch seconds of the hour's start)."""
        return self._query(lambda s, txn: readers.scheduled_by_hour(s, txn, limit))

    def awaiting_receipts(self) -> int:
        """Sent messages still waiting for their final receipt."""
        return self._query(lambda s, txn: readers.counter(s, txn, L.AWAITING_KEY))

    def batch_progress(self, batch: str) -> dict[str, int]:
        return self._query(lambda s, txn: readers.batch_progress(s, txn, batch))

    def paused_batches(self) -> list[str]:
        return self._query(readers.paused_batches)

    def queue_heads(self) -> dict[str, float]:
        """Route → since when the next message to be claimed on it has been due (epoch s)."""
        return self._query(readers.queue_heads)

    def list_unmatched(self, last: int = 20) -> list[r.Unmatched]:
        """The most recent receipts that matched no message, newest first (for diagnosis)."""
        return self._query(lambda s, txn: readers.list_unmatched(s, txn, last))

    def routing_table(self) -> str:
        """The fingerprint of the routing table the queue was last routed with."""
        return self._query(readers.routing_table)

    def ready_routes(self) -> list[str]:
        """The routes with queued messages (paused batches' excepted): one seek per route."""
        return self._query(readers.ready_routes)

    def ready_count(self, route: str) -> int:
        """How many messages are queued on ``route``."""
        return self._query(lambda s, txn: readers.ready_count(s, txn, route))

    def check(self) -> None:
        """Raise StoreError naming the first broken invariant: counters equal what they
        count, every pending message waits in exactly one place, indexes point true."""
        self._query(check.check)
