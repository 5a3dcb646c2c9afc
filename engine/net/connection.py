"""One TCP session of a bind: bind, send, read, keep alive, unbind, end.

A Connection lives for exactly one connection, the way hypercorn gives each
TCP connection its own object: it owns the stream, the sans-IO Session, the
nursery of its tasks (reader, sender, keepalive) and the in-flight table
``sequence -> (message, part, written at)`` (engine/net/inflight.py). Whatever
ends it (the peer, a protocol error, a timeout, a reset, a stop),
:meth:`Connection.run` returns only after every job it took is reported:
Submitted once every part was answered, Unsent when none of its bytes went out,
Lost otherwise. Nothing that happens on the connection escapes it as an
exception: ``run`` returns why it ended.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from engine.net.inflight import InFlight, Progress
from engine.net.jobs import Inbound, Job, Outcome, Vetoed
from engine.smpp import constants as c
from engine.smpp.errors import ProtocolError
from engine.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DataSm,
    DeliverSm,
    EnquireLink,
    Unbind,
)
from engine.smpp.session import (
    BindFailed,
    Bound,
    Closed,
    ProtocolViolation,
    RequestReceived,
    ResponseReceived,
    Role,
    Session,
    State,
    UnbindRequested,
    UnmatchedResponse,
)

if TYPE_CHECKING:
    from engine.net.bind import Bind

log = logging.getLogger("volley.bind")

READ_SIZE = 65536
_BIND_PDU = {
    "transceiver": BindTransceiver,
    "transmitter": BindTransmitter,
    "receiver": BindReceiver,
}
# What a failing stream raises: the connection ends with its description.
_EXPECTED = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError)


class Ended(msgspec.Struct, frozen=True):
    """Why a connection ended; ``refused``: the bind_resp's status when the SMSC refused us."""

    reason: str
    bound: bool = False
    refused: int = 0


class _Fault(Exception):
    """This connection must end, for the reason given."""


