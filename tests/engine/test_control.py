"""The control socket against a running engine and the simulator (real TCP, real LMDB)."""

import os
import socket
import stat

import msgspec
import pytest
import trio
import trio.testing

from engine.control import protocol as p
from engine.control.client import Client, ControlUnavailable
from engine.control.server import ControlError, claim_path
from engine.service import Engine

from .helpers import enqueue, make_config, operator, simulator

pytestmark = pytest.mark.trio

RU = [f"+7916{i:07d}" for i in range(400)]


class Peer:
    """A trio client speaking raw frames, so tests can also send garbage."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.reader = p.FrameReader()
        self.ready: list[bytes] = []

    async def send(self, msg: p.Base) -> None:
        await self.stream.send_all(p.frame(msg))

    async def reply(self, skip_snapshots: bool = True) -> p.Reply:
        while True:
            while not self.ready:
                data = await self.stream.receive_some(65536)
                assert data, "the engine closed the connection"
                self.ready += self.reader.feed(data)
            reply = p.decode_reply(self.ready.pop(0))
            if not (skip_snapshots and isinstance(reply, p.Snapshot)):
                return reply

    async def ask(self, msg: p.Base) -> p.Reply:
        await self.send(msg)
        return await self.reply()


async def running(nursery, tmp_path, n=0, **op):
    smsc = await simulator(nursery)
    control = f'[control]\nsocket = "{tmp_path / "volley.sock"}"'
    cfg = make_config(tmp_path, operator("local", smsc.port, **({"tps": 5000} | op)), control)
    store = enqueue(cfg, RU[:n])
    path = cfg.resolve(cfg.control.socket)
    engine = Engine(cfg, store, control=path)
    await nursery.start(engine.run)
    peer = Peer(await trio.open_unix_socket(str(path)))
    return smsc, engine, store, peer


async def finish(engine, store, peer):
    await peer.stream.aclose()
    await engine.stop()
    await engine.stopped.wait()
    store.close()


def add(engine, numbers, batch):
    from engine.store import NewMessage

    new = [NewMessage(to=n, text="hi", sender="S", ext_id=n, route="local") for n in numbers]
    engine.store.enqueue(batch, new, now=engine.now())


async def test_the_socket_is_private_and_answers_hello(nursery, tmp_path):
    _, engine, store, peer = await running(nursery, tmp_path)
    assert stat.S_IMODE(os.stat(engine.control).st_mode) == 0o600
    assert await peer.ask(p.Hello()) == p.Hello(client="volley-engine")
    reply = await peer.ask(p.Hello(version=99))
    assert isinstance(reply, p.Error)
    assert "version 99" in reply.message
    await finish(engine, store, peer)


async def test_malformed_requests_get_an_error_and_the_connection_lives_on(nursery, tmp_path):
    _, engine, store, peer = await running(nursery, tmp_path)
    body = msgspec.msgpack.encode({"type": "Explode"})
    await peer.stream.send_all(p.LENGTH.pack(len(body)) + body)
    reply = await peer.reply()
    assert isinstance(reply, p.Error)
    assert "malformed request" in reply.message
    await peer.stream.send_all(p.LENGTH.pack(3) + b"\xc1\xc1\xc1")
    assert isinstance(await peer.reply(), p.Error)
    reply = await peer.ask(p.SetTps(operator="nobody", tps=5))
    assert isinstance(reply, p.Error)
    assert "no operator 'nobody'" in reply.message
    assert await peer.ask(p.Hello()) == p.Hello(client="volley-engine")
    await peer.stream.send_all(p.LENGTH.pack(p.MAX_FRAME + 1))
    assert "exceeds" in (await peer.reply()).message
    assert await peer.stream.receive_some(10) == b""  # and that one ends the connection
    await finish(engine, store, peer)


async def test_a_second_engine_is_refused_and_a_stale_socket_removed(nursery, tmp_path):
    _, engine, store, peer = await running(nursery, tmp_path)
    with pytest.raises(ControlError, match="another engine is running"):
        claim_path(engine.control)
    await finish(engine, store, peer)
    assert not engine.control.exists()  # removed at stop
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(engine.control))  # bound, never listening: what a killed engine leaves
    stale.close()
    claim_path(engine.control)
    assert not engine.control.exists()
    engine.control.write_text("not a socket")
    with pytest.raises(ControlError, match="not a socket"):
        claim_path(engine.control)


async def test_a_paused_operator_sends_nothing_until_resumed(nursery, tmp_path):
    smsc, engine, store, peer = await running(nursery, tmp_path, tps=200)
    assert isinstance(await peer.ask(p.Pause(operator="local")), p.Ok)
    add(engine, RU[:50], batch="later")
    await trio.sleep(0.6)
    assert smsc.counters["submit_ok"] == 0
    await peer.send(p.Subscribe(interval=0.1))
    snap = await peer.reply(skip_snapshots=False)
    assert isinstance(snap, p.Snapshot)
    assert snap.operators[0].paused and snap.binds[0].paused
    assert snap.states["queued"] == 50
    assert any("operator local: paused" in e for e in snap.events)
    assert isinstance(await peer.ask(p.Resume(operator="local")), p.Ok)
    with trio.fail_after(10):
        while smsc.counters["submit_ok"] < 50:
            await trio.sleep(0.05)
    await finish(engine, store, peer)


async def test_a_paused_batch_waits_while_others_go(nursery, tmp_path):
    smsc, engine, store, peer = await running(nursery, tmp_path)
    assert isinstance(await peer.ask(p.Pause(operator="local")), p.Ok)
    add(engine, RU[:30], batch="held")
    add(engine, RU[100:120], batch="free")
    reply = await peer.ask(p.Pause(batch="held"))
    assert reply == p.Ok(detail="batch held: paused (30 queued message(s))")
    await peer.ask(p.Resume(operator="local"))
    with trio.fail_after(10):
        while smsc.counters["submit_ok"] < 20:
            await trio.sleep(0.05)
    await trio.sleep(0.3)
    assert smsc.counters["submit_ok"] == 20
    assert isinstance(await peer.ask(p.Resume(batch="held")), p.Ok)
    with trio.fail_after(10):
        while smsc.counters["submit_ok"] < 50:
            await trio.sleep(0.05)
    await finish(engine, store, peer)


async def test_a_tps_change_shows_in_the_simulators_arrival_rate(nursery, tmp_path):
    smsc, engine, store, peer = await running(nursery, tmp_path, n=400, tps=20)

    async def arrivals(seconds):
        before = smsc.counters["submit_ok"]
        await trio.sleep(seconds)
        return smsc.counters["submit_ok"] - before

    await trio.sleep(1.0)  # past the first second's burst
    slow = await arrivals(1.0)
    reply = await peer.ask(p.SetTps(operator="local", tps=200))
    assert reply == p.Ok(detail="operator local: tps set to 200")
    await trio.sleep(0.2)
    fast = await arrivals(1.0)
    assert slow <= 21
    assert fast >= 5 * slow
    await finish(engine, store, peer)


async def test_stop_number_reconnect_and_drain(nursery, tmp_path):
    smsc, engine, store, peer = await running(nursery, tmp_path)
    reply = await peer.ask(p.StopNumber(number="8 916 000-00-01", reason="complaint"))
    assert reply == p.Ok(detail="+79160000001 stop-listed (complaint)")
    assert store.is_stopped("+79160000001")
    assert isinstance(await peer.ask(p.StopNumber(number="12")), p.Error)
    with trio.fail_after(5):
        while not any(c.bound for c in smsc.connections):
            await trio.sleep(0.02)
    assert isinstance(await peer.ask(p.Reconnect(bind="local#0")), p.Ok)
    with trio.fail_after(10):
        while engine.operators["local"].binds[0].stats.reconnects < 1:
            await trio.sleep(0.05)
    assert isinstance(await peer.ask(p.Drain()), p.Ok)
    with trio.fail_after(15):
        await engine.stopped.wait()
    await peer.stream.aclose()
    store.close()


async def test_the_blocking_client_and_status_see_the_live_engine(nursery, tmp_path):
    from engine.commands.status import live

    _, engine, store, peer = await running(nursery, tmp_path, n=10)

    def ask():
        with Client.connect(engine.control) as client:
            return client.snapshot(), live(engine.cfg, {})

    snap, status = await trio.to_thread.run_sync(ask)
    assert snap.live and snap.pid == os.getpid()
    assert status["engine"]["running"]
    assert status["binds"][0]["name"] == "local#0"
    await finish(engine, store, peer)
    with pytest.raises(ControlUnavailable):
        Client.connect(engine.control)
