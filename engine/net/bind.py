"""One SMPP bind: the long-lived side of it, around one Connection at a time.

A Bind keeps a connection to its SMSC: it connects, hands each TCP session to
a :class:`~engine.net.connection.Connection` (which binds, sends, reads and
unbinds), and after the connection ends reconnects with exponential backoff
and jitter. It holds what outlives a connection: the stats, the pause flag,
the latency figures, the stop and reconnect requests. It never opens the
store: every outcome goes out on the ``outcomes`` channel as a msgspec Struct.

Whatever the SMSC sends, the worst that happens is that one connection ends
and the bind reconnects; a refusal of our credentials leaves the bind
``failed`` until an operator asks it to reconnect (or it is stopped).
"""

from __future__ import annotations

import enum
import random
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec
import trio

from engine.config import OperatorConfig, seconds
from engine.net.connection import Connection, Ended, describe
from engine.net.jobs import Job, JobQueue, Outcome, Report, StateChanged
from engine.sched.pacing import Pacer
from engine.smpp import constants as c


class LatencySink(Protocol):
    """Where a bind puts each submit's latency, from the write to the response (a list in
    benchmarks, engine.meters.LatencyMeter in the engine)."""

    def append(self, seconds: float, /) -> None: ...

    def __len__(self) -> int: ...


class BindState(enum.StrEnum):
    CONNECTING = "connecting"
    BINDING = "binding"
    BOUND = "bound"
    UNBINDING = "unbinding"
    BACKOFF = "backoff"
    FAILED = "failed"
    STOPPED = "stopped"


class BindStats(msgspec.Struct):
    state: str = BindState.CONNECTING
    submitted: int = 0
    errors: int = 0
    throttled: int = 0
    last_error: str = ""
    reconnects: int = 0
    receipts: int = 0
    window_used: int = 0


Connector = Callable[[], Awaitable[trio.abc.Stream]]


class Bind:
    def __init__(
        self,
        op: OperatorConfig,
        index: int,
        *,
        jobs: JobQueue | None,
        outcomes: trio.MemorySendChannel[Report],
        pacer: Pacer,
        mode: str | None = None,
        password: str = "",
        rng: random.Random | None = None,
        veto: Callable[[Job], str] | None = None,
        tls: ssl.SSLContext | None = None,
        connect: Connector | None = None,
    ) -> None:
        self.op = op
        self.mode = mode or op.bind
        self.name = f"{op.name}#{index}" + ("" if self.mode != "receiver" else "rx")
        self.jobs = jobs
        self.pacer = pacer
        self.password = password
        self.timeout = seconds(op.response_timeout)
        self.idle = seconds(op.enquire_link_interval)
        self.stats = BindStats()
        self.latencies: LatencySink | None = None
        self.resumed = trio.Event()
        self.resumed.set()
        self._paused = False
        self._outcomes = outcomes
        self._rng = rng or random.Random()
        self._veto = veto
        self._tls = tls if tls is not None or not op.tls else ssl.create_default_context()
        self._connect = connect or self._open_tcp
        self._connection: Connection | None = None
        self._stopping = False
        self._wake = trio.Event()  # a stop, or a reconnect request
        self._revived = False
        self.ended = trio.Event()  # run() has returned: stopped for good
        # parts of the messages answered whose outcome the engine has not committed yet:
        # they keep their window slots, so what a crash can resend stays within the window
        self.unsettled = 0

    # -- lifecycle -------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Bind] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(self)
        try:
            await self._keep_connected()
        finally:
            self.ended.set()

    async def _keep_connected(self) -> None:
        attempt = 0
        while not self._stopping:
            self._revived = False
            ended = await self._attempt()
            if self._stopping:
                break
            if ended.refused in c.CREDENTIAL_STATUSES:
                await self._failed(ended.reason)
                attempt = 0
                continue
            attempt = 1 if ended.bound or self._revived else attempt + 1
            self.stats.reconnects += 1
            delay = self._backoff(attempt)
            await self.set_state(BindState.BACKOFF, f"retry in {delay:.1f}s: {ended.reason}")
            await self._sleep(delay)
        await self.set_state(BindState.STOPPED)

    def stop(self) -> None:
        """Stop taking jobs; the connection drains, unbinds and closes."""
        self._stopping = True
        self._wake.set()
        if self._connection is not None:
            self._connection.stop()

    def reset(self) -> None:
        """Reconnect now: drop the connection, or end a backoff or a failure with a new attempt."""
        self._revived = True
        self._wake.set()
        if self._connection is not None:
            self._connection.abort("reconnect requested")

    @property
    def connection(self) -> Connection | None:
        """The live connection, if any (tests and diagnostics)."""
        return self._connection

    @property
    def paused(self) -> bool:
        return self._paused

    @paused.setter
    def paused(self, value: bool) -> None:
        self._paused = value
        if not value:
            self.resumed.set()
        elif self.resumed.is_set():
            self.resumed = trio.Event()

    async def _attempt(self) -> Ended:
        await self.set_state(BindState.CONNECTING)
        try:
            with trio.fail_after(seconds(self.op.connect_timeout)):
                stream = await self._connect()
        except Exception as exc:  # any failure to connect is this attempt's, nothing more
            ended = Ended(f"connect: {describe(exc)}")
        else:
            await self.set_state(BindState.BINDING)
            self._connection = Connection(self, stream)
            try:
                ended = await self._connection.run()
            finally:
                self._connection = None
        if not self._stopping:
            self.stats.last_error = ended.reason
        return ended

    async def _failed(self, reason: str) -> None:
        """The SMSC refused our credentials: wait for an operator's reconnect, or a stop."""
        await self.set_state(BindState.FAILED, reason)
        if not self._wake.is_set():
            await self._wake.wait()
        self._wake = trio.Event()

    async def _sleep(self, delay: float) -> None:
        with trio.move_on_after(delay):
            await self._wake.wait()
        if not self._stopping:
            self._wake = trio.Event()

    def _backoff(self, attempt: int) -> float:
        lo, hi = seconds(self.op.reconnect_min), seconds(self.op.reconnect_max)
        return min(hi, lo * 2 ** (attempt - 1)) * self._rng.uniform(0.5, 1.0)

    async def _open_tcp(self) -> trio.abc.Stream:
        tcp = await trio.open_tcp_stream(self.op.host, self.op.port)
        tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is None:
            return tcp
        return trio.SSLStream(tcp, self._tls, server_hostname=self.op.host)

    # -- what the connection asks of its bind ------------------------------------

    async def set_state(self, state: str, detail: str = "") -> None:
        self.stats.state = state
        await self._outcomes.send(StateChanged(self.name, state, detail))

    async def report(self, outcomes: list[Outcome]) -> None:
        await self._outcomes.send(outcomes)

    def settle(self, parts: int) -> None:
        """The engine committed the outcomes of ``parts`` answered parts: their slots free."""
        self.unsettled = max(0, self.unsettled - parts)
        if self._connection is not None:
            self._connection.window_opened()

    def vetoed(self, job: Job) -> str:
        """Why the engine says no at the last moment (a STOP, a window that closed), or ""."""
        return self._veto(job) if self._veto is not None else ""

    def observe_latency(self, seconds_: float) -> None:
        if self.latencies is not None and len(self.latencies) < 1_000_000:
            self.latencies.append(seconds_)
