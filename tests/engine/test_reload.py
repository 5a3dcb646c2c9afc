"""Reload while sending: simulators on 127.0.0.1, a real LMDB, engine.toml on disk."""

import json

import pytest
import trio

from engine import config
from engine.reload import ReloadError
from engine.service import Engine

from .helpers import enqueue, operator, simulator, states

pytestmark = pytest.mark.trio


def write(tmp_path, operators: str, extra: str = "") -> config.Config | None:
    path = tmp_path / "engine.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "db"}"\n{extra}\n{operators}')
    try:
        return config.load(path)
    except config.ConfigError:
        return None  # a bad file, for the engine to refuse


async def start(cfg, store) -> Engine:
    engine = Engine(cfg, store)
    engine.config_path = str(cfg.resolve("engine.toml"))
    return engine


async def sent_some(store, n: int) -> None:
    with trio.fail_after(20):
        while sum(v for k, v in store.counts().states.items() if k != "queued") < n:
            await trio.sleep(0.02)


def recorded(path) -> list[str]:
    """The numbers the simulator got a submit_sm for, in E.164."""
    with open(path, encoding="utf-8") as f:
        return ["+" + json.loads(line)["destination_addr"].lstrip("+") for line in f]


async def test_good_and_bad_files_while_sending_keep_every_bind_and_message(nursery, tmp_path):
    a = await simulator(nursery, record=str(tmp_path / "a.jsonl"))
    b = await simulator(nursery, record=str(tmp_path / "b.jsonl"))
    numbers = [f"+7916{i:07d}" for i in range(3000)]
    first = operator("a", a.port, tps=4000, binds=2, window=64)
    cfg = write(tmp_path, first)
    store = enqueue(cfg, numbers)
    engine = await start(cfg, store)
    async with trio.open_nursery() as run:
        run.start_soon(lambda: engine.run(until_drained=True))
        await sent_some(store, 300)
        binds_before = a.counters["binds"]
        write(tmp_path, first.replace("window = 64", "window = 0"))
        with pytest.raises(ReloadError, match=r"operators\[0\]\.window: expected an integer >= 1"):
            await engine.reload()
        write(tmp_path, first + "nope = 1\n")
        with pytest.raises(ReloadError, match=r"operators.*nope: unknown key"):
            await engine.reload()
        assert engine.cfg is cfg  # refused: the running config stays
        good = first.replace("tps = 4000", "tps = 3000").replace("window = 64", "window = 32")
        good += operator("b", b.port, prefixes=["+7917"])
        write(tmp_path, good)
        detail = await engine.reload()
        assert "operator b added" in detail and "operator a: window, tps" in detail
        assert engine.operators["a"].pacer.target == 3000
        assert all(bind.connection.session.window == 32 for bind in engine.operators["a"].binds)
        await sent_some(store, 1500)
        assert a.counters["binds"] == binds_before  # a's binds were never dropped
        assert all(bind.stats.reconnects == 0 for bind in engine.operators["a"].binds)
        assert engine.binds["b#0"][1].stats.state == "bound"
    assert engine.stopped.is_set()
    assert sum(states(store).values()) == 3000
    assert set(states(store)) <= {"delivered", "undelivered", "expired", "rejected"}
    sent = recorded(tmp_path / "a.jsonl")
    assert sorted(sent) == sorted(numbers)  # each once: nothing lost, nothing twice
    assert recorded(tmp_path / "b.jsonl") == []
    store.check()
    store.close()