class Connection:
    def __init__(self, bind: Bind, stream: trio.abc.Stream) -> None:
        self.bind = bind
        self.name = bind.name
        self.stats = bind.stats
        self.stream = stream
        self.session = Session(Role.ESME, window=bind.op.window)
        self._timeout = bind.timeout
        self._inflight = InFlight(bind)
        self._write_lock = trio.Lock()
        self._window_open = trio.Event()
        self._stop_asked = False
        self._stopping = trio.Event()
        self._sender_done = trio.Event()
        self._unbound = trio.Event()
        self._unbinding = False
        self._idle: trio.CancelScope | None = None  # the sender waiting for work: stop cancels it
        self._scope: trio.CancelScope | None = None
        self._reason = ""
        self._bound = False
        self._refused = 0
        self._closed = False
        self._last_pdu = trio.current_time()
        self._link_sent: float | None = None

    # -- lifetime ------------------------------------------------------------

    async def run(self) -> Ended:
        """Serve the connection until it ends; report every job it took; say why it ended."""
        try:
            with trio.CancelScope() as self._scope:
                if self._reason:  # stopped or aborted before it started
                    self._scope.cancel()
                await self._serve()
        except Exception as exc:  # the bind phase, outside the guarded tasks
            self._note(exc)
        finally:
            self._closed = True
            with trio.CancelScope(shield=True):
                await self._report_unfinished()
                await trio.aclose_forcefully(self.stream)
        return Ended(self._reason or "closed", bound=self._bound, refused=self._refused)

    def stop(self) -> None:
        """Take no more jobs; finish the one being sent, drain the window, unbind."""
        self._stop_asked = True
        self._stopping.set()
        if not self._bound:
            self._end("stopped")
        elif self._idle is not None:
            self._idle.cancel()

    def abort(self, reason: str) -> None:
        """Drop the connection now."""
        self._end(reason)

    def _end(self, reason: str) -> None:
        self._reason = self._reason or reason
        if self._scope is not None:
            self._scope.cancel()

    def _note(self, exc: BaseException) -> None:
        """Why a task failed; a failure nobody foresaw is logged with its traceback."""
        if not isinstance(exc, (_Fault, ProtocolError, *_EXPECTED)):
            log.exception("bind %s: unexpected error, closing the connection", self.name)
        self._end(describe(exc))

    async def _guard(self, task: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run one of the connection's tasks: whatever it raises ends this connection only."""
        try:
            await task(*args)
        except Exception as exc:
            self._note(exc)

    async def _serve(self) -> None:
        leftover = await self._bind_session()
        self._bound = True
        await self.bind.set_state("bound")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._guard, self._reader, leftover)
            nursery.start_soon(self._guard, self._keepalive)
            if self.bind.mode == "receiver":
                self._sender_done.set()
            else:
                nursery.start_soon(self._guard, self._sender)
            await self._stopping.wait()
            await self._sender_done.wait()
            await self._drain_and_unbind()
            self._end("stopped")

    async def _bind_session(self) -> list[Any]:
        """Bind; returns what the SMSC sent after its bind_resp in the same read."""
        op, bind = self.bind.op, self.bind
        self.session.send(
            _BIND_PDU[bind.mode](
                system_id=op.system_id,
                password=bind.password,
                system_type=op.system_type,
                address_range=op.address_range,
            )
        )
        await self._flush()
        with trio.move_on_after(self._timeout):
            while True:
                events = await self._receive()
                for i, ev in enumerate(events):
                    if isinstance(ev, Bound):
                        return events[i + 1 :]
                    if isinstance(ev, BindFailed):
                        self._refused = ev.status
                        raise _Fault(
                            f"bind refused: 0x{ev.status:02X} {c.status_description(ev.status)}"
                        )
                    if isinstance(ev, Closed):
                        raise _Fault("closed by the SMSC while binding")
                await self._flush()
        raise _Fault(f"no bind_resp within {self._timeout:g}s")

    async def _report_unfinished(self) -> None:
        unfinished = self._inflight.unfinished(self._reason or "connection closed")
        if unfinished:
            await self.bind.report(unfinished)

    # -- reading ---------------------------------------------------------------

    async def _receive(self) -> list[Any]:
        data = await self.stream.receive_some(READ_SIZE)
        if not data:
            raise _Fault("connection closed by the SMSC")
        before = self.session.received
        events = self.session.receive_data(bytes(data))
        if self.session.received != before:
            self._last_pdu = trio.current_time()
        return events

    async def _reader(self, leftover: list[Any]) -> None:
        events = leftover
        while True:
            if events:
                await self._handle(events)
            events = await self._receive()

    async def _handle(self, events: list[Any]) -> None:
        out: list[Outcome] = []
        now = trio.current_time()
        closing = ""
        for ev in events:
            kind = type(ev)
            if kind is ResponseReceived:
                if self._inflight.answer(ev.request, ev.response, now, out):
                    self._window_open.set()
            elif kind is RequestReceived and isinstance(ev.pdu, DeliverSm | DataSm):
                self.stats.receipts += 1
                out.append(Inbound(ev.pdu, self.name, now, self))
            elif kind is ProtocolViolation:
                self.stats.errors += 1
                self.stats.last_error = str(ev.error)
                log.warning("bind %s: %s", self.name, ev.error)
                if ev.error.fatal:
                    closing = closing or f"protocol error: {ev.error}"
            elif kind is UnmatchedResponse:
                self.stats.last_error = f"unmatched {type(ev.pdu).__name__} seq {ev.pdu.sequence}"
            elif kind is UnbindRequested:
                closing = closing or "unbound by the SMSC"
            elif kind is Closed:
                if self._unbinding:
                    self._unbound.set()
                else:
                    closing = closing or "closed by the SMSC"
        if closing:
            self._reason = self._reason or closing  # before any await: the true cause
        if out:
            await self.bind.report(out)
        await self._flush()  # what the session answered by itself: enquire_link, nacks, unbind
        if closing:
            raise _Fault(closing)

    # -- sending ---------------------------------------------------------------

    async def _sender(self) -> None:
        """Keep the window full at the operator's pace, taking jobs in batches; a stop lets the
        job being sent finish (the others taken come back as Unsent when the connection ends)."""
        try:
            while not self._stop_asked:
                jobs = await self._next_jobs()
                if not jobs:
                    return
                for job in jobs:
                    if self._stop_asked:
                        break
                    await self._send(job)
                self.stats.window_used = len(self._inflight.parts)
        finally:
            self._sender_done.set()

    async def _next_jobs(self) -> list[Job]:
        """As many jobs as the window has room for, waiting for one if none is there."""
        bind = self.bind
        queue = bind.jobs
        assert queue is not None  # a receiver bind runs no sender
        while bind.paused and not self._stop_asked:
            await self._flush()
            with trio.CancelScope() as self._idle:
                await bind.resumed.wait()
            self._idle = None
        if self._stop_asked:
            return []
        room = max(1, self._room())
        jobs = queue.take(room)
        if not jobs:
            await self._flush()
            with trio.CancelScope() as self._idle:
                await queue.wait()
            self._idle = None
            jobs = [] if self._stop_asked else queue.take(room)
        self._inflight.take(jobs)
        return jobs

    async def _send(self, job: Job) -> None:
        progress = self._inflight.jobs[job.msg_id]
        bind, session, pacer = self.bind, self.session, self.bind.pacer
        if reason := bind.vetoed(job):
            await self._veto(progress, reason)
            return
        for i, body in enumerate(job.parts):
            waited = False
            if session.window_free - bind.unsettled <= 0:
                await self._wait_window()
                waited = True
            if not pacer.grant(trio.current_time(), 1):
                await self._wait_pace()
                waited = True
            if i == 0 and waited and (reason := bind.vetoed(job)):  # again, after waiting
                await self._veto(progress, reason)
                return
            seq = session.send_body(c.SUBMIT_SM, body)
            self._inflight.queued(seq, progress, i)

    async def _veto(self, progress: Progress, reason: str) -> None:
        self._inflight.drop(progress.job)
        await self.bind.report([Vetoed(progress.job, reason, self.name)])

    def _room(self) -> int:
        """Window slots free: neither in flight nor answered but not yet committed."""
        return self.session.window_free - self.bind.unsettled

    def window_opened(self) -> None:
        """A slot may be free (a response came, or the engine committed an outcome)."""
        self._window_open.set()

    async def _wait_window(self) -> None:
        while self._room() <= 0:
            self._window_open = trio.Event()  # before any await: no lost wake-up
            await self._flush()
            if self._room() <= 0:
                await self._window_open.wait()

    async def _wait_pace(self) -> None:
        pacer = self.bind.pacer
        while True:
            await self._flush()
            await trio.sleep_until(pacer.next_time(trio.current_time()))
            if pacer.grant(trio.current_time(), 1):
                return

    async def _flush(self) -> None:
        """Write what the session has queued, whole: a stop or a reset never cuts a PDU.

        The parts in it count as written from now (their response deadline and
        latency start here). The write is shielded from cancellation, bounded
        by the response timeout: bytes taken from the session must reach the
        socket, or the SMSC would never answer what the window counts as sent.
        """
        async with self._write_lock:
            data = self.session.data_to_send()
            if not data:
                return
            now = trio.current_time()
            self._inflight.written(now)
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = now + self._timeout
                await self.stream.send_all(data)
            if scope.cancelled_caught:
                raise _Fault(f"the SMSC has not read for {self._timeout:g}s")

    # -- keeping alive, draining -----------------------------------------------

    async def _keepalive(self) -> None:
        """enquire_link after ``enquire_link_interval`` without a complete PDU; no complete PDU
        within the response timeout after it, or a part unanswered that long, ends the link."""
        idle, timeout = self.bind.idle, self._timeout
        tick = min(1.0, idle / 2, timeout / 2)
        while True:
            await trio.sleep(tick)
            now = trio.current_time()
            self._check_responses(now)
            if self._link_sent is not None and self._last_pdu < self._link_sent:
                if now - self._link_sent >= timeout:
                    raise _Fault(f"no PDU within {timeout:g}s of an enquire_link")
            elif now - self._last_pdu >= idle and self.session.state is not State.CLOSED:
                self.session.send(EnquireLink())
                self._link_sent = now
                await self._flush()

    def _check_responses(self, now: float) -> None:
        for seq, part in self._inflight.parts.items():  # the oldest first: it was written first
            if part.written_at is not None and now - part.written_at >= self._timeout:
                raise _Fault(f"no response to submit_sm seq {seq} within {self._timeout:g}s")
            return

    async def _drain_and_unbind(self) -> None:
        """Wait for in-flight responses (bounded), then unbind and await unbind_resp."""
        with trio.move_on_after(self._timeout):
            while self._inflight.parts:
                self._window_open = trio.Event()
                await self._flush()
                await self._window_open.wait()
        with trio.CancelScope(shield=True), trio.move_on_after(min(5.0, self._timeout)):
            await self.bind.set_state("unbinding")
            self._unbinding = True
            self.session.send(Unbind())
            await self._flush()
            await self._unbound.wait()

    # -- the engine's calls ----------------------------------------------------

    @property
    def closed(self) -> bool:
        """It has ended: what came in on it can no longer be answered."""
        return self._closed or self.session.state is State.CLOSED

    def ack(self, inbound: Inbound, status: int = 0) -> bool:
        """Queue the answer to an inbound PDU once its effect is committed; flush() sends it.

        False when this connection has ended: the SMSC will send it again.
        """
        if self.closed:
            return False
        self.session.acknowledge(inbound.pdu, status)
        return True

    async def flush(self) -> None:
        """Send what is queued; a failure ends this connection, never the caller."""
        if self._closed:
            return
        try:
            await self._flush()
        except Exception as exc:
            self._note(exc)


def describe(exc: BaseException) -> str:
    if isinstance(exc, trio.TooSlowError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, trio.BrokenResourceError) and cause is not None:
        return f"{text}: {describe(cause)}"  # e.g. the TLS handshake's reason
    return text
