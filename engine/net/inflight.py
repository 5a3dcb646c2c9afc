"""A connection's in-flight table: how far each job it took has gone, its parts by sequence
number with when they were written, and the outcomes their responses make."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from engine.net.jobs import Job, Lost, Outcome, Submitted, Unsent
from engine.smpp import constants as c
from engine.smpp.pdu import GenericNack, Pdu
from engine.smpp.receipts import checked_id

if TYPE_CHECKING:
    from engine.net.bind import Bind

log = logging.getLogger("volley.bind")


class Progress:
    """How far one job has gone on this connection (never kept on the Job itself)."""

    __slots__ = ("accepted", "answered", "bad_id", "ids", "job", "status", "written")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.written = 0
        self.answered = 0
        self.accepted = 0
        self.ids: list[str] = [""] * len(job.parts)
        self.status = 0
        self.bad_id = ""


class Part:
    """An in-flight part: its job's progress, its index, when its bytes were written."""

    __slots__ = ("index", "progress", "written_at")

    def __init__(self, progress: Progress, index: int) -> None:
        self.progress = progress
        self.index = index
        self.written_at: float | None = None


class InFlight:
    def __init__(self, bind: Bind) -> None:
        self.bind = bind
        self.name = bind.name
        self.stats = bind.stats
        self.parts: dict[int, Part] = {}  # by sequence number, the oldest first
        self.jobs: dict[int, Progress] = {}  # by message id: taken and not yet reported
        self._unwritten: list[int] = []

    def take(self, jobs: list[Job]) -> None:
        progress = self.jobs
        for job in jobs:
            progress[job.msg_id] = Progress(job)

    def drop(self, job: Job) -> None:
        """A job taken that will not be sent (vetoed)."""
        del self.jobs[job.msg_id]

    def queued(self, seq: int, progress: Progress, index: int) -> None:
        """A part handed to the session, to be written at the next flush."""
        self.parts[seq] = Part(progress, index)
        self._unwritten.append(seq)

    def written(self, now: float) -> None:
        """The queued parts went out: their response deadline and latency start ``now``."""
        seqs, self._unwritten = self._unwritten, []
        parts = self.parts
        for seq in seqs:
            part = parts.get(seq)
            if part is not None:
                part.written_at = now
                part.progress.written += 1

    def unfinished(self, reason: str) -> list[Outcome]:
        """Every job not yet reported: Lost if some of its bytes went out, else Unsent; the
        table empties."""
        out: list[Outcome] = [
            Lost(p.job, reason, self.name, p.answered, p.accepted, p.status)
            if p.written
            else Unsent(p.job, self.name)
            for p in self.jobs.values()
        ]
        self.jobs.clear()
        self.parts.clear()
        self.stats.window_used = 0
        return out

    def answer(self, request: Pdu, response: Pdu, now: float, out: list[Outcome]) -> bool:
        """A response to one of the parts (False if it answers none: enquire_link_resp and the
        like); a job whose parts are all answered goes to ``out`` as Submitted."""
        part = self.parts.pop(request.sequence, None)
        if part is None:
            return False
        self.stats.window_used = len(self.parts)
        if part.written_at is not None:
            self.bind.observe_latency(now - part.written_at)
        progress = part.progress
        status = response.status
        if type(response) is GenericNack and status == 0:
            status = c.ESME_RUNKNOWNERR
        if status == 0:
            self._accepted(progress, part.index, getattr(response, "message_id", ""))
        else:
            self._refused_part(progress, status, now)
        progress.answered += 1
        job = progress.job
        if progress.answered == len(job.parts):
            del self.jobs[job.msg_id]
            self.bind.unsettled += len(job.parts)  # its slots free once the engine commits
            ids = tuple(i for i in progress.ids if i)
            out.append(
                Submitted(job, progress.status, self.name, ids, progress.bad_id, progress.accepted)
            )
        return True

    def _accepted(self, progress: Progress, index: int, raw_id: str) -> None:
        self.stats.submitted += 1
        progress.accepted += 1
        smsc_id = checked_id(raw_id)
        if smsc_id is not None:
            progress.ids[index] = smsc_id
            return
        progress.bad_id = progress.bad_id or (
            f"part {index + 1} accepted with an unusable message_id {raw_id[:80]!r}"
        )
        self.stats.errors += 1
        self.stats.last_error = progress.bad_id
        log.warning("bind %s: message %d: %s", self.name, progress.job.msg_id, progress.bad_id)

    def _refused_part(self, progress: Progress, status: int, now: float) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"0x{status:02X} {c.status_description(status)}"
        if status in c.THROTTLE_STATUSES:
            self.stats.throttled += 1
            self.bind.pacer.throttled(now)
        if progress.status == 0 or status not in c.TRANSIENT_STATUSES:
            progress.status = status
