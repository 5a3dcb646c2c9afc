"""One SMPP bind: the thin trio I/O layer around the sans-IO Session.

A Bind connects, binds, keeps its window full from the operator's job channel
at the operator's pace, answers the SMSC at once, keeps the link alive, and
reconnects with exponential backoff and jitter. It never opens the store: every
outcome goes out on the ``outcomes`` channel as a msgspec Struct, and inbound
deliver_sm are answered only when the service calls :meth:`Bind.ack` after its
commit (so a crash before the commit makes the SMSC resend).
"""

from __future__ import annotations

import enum
import random
import socket
import ssl
from collections.abc import Callable
from typing import Any

import msgspec
import trio

from engine.config import OperatorConfig, seconds
from engine.sched.pacing import Pacer
from engine.smpp import constants as c
from engine.smpp.errors import ProtocolError
from engine.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DataSm,
    DeliverSm,
    EnquireLink,
    GenericNack,
    Pdu,
    SubmitSm,
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
    UnbindRequested,
    UnmatchedResponse,
)

READ_SIZE = 65536


class BindState(enum.StrEnum):
    CONNECTING = "connecting"
    BINDING = "binding"
    BOUND = "bound"
    UNBINDING = "unbinding"
    BACKOFF = "backoff"
    FAILED = "failed"
    STOPPED = "stopped"


class Job(msgspec.Struct, gc=False):
    """A message handed to an operator: its parts, ready to send."""

    msg_id: int
    parts: list[SubmitSm]
    attempts: int = 0
    to: str = ""
    kind: str = ""
    closes_at: float | None = None  # wall time its send window closes (None: no window)
    smsc_ids: list[str] = msgspec.field(default_factory=list)
    status: int = 0
    answered: int = 0


class Submitted(msgspec.Struct, frozen=True, gc=False):
    """Every part of a job got its response (``status`` is the worst non-zero one)."""

    job: Job
    status: int
    bind: str


class Lost(msgspec.Struct, frozen=True, gc=False):
    """Parts went out and no response came (timeout or connection loss): fate unknown."""

    job: Job
    reason: str
    bind: str


class Unsent(msgspec.Struct, frozen=True, gc=False):
    """A job taken from the channel that never went out: give it back, at its place."""

    job: Job
    bind: str


class Vetoed(msgspec.Struct, frozen=True, gc=False):
    """A job the service told the bind not to send after all (e.g. a STOP came in)."""

    job: Job
    reason: str
    bind: str


class Inbound(msgspec.Struct, frozen=True, gc=False):
    """A deliver_sm or data_sm (receipt or MO); answer with ``Bind.ack`` after the commit."""

    pdu: DeliverSm | DataSm
    bind: str
    at: float
    connection: int = 0


class StateChanged(msgspec.Struct, frozen=True):
    bind: str
    state: str
    detail: str = ""


Outcome = Submitted | Lost | Unsent | Vetoed | Inbound | StateChanged
# What a bind puts on the outcome channel: one outcome, or all that one read produced.
Report = Outcome | list[Outcome]


class BindStats(msgspec.Struct):
    state: str = BindState.CONNECTING
    submitted: int = 0
    errors: int = 0
    throttled: int = 0
    last_error: str = ""
    reconnects: int = 0
    receipts: int = 0
    window_used: int = 0


class CredentialsRejected(Exception):
    pass


class _Reset(Exception):
    """Tear this connection down and reconnect."""


_CONNECTION_ERRORS = (
    OSError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.TooSlowError,
    ProtocolError,
    _Reset,
)


_BIND_PDU = {"transceiver": BindTransceiver, "transmitter": BindTransmitter}


