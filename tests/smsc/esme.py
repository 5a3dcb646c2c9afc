"""A minimal test ESME over real TCP, on Volley's own sans-IO session."""

from __future__ import annotations

from typing import ClassVar

import trio

from engine.smpp import pdu as p
from engine.smpp.session import Role, Session


class Esme:
    opened: ClassVar[list[Esme]] = []

    def __init__(self, stream: trio.SocketStream, window: int = 1000) -> None:
        Esme.opened.append(self)
        self.stream = stream
        self.session = Session(Role.ESME, window=window)
        self.events: list = []

    @classmethod
    async def connect(cls, port: int, **kw: int) -> Esme:
        return cls(await trio.open_tcp_stream("127.0.0.1", port), **kw)

    async def send(self, pdu: p.Pdu) -> p.Pdu:
        sent = self.session.send(pdu)
        await self.flush()
        return sent

    async def flush(self) -> None:
        data = self.session.data_to_send()
        if data:
            await self.stream.send_all(data)

    async def read(self) -> list:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError
        events = self.session.receive_data(data)
        self.events += events
        return events

    async def wait_for(self, pred, timeout: float = 5.0):
        with trio.fail_after(timeout):
            while True:
                for i, ev in enumerate(self.events):
                    if pred(ev):
                        return self.events.pop(i)
                await self.read()

    async def bind(self, cls=p.BindTransceiver, system_id="volley", password="secret"):
        await self.send(cls(system_id=system_id, password=password))
        from engine.smpp.session import BindFailed, Bound

        return await self.wait_for(lambda e: isinstance(e, Bound | BindFailed))

    async def aclose(self) -> None:
        await self.stream.aclose()
