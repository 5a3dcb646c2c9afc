"""Group commit: every store operation submitted while a commit runs goes into the next one.

One LMDB write transaction per commit, on the store's thread (one writer). An
operation can carry ``on_commit``, called with its own result once the
transaction that holds it has committed: nothing is matched by position. After
each commit the writer calls ``committed`` (the engine answers the SMSC there:
receipts are acknowledged only once their effect is durable).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from engine.store import Op, Result, Store

OnCommit = Callable[[Result], None]
OnCommitAll = Callable[[list[Result]], None]
Db = Callable[..., Awaitable[Any]]


class Writer:
    def __init__(
        self, store: Store, db: Db, committed: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._store = store
        self._db = db
        self._committed = committed
        self._ops: list[Op] = []
        self._callbacks: list[tuple[int, OnCommit]] = []
        self._batches: list[tuple[int, int, OnCommitAll]] = []
        self._after: list[Callable[[], None]] = []
        self._wake = trio.Event()
        self._idle = trio.Event()
        self._idle.set()
        self.commits = 0

    @property
    def busy(self) -> bool:
        """Something is waiting for a commit or being committed."""
        return not self._idle.is_set()

    def submit(self, op: Op, on_commit: OnCommit | None = None) -> None:
        if on_commit is not None:
            self._callbacks.append((len(self._ops), on_commit))
        self._ops.append(op)
        self._poke()

    def submit_all(self, ops: Sequence[Op], on_commit: OnCommitAll) -> None:
        """Several operations with one ``on_commit``, called with their results in order."""
        if ops:
            start = len(self._ops)
            self._ops.extend(ops)
            self._batches.append((start, len(self._ops), on_commit))
            self._poke()

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once everything submitted so far is committed."""
        self._after.append(fn)
        self._poke()

    def _poke(self) -> None:
        self._wake.set()
        if self._idle.is_set():
            self._idle = trio.Event()

    async def idle(self) -> None:
        """Until nothing is waiting for a commit."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            ops, self._ops = self._ops, []
            callbacks, self._callbacks = self._callbacks, []
            batches, self._batches = self._batches, []
            after, self._after = self._after, []
            if ops:
                results: list[Result] = await self._db(self._store.apply, ops)
                self.commits += 1
                for index, on_commit in callbacks:
                    on_commit(results[index])
                for start, end, on_commit_all in batches:
                    on_commit_all(results[start:end])
            for then in after:
                then()
            if self._committed is not None:
                await self._committed()
            if not self._ops and not self._after:
                self._idle.set()