class Bind:
    def __init__(
        self,
        op: OperatorConfig,
        index: int,
        *,
        jobs: trio.MemoryReceiveChannel[Job] | None,
        outcomes: trio.MemorySendChannel[Report],
        pacer: Pacer,
        mode: str | None = None,
        password: str = "",
        rng: random.Random | None = None,
        veto: Callable[[Job], str] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.op = op
        self.mode = mode or op.bind
        self.name = f"{op.name}#{index}" + ("" if self.mode != "receiver" else "rx")
        self._jobs = jobs
        self._outcomes = outcomes
        self._pacer = pacer
        self._password = password
        self._rng = rng or random.Random()
        self._veto = veto
        self._tls = tls if tls is not None or not op.tls else ssl.create_default_context()
        self._timeout = seconds(op.response_timeout)
        self._idle = seconds(op.enquire_link_interval)
        self.stats = BindStats()
        self.paused = False
        self.latencies: list[float] | None = None  # submit -> response, when measuring
        self._session: Session | None = None
        self._stream: trio.abc.Stream | None = None
        self._pending: dict[int, tuple[Job, float]] = {}
        self._write_lock = trio.Lock()
        self._window_open = trio.Event()
        self._stopping = False
        self._reset_scope: trio.CancelScope | None = None
        self._last_rx = 0.0
        self._current: Job | None = None
        self._connections = 0
        self._sender_scope: trio.CancelScope | None = None
        self._stop_requested = trio.Event()
        self._closed = trio.Event()

    # -- lifecycle -------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Bind] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(self)
        attempt = 0
        while not self._stopping:
            fatal = ""
            try:
                await self._connection()
                attempt = 0
            except* CredentialsRejected as group:
                fatal = str(group.exceptions[0])
            except* _CONNECTION_ERRORS as group:
                self.stats.last_error = _describe(group.exceptions[0])
            finally:
                await self._give_back()
            if fatal:
                self.stats.last_error = fatal
                await self._state(BindState.FAILED, fatal)
                return
            if self._stopping:
                break
            attempt += 1
            self.stats.reconnects += 1
            delay = self._backoff(attempt)
            await self._state(BindState.BACKOFF, f"retry in {delay:.1f}s: {self.stats.last_error}")
            with trio.move_on_after(delay):
                await self._stop_requested.wait()
        await self._state(BindState.STOPPED)

    def stop(self) -> None:
        """Stop taking jobs; the connection drains, unbinds and closes."""
        self._stopping = True
        self._stop_requested.set()
        self._window_open.set()
        if self._sender_scope is not None:
            self._sender_scope.cancel()

    def reset(self) -> None:
        """Drop the connection now and reconnect (operator's request or a timeout)."""
        if self._reset_scope is not None:
            self._reset_scope.cancel()

    def _backoff(self, attempt: int) -> float:
        lo, hi = seconds(self.op.reconnect_min), seconds(self.op.reconnect_max)
        return min(hi, lo * 2 ** (attempt - 1)) * self._rng.uniform(0.5, 1.0)

    async def _state(self, state: BindState, detail: str = "") -> None:
        self.stats.state = state
        await self._outcomes.send(StateChanged(self.name, state, detail))

    # -- one connection --------------------------------------------------

    async def _connection(self) -> None:
        await self._state(BindState.CONNECTING)
        with trio.fail_after(seconds(self.op.connect_timeout)):
            stream = await trio.open_tcp_stream(self.op.host, self.op.port)
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            stream = trio.SSLStream(stream, self._tls, server_hostname=self.op.host)
        self._stream = stream
        self._connections += 1
        self._session = Session(Role.ESME, window=self.op.window)
        try:
            with trio.CancelScope() as scope:
                self._reset_scope = scope
                await self._bind()
                await self._state(BindState.BOUND)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._reader, nursery.cancel_scope)
                    nursery.start_soon(self._keepalive)
                    if self.mode != "receiver":
                        with trio.CancelScope() as self._sender_scope:
                            if not self._stopping:
                                await self._sender()
                    await self._stop_requested.wait()
                    await self._drain_and_unbind()
                    nursery.cancel_scope.cancel()
            if scope.cancelled_caught and not self._stopping:
                raise _Reset("reset")
        finally:
            self._reset_scope = None
            with trio.CancelScope(shield=True):
                await stream.aclose()
            self._stream = None

    async def _bind(self) -> None:
        await self._state(BindState.BINDING)
        cls = {"receiver": BindReceiver}.get(self.mode) or _BIND_PDU[self.mode]
        op = self.op
        self._session.send(
            cls(
                system_id=op.system_id,
                password=self._password,
                system_type=op.system_type,
                address_range=op.address_range,
            )
        )
        await self._flush()
        with trio.fail_after(self._timeout):
            while True:
                for ev in await self._receive():
                    if isinstance(ev, Bound):
                        return
                    if isinstance(ev, BindFailed):
                        if ev.status in c.CREDENTIAL_STATUSES:
                            raise CredentialsRejected(
                                f"bind refused: 0x{ev.status:02X} {c.status_description(ev.status)}"
                            )
                        raise _Reset(f"bind refused: 0x{ev.status:02X}")

    async def _receive(self) -> list[Any]:
        data = await self._stream.receive_some(READ_SIZE)
        if not data:
            raise _Reset("connection closed by the SMSC")
        self._last_rx = trio.current_time()
        return self._session.receive_data(data)

    async def _flush(self) -> None:
        """Write what the session has queued, whole: a stop or a reset never cuts a PDU.

        The write is shielded from cancellation (bounded by the response
        timeout): data taken from the session must reach the socket, or the
        SMSC would never answer what the window counts as sent.
        """
        async with self._write_lock:
            stream = self._stream  # the connection may have ended while this waited
            if stream is None:
                raise trio.ClosedResourceError("the connection is closed")
            data = self._session.data_to_send()
            if data:
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + self._timeout
                    await stream.send_all(data)
                if scope.cancelled_caught:
                    raise _Reset(f"the SMSC has not read for {self._timeout:g}s")

    # -- tasks -----------------------------------------------------------

    async def _reader(self, scope: trio.CancelScope) -> None:
        while True:
            events = await self._receive()
            batch: list[Outcome] = []
            for ev in events:
                if isinstance(ev, ResponseReceived):
                    outcome = self._response(ev.request, ev.response)
                    if outcome is not None:
                        batch.append(outcome)
            now = trio.current_time()
            for ev in events:
                if isinstance(ev, RequestReceived) and isinstance(ev.pdu, DeliverSm | DataSm):
                    self.stats.receipts += 1
                    batch.append(Inbound(ev.pdu, self.name, now, self._connections))
                elif not isinstance(ev, ResponseReceived):
                    await self._handle(ev)
            if batch:
                await self._outcomes.send(batch)
            await self._flush()

    async def _handle(self, ev: Any) -> None:
        if isinstance(ev, Closed) and self._stopping:
            self._closed.set()
        elif isinstance(ev, (UnbindRequested, Closed)):
            await self._flush()
            raise _Reset("unbound by the SMSC")
        elif isinstance(ev, ProtocolViolation):
            self.stats.errors += 1
            self.stats.last_error = str(ev.error)
            if ev.error.fatal:
                await self._flush()
                raise _Reset(f"protocol error: {ev.error}")
        elif isinstance(ev, UnmatchedResponse):
            self.stats.last_error = f"unmatched response seq {ev.pdu.sequence}"

    def _response(self, request: Pdu, response: Pdu) -> Submitted | None:
        """Book a response; the job's outcome once every part is answered."""
        entry = self._pending.pop(request.sequence, None)
        self.stats.window_used = len(self._pending)
        self._window_open.set()
        if entry is None:
            return None
        if self.latencies is not None and len(self.latencies) < 1_000_000:
            self.latencies.append(trio.current_time() - entry[1] + self._timeout)
        job = entry[0]
        status = response.status
        if isinstance(response, GenericNack) and status == 0:
            status = c.ESME_RUNKNOWNERR
        if status == 0:
            job.smsc_ids.append(response.message_id)
            self.stats.submitted += 1
        else:
            self.stats.errors += 1
            self.stats.last_error = f"0x{status:02X} {c.status_description(status)}"
            if status in c.THROTTLE_STATUSES:
                self.stats.throttled += 1
                self._pacer.throttled(trio.current_time())
            if job.status == 0 or status not in c.TRANSIENT_STATUSES:
                job.status = status
        job.answered += 1
        return Submitted(job, job.status, self.name) if job.answered == len(job.parts) else None

    async def _sender(self) -> None:
        """Keep the window full at the operator's pace; flush when about to wait."""
        session, pacer = self._session, self._pacer
        while not self._stopping:
            if self.paused:
                await self._flush()
                await trio.sleep(0.2)
                continue
            try:
                job = self._jobs.receive_nowait()
            except trio.WouldBlock:
                await self._flush()
                try:
                    job = await self._jobs.receive()
                except trio.EndOfChannel:
                    return
            except trio.EndOfChannel:
                return
            if reason := self._veto_reason(job):
                await self._vetoed(job, reason)
                continue
            self._current = job
            deadline = trio.current_time() + self._timeout
            for i, part in enumerate(job.parts):
                while session.window_free <= 0:
                    self._window_open = trio.Event()  # before any await: no lost wake-up
                    await self._flush()
                    if session.window_free <= 0:
                        await self._window_open.wait()
                while True:
                    now = trio.current_time()
                    t = pacer.next_time(now)
                    if t <= now:
                        pacer.take(now)
                        break
                    await self._flush()
                    await trio.sleep_until(t)
                # again, after waiting for the pace
                if i == 0 and (reason := self._veto_reason(job)):
                    await self._vetoed(job, reason)
                    self._current = None
                    break
                sent = session.send(part)
                self._pending[sent.sequence] = (job, deadline)
                self._current = None
            self.stats.window_used = len(self._pending)

    def _veto_reason(self, job: Job) -> str:
        """Why the service says no at the last moment (a STOP, a window that closed), or ""."""
        return self._veto(job) if self._veto is not None else ""

    async def _vetoed(self, job: Job, reason: str) -> None:
        await self._outcomes.send(Vetoed(job, reason, self.name))

    async def _keepalive(self) -> None:
        """enquire_link on idleness; response timeouts reset the bind."""
        tick = min(1.0, self._idle / 2, self._timeout / 2)
        while True:
            await trio.sleep(tick)
            now = trio.current_time()
            if self._pending:
                seq = next(iter(self._pending))
                if now >= self._pending[seq][1]:
                    raise _Reset(f"no response to seq {seq} within {self._timeout:g}s")
            if now - self._last_rx >= self._idle:
                self._session.send(EnquireLink())
                await self._flush()
                if now - self._last_rx >= self._idle + self._timeout:
                    raise _Reset("no answer to enquire_link")
            await self._flush()

    async def _drain_and_unbind(self) -> None:
        """Wait for in-flight responses (bounded), then unbind and await unbind_resp."""
        with trio.move_on_after(self._timeout):
            while self._pending:
                self._window_open = trio.Event()
                await self._window_open.wait()
        with trio.CancelScope(shield=True), trio.move_on_after(min(5.0, self._timeout)):
            await self._state(BindState.UNBINDING)
            self._closed = trio.Event()
            self._session.send(Unbind())
            await self._flush()
            await self._closed.wait()

    async def _give_back(self) -> None:
        """After a connection ends: what was sent without a response is Lost."""
        current, self._current = self._current, None
        if current is not None:
            with trio.CancelScope(shield=True):
                await self._outcomes.send(Unsent(current, self.name))
        pending, self._pending = self._pending, {}
        seen: set[int] = set()
        for job, _ in pending.values():
            if id(job) not in seen:
                seen.add(id(job))
                with trio.CancelScope(shield=True):
                    await self._outcomes.send(Lost(job, self.stats.last_error, self.name))
        self.stats.window_used = 0

    # -- service calls ---------------------------------------------------

    def ack(self, inbound: Inbound, status: int = 0) -> bool:
        """Queue the answer to an inbound PDU once its effect is committed; flush() sends it.

        Only on the connection it came in on: after a reconnect the SMSC resends it.
        """
        if self._stream is None or inbound.connection != self._connections:
            return False
        self._session.respond(inbound.pdu, status)
        return True

    async def flush(self) -> None:
        """Send what is queued, if the link is still there."""
        if self._stream is not None:
            try:
                await self._flush()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass  # the connection's own tasks see it too and reconnect
            except _Reset:
                self.reset()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio.TooSlowError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, trio.BrokenResourceError) and cause is not None:
        return f"{text}: {_describe(cause)}"  # e.g. the TLS handshake's reason
    return text


def password_for(op: OperatorConfig, environ: Callable[[str], str | None]) -> str:
    if op.password_env:
        value = environ(op.password_env)
        if value is not None:
            return value
    return op.password