async def test_operators_added_and_removed_and_prefixes_moved(nursery, tmp_path):
    a = await simulator(nursery, record=str(tmp_path / "a.jsonl"))
    b = await simulator(nursery, record=str(tmp_path / "b.jsonl"))
    c = await simulator(nursery, record=str(tmp_path / "c.jsonl"))
    ops_a = operator("a", a.port, tps=2000, prefixes=["+7916"])
    ops_b = operator("b", b.port, tps=2000, prefixes=["+7917"], paused=True)
    cfg = write(tmp_path, ops_a + ops_b)
    to_a = [f"+7916{i:07d}" for i in range(200)]
    to_b = [f"+7917{i:07d}" for i in range(200)]
    store = enqueue(cfg, to_a + to_b)
    engine = await start(cfg, store)
    async with trio.open_nursery() as run:
        run.start_soon(engine.run)
        await sent_some(store, 200)
        assert store.ready_count("b") == 200  # b is paused: its messages wait
        moved = operator("a", a.port, tps=2000, prefixes=["+7916", "+7917"])
        write(tmp_path, moved + operator("c", c.port, prefixes=["+7918"]))
        detail = await engine.reload()
        assert "operator b removed" in detail and "operator c added" in detail
        assert "b" not in engine.operators
        with trio.fail_after(20):
            while sum(states(store).get(s, 0) for s in ("delivered", "undelivered")) < 400:
                await trio.sleep(0.05)
            while "b#0" in engine.binds or engine.binds["c#0"][1].stats.state != "bound":
                await trio.sleep(0.02)
        assert c.counters["binds"] == 1
        await engine.stop()
    assert sorted(recorded(tmp_path / "a.jsonl")) == sorted(to_a + to_b)
    assert recorded(tmp_path / "b.jsonl") == []
    store.check()
    store.close()


async def test_a_tps_set_live_survives_a_reload_that_leaves_it_alone(nursery, tmp_path):
    from engine.control import protocol as p

    a = await simulator(nursery)
    ops = operator("a", a.port, tps=100)
    cfg = write(tmp_path, ops)
    store = enqueue(cfg, [])
    engine = await start(cfg, store)
    async with trio.open_nursery() as run:
        run.start_soon(engine.run)
        await engine.act(p.SetTps(operator="a", tps=37), uid=0)
        await engine.act(p.Pause(operator="a"), uid=0)
        write(tmp_path, ops + "window = 8\n")
        reply = await engine.act(p.Reload(), uid=0)
        assert isinstance(reply, p.Ok) and "window" in reply.detail
        assert engine.operators["a"].pacer.target == 37  # the file's tps did not change
        assert engine.operators["a"].paused  # nor its paused
        write(tmp_path, ops.replace("tps = 100", "tps = 250") + "window = 8\n")
        await engine.act(p.Reload(), uid=0)
        assert engine.operators["a"].pacer.target == 250  # the file's changed: it wins
        write(tmp_path, ops.replace("tps = 100", 'tps = "fast"'))
        reply = await engine.act(p.Reload(), uid=0)
        assert isinstance(reply, p.Error) and "operators[0].tps" in reply.message
        assert reply.code == p.BAD_REQUEST
        await engine.stop()
    store.close()


async def test_new_connection_settings_reconnect_only_that_operator(nursery, tmp_path):
    a = await simulator(nursery)
    b = await simulator(nursery)
    b2 = await simulator(nursery)
    ops = operator("a", a.port, prefixes=["+7916"]) + operator("b", b.port)
    cfg = write(tmp_path, ops)
    store = enqueue(cfg, [])
    engine = await start(cfg, store)
    async with trio.open_nursery() as run:
        run.start_soon(engine.run)
        with trio.fail_after(10):
            while any(bd.stats.state != "bound" for _, bd in engine.binds.values()):
                await trio.sleep(0.02)
        write(tmp_path, ops.replace(f"port = {b.port}", f"port = {b2.port}"))
        assert "operator b reconnecting" in await engine.reload()
        with trio.fail_after(10):
            while b2.counters["binds"] < 1 or engine.binds["b#0"][1].stats.state != "bound":
                await trio.sleep(0.02)
        assert a.counters["binds"] == 1 and b.counters["binds"] == 1
        assert engine.binds["a#0"][1].stats.reconnects == 0
        await engine.stop()
    store.close()
