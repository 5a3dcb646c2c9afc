"""What the engine hands a bind (a Job) and what a bind reports back (its outcomes).

Every Struct here is a value: a bind never mutates a Job; the progress of a
multi-part message lives in the connection that sends it, and what it learnt
goes out in a new outcome.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec
import trio

from engine.smpp.pdu import DataSm, DeliverSm


class Job(msgspec.Struct, frozen=True, gc=False):
    """A message handed to an operator: its parts, encoded submit_sm bodies ready to send."""

    msg_id: int
    parts: tuple[bytes, ...]
    attempts: int = 0
    to: str = ""
    kind: str = ""
    closes_at: float | None = None  # wall time its send window closes (None: no window)


class Submitted(msgspec.Struct, frozen=True, gc=False):
    """Every part of a job got its response.

    ``status`` is the worst non-zero one (0: all accepted); ``smsc_ids`` the
    accepted parts' ids in part order; ``bad_id`` says why an accepted part's
    id could not be used (the message's fate is then unknown).
    """

    job: Job
    status: int
    bind: str
    smsc_ids: tuple[str, ...] = ()
    bad_id: str = ""
    accepted: int = 0  # parts answered with status 0 (bad ids included)


class Lost(msgspec.Struct, frozen=True, gc=False):
    """Some part went out and not every part was answered: the message's fate is unknown."""

    job: Job
    reason: str
    bind: str
    answered: int = 0  # of its parts, before the connection ended
    accepted: int = 0
    status: int = 0  # the worst status among the refused ones


class Unsent(msgspec.Struct, frozen=True, gc=False):
    """A job taken from the channel of which no byte went out: give it back, at its place."""

    job: Job
    bind: str


class Vetoed(msgspec.Struct, frozen=True, gc=False):
    """A job the engine told the bind not to send after all (e.g. a STOP came in)."""

    job: Job
    reason: str
    bind: str


class Inbound(msgspec.Struct, frozen=True):
    """A deliver_sm or data_sm (receipt or MO).

    Answer it with ``connection.ack(inbound)`` after its effect is committed:
    only the connection it came in on can answer it (after a reconnect the SMSC
    sends it again).
    """

    pdu: DeliverSm | DataSm
    bind: str
    at: float
    connection: Any = None  # the engine.net.connection.Connection it came in on


class StateChanged(msgspec.Struct, frozen=True):
    bind: str
    state: str
    detail: str = ""


Outcome = Submitted | Lost | Unsent | Vetoed | Inbound | StateChanged
# What a bind puts on the outcome channel: one outcome, or all that one read produced.
Report = Outcome | list[Outcome]


class JobQueue:
    """An operator's jobs waiting for a bind: a bounded deque its binds take from in batches.

    The dispatcher puts what one claim produced in one call; a connection takes as
    many as its window allows in one call. Nothing here blocks: :meth:`wait` is
    how a bind waits for work.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._jobs: deque[Job] = deque()
        self._ready = trio.Event()
        self._taken = trio.Event()

    def __len__(self) -> int:
        return len(self._jobs)

    def free(self) -> int:
        return self.capacity - len(self._jobs)

    def put(self, jobs: list[Job]) -> None:
        if jobs:
            self._jobs.extend(jobs)
            self._ready.set()

    def take(self, n: int) -> list[Job]:
        """Up to ``n`` jobs, oldest first, without waiting."""
        jobs = self._jobs
        if n >= len(jobs):
            taken = list(jobs)
            jobs.clear()
        else:
            taken = [jobs.popleft() for _ in range(n)]
        if taken:
            self._taken.set()
        return taken

    async def wait_room(self, room: int) -> None:
        """Until at least ``room`` places are free."""
        while self.free() < room:
            if self._taken.is_set():
                self._taken = trio.Event()
            await self._taken.wait()

    async def wait(self) -> None:
        """Until a job is there (return at once if one is)."""
        while not self._jobs:
            if self._ready.is_set():
                self._ready = trio.Event()
            await self._ready.wait()

    def drain(self) -> list[Job]:
        """Everything waiting: to give back to the queue (a stop, a pause)."""
        return self.take(len(self._jobs))
