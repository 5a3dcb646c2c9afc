"""A bind under test, wired to scripted SMSCs over trio's in-memory streams.

h11's ConnectionPair idea one level up: the bind's connector hands it one end
of a ``memory_stream_pair`` and the test drives an SMSC-role Session on the
other end, PDU by PDU, under MockClock.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

import trio
import trio.testing

from engine import config
from engine.net.bind import Bind
from engine.net.jobs import Job, JobQueue, Outcome, Submitted
from engine.sched.pacing import Pacer
from engine.smpp import codec
from engine.smpp import pdu as p
from engine.smpp.encode import encode_body
from engine.smpp.session import RequestReceived, ResponseReceived, Role, Session


class Peer:
    """The SMSC end of one connection."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.session = Session(Role.SMSC, window=10_000)
        self.submits: list[p.SubmitSm] = []  # received, not yet answered
        self.seen: list[p.Pdu] = []  # every request received, in order
        self.responses: list[p.Pdu] = []  # responses to what this peer sent
        self.raw = b""  # every byte received
        self._decoder = codec.Decoder()
        self.pdus: list[p.Pdu] = []  # every PDU received, decoded on its own

    async def read(self) -> bool:
        """One read; False when the bind closed its end."""
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        if not data:
            return False
        self.raw += data
        self.pdus += [x for x in self._decoder.feed(data) if isinstance(x, p.Pdu)]
        for ev in self.session.receive_data(data):
            if isinstance(ev, RequestReceived):
                self.seen.append(ev.pdu)
                if isinstance(ev.pdu, p.SubmitSm):
                    self.submits.append(ev.pdu)
            elif isinstance(ev, ResponseReceived):
                self.responses.append(ev.response)
        await self.flush()
        return True

    async def read_to_end(self) -> None:
        while await self.read():
            pass

    def responses_seen(self) -> list[p.Pdu]:
        """Every response the bind sent this peer (to requests sent raw or through the session)."""
        return [x for x in self.pdus if x.command_id & 0x80000000]

    async def read_until(self, done: Any) -> None:
        while not done():
            if not await self.read():
                raise AssertionError("the bind closed the connection")

    async def accept_bind(self, status: int = 0, then: bytes = b"") -> p.Pdu:
        """Answer the bind request; ``then``: more bytes in the same write."""
        await self.read_until(lambda: self.seen)
        req = self.seen[0]
        self.session.respond(req, status, system_id="SIM")
        await self.send(self.session.data_to_send() + then)
        return req

    async def wait_submits(self, n: int) -> list[p.SubmitSm]:
        await self.read_until(lambda: len(self.submits) >= n)
        return self.submits[:n]

    def answer(self, req: p.Pdu, status: int = 0, message_id: str | bytes | None = None) -> None:
        """Respond; a ``bytes`` message_id goes out as is (what no session would encode)."""
        mid = f"id{req.sequence}" if message_id is None else message_id
        if isinstance(mid, bytes):
            body = mid + b"\0"
            header = codec.HEADER.pack(
                16 + len(body), p.SubmitSmResp.command_id, status, req.sequence
            )
            self.session.expire(req.sequence)
            self.session._out.append(header + body)
        else:
            self.session.respond(req, status, message_id=mid if status == 0 else "")
        if req in self.submits:
            self.submits.remove(req)

    async def send(self, data: bytes) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.stream.send_all(data)

    async def flush(self) -> None:
        data = self.session.data_to_send()
        if data:
            await self.send(data)

    async def cut(self) -> None:
        await self.stream.aclose()


def raw(pdu: p.Pdu) -> bytes:
    return codec.encode(pdu)


def operator(**kw: Any) -> config.OperatorConfig:
    values = {
        "name": "op",
        "window": 10,
        "tps": 1000.0,
        "response_timeout": "1s",
        "enquire_link_interval": "5s",
        "reconnect_min": "0.1s",
        "reconnect_max": "0.2s",
        **kw,
    }
    return config.OperatorConfig(**values)


class Harness:
    """A Bind whose every connection is a Peer the test takes from :meth:`peer`."""

    def __init__(
        self, op: config.OperatorConfig | None = None, *, commit: bool = True, **bind_kw: Any
    ) -> None:
        self.op = op or operator()
        self.commit = commit  # settle answered messages at once, as a committing engine would
        self.queue = JobQueue(1000)
        self._outcomes_in, self._outcomes = trio.open_memory_channel[Any](10_000)
        self._peers_in, self._peers = trio.open_memory_channel[Peer](100)
        self.connects = 0
        self.pacer = bind_kw.pop("pacer", None) or Pacer(self.op.tps)
        self.bind = Bind(
            self.op,
            0,
            jobs=self.queue,
            outcomes=self._outcomes_in,
            pacer=self.pacer,
            rng=random.Random(1),
            connect=self._connect,
            **bind_kw,
        )
        self.seen: list[Outcome] = []

    async def _connect(self) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()
        self.connects += 1
        await self._peers_in.send(Peer(server))
        return client

    async def start(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._engine)
        await nursery.start(self.bind.run)

    async def _engine(self) -> None:
        """What the engine does with reports here: keep them, and commit at once (the
        answered parts' window slots free)."""
        async for report in self._outcomes:
            got = report if isinstance(report, list) else [report]
            self.seen.extend(got)
            answered = sum(len(o.job.parts) for o in got if isinstance(o, Submitted))
            if answered and self.commit:
                self.bind.settle(answered)

    async def peer(self, *, bound: bool = True) -> Peer:
        peer = await self._peers.receive()
        if bound:
            await peer.accept_bind()
        return peer

    def send_job(self, msg_id: int, parts: int = 1, **kw: Any) -> Job:
        job = Job(
            msg_id,
            tuple(
                encode_body(
                    p.SubmitSm(destination_addr=f"7916{msg_id:07d}", short_message=b"part%d" % i)
                )
                for i in range(parts)
            ),
            **kw,
        )
        self.queue.put([job])
        return job

    def outcomes(self, kinds: tuple[type, ...] = ()) -> list[Any]:
        """Take what was reported (only of ``kinds``, if given; the rest stays), flattened."""
        taken = [o for o in self.seen if not kinds or isinstance(o, kinds)]
        self.seen = [o for o in self.seen if kinds and not isinstance(o, kinds)]
        return taken

    async def settle(self, seconds: float = 0.001) -> None:
        """Under an autojump MockClock: let every task run until all wait, ``seconds`` on."""
        await trio.sleep(seconds)
