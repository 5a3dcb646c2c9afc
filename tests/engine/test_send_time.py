"""Issue 15 in the engine: routes at send time, failed credentials, held receipts, SetTps."""

import logging
import math
import time

import msgspec
import pytest
import trio

from engine import config
from engine.control import protocol as p
from engine.service import Engine
from engine.smpp import pdu
from engine.store import NewMessage, Store

from .helpers import make_config, operator, run_until_drained, simulator, states

pytestmark = pytest.mark.trio

RU = [f"+7916{i:07d}" for i in range(20)]
US = [f"+1415555{i:04d}" for i in range(5)]


def queue(cfg, numbers, route, batch="b"):
    store = Store.open(cfg.resolve(cfg.store.path))
    store.enqueue(
        batch,
        [NewMessage(to=n, text=f"hi {n}", sender="S", ext_id=n, route=route) for n in numbers],
        now=time.time(),
    )
    return store


async def test_messages_queued_on_an_old_route_go_by_the_running_config(nursery, tmp_path):
    smsc = await simulator(nursery)
    cfg = make_config(tmp_path, operator("renamed", smsc.port, tps=5000))
    store = queue(cfg, RU[:10], route="gone")  # routed by a config that had "gone"
    store.enqueue(
        "c",
        [NewMessage(to=RU[10], text="x", sender="S", ext_id="x", route="")],
        now=time.time(),
    )
    engine = await run_until_drained(cfg, store)
    assert engine.stuck == ""
    assert states(store) == {"delivered": 11}
    assert store.counts().unroutable == 0
    store.close()


async def test_a_prefix_moved_to_another_operator_takes_effect_on_claim(nursery, tmp_path):
    a, b = await simulator(nursery), await simulator(nursery)
    ops = operator("a", a.port, tps=5000) + operator("b", b.port, prefixes=["+7916"], tps=5000)
    cfg = make_config(tmp_path, ops)
    store = queue(cfg, RU[:10], route="a")
    # the store was routed with this very table: only the claim can notice
    from engine import routing

    store.reroute(lambda n: "a", table=routing.table(cfg.operators))
    engine = await run_until_drained(cfg, store)
    assert a.counters["submit_ok"] == 0 and b.counters["submit_ok"] == 10
    assert engine.stuck == "" and states(store) == {"delivered": 10}
    store.close()


async def test_unroutable_messages_end_the_drain_with_their_count(nursery, tmp_path, caplog):
    smsc = await simulator(nursery)
    cfg = make_config(tmp_path, operator("ru", smsc.port, prefixes=["+7"], tps=5000))
    store = queue(cfg, RU[:5] + US, route="old-default")
    with caplog.at_level(logging.WARNING, logger="volley"):
        engine = await run_until_drained(cfg, store)
    assert engine.stuck == "not drained: 5 that no operator routes"
    assert states(store) == {"delivered": 5, "queued": 5}
    assert store.counts().unroutable == 5
    assert any("5 message(s) wait that no operator routes" in r.message for r in caplog.records)
    snap = await engine.snapshot()
    assert snap.unroutable == 5
    store.close()


async def test_failed_credentials_are_an_error_and_end_the_drain(nursery, tmp_path, caplog):
    smsc = await simulator(nursery, accounts={"volley": "pwGOOD1"})
    good = operator("good", smsc.port, prefixes=["+1"], tps=5000)
    bad = operator("bad", smsc.port, tps=5000)
    cfg = make_config(
        tmp_path,
        good.replace('"secret"', '"pwGOOD1"') + bad.replace('"secret"', '"pwBAD12"'),
    )
    store = queue(cfg, US[:2], route="good")
    store.enqueue(
        "c", [NewMessage(to=n, text="x", sender="S", ext_id=n, route="bad") for n in RU[:4]],
        now=time.time(),
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="volley"):
        engine = await run_until_drained(cfg, store)
    assert engine.stuck == "not drained: 4 that only operator bad's failed binds could send"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("operator bad, bind bad#0 failed" in r.getMessage() for r in errors)
    assert states(store) == {"delivered": 2, "queued": 4}
    # no password anywhere: log, events, snapshot, store
    snap = msgspec.json.encode(await engine.snapshot()).decode()
    texts = [r.getMessage() for r in caplog.records] + list(engine.events) + [snap]
    texts += [repr(m) for m in store.messages()]
    assert not [t for t in texts if "pwBAD12" in t or "pwGOOD1" in t]
    raw = (tmp_path / "db" / "data.mdb").read_bytes()
    assert b"pwBAD12" not in raw and b"pwGOOD1" not in raw
    store.close()


async def test_credentials_from_the_environment_are_checked_without_echoing_them():
    cfg = config.parse(b'[[operators]]\nname = "a"\npassword_env = "A_PW"\n')
    with pytest.raises(config.ConfigError, match="password_env: the variable A_PW is not set"):
        config.resolve_password(cfg.operators[0], {})
    with pytest.raises(config.ConfigError, match="longer than 8 octets") as err:
        config.resolve_password(cfg.operators[0], {"A_PW": "123456789"})
    assert "123456789" not in str(err.value)
    assert config.resolve_password(cfg.operators[0], {"A_PW": "12345678"}) == "12345678"
    with pytest.raises(config.ConfigError, match=r"operators\[0\]\.password: longer") as err:
        config.parse(b'[[operators]]\nname = "a"\npassword = "hunter2hunter2"\n')
    assert "hunter2" not in str(err.value)


async def test_an_unset_password_env_stops_the_engine_before_it_starts(tmp_path):
    cfg = make_config(tmp_path, '[[operators]]\nname = "a"\npassword_env = "NOT_SET_15"\n')
    store = Store.open(cfg.resolve(cfg.store.path))
    with pytest.raises(config.ConfigError, match="NOT_SET_15 is not set"):
        Engine(cfg, store)
    store.close()


async def test_receipts_past_the_hold_limit_are_stored_as_unmatched(nursery, tmp_path):
    smsc = await simulator(nursery)
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=2000))
    store = Store.open(cfg.resolve(cfg.store.path))
    engine = Engine(cfg, store)
    engine.inbound.held.limit = 2
    async with trio.open_nursery() as inner:
        await inner.start(engine.run)
        with trio.fail_after(5):
            while not any(c.bound for c in smsc.connections):
                await trio.sleep(0.02)
        (conn,) = smsc.connections
        for i in range(5):
            conn.queue_deliver(
                pdu.DeliverSm(
                    esm_class=4,
                    short_message=f"id:dead{i:04x} stat:DELIVRD err:000".encode(),
                    receipted_message_id=f"dead{i:04x}",
                    message_state=2,
                )
            )
        with trio.fail_after(5):
            while smsc.counters["receipts_acked"] < 3:
                await trio.sleep(0.05)
        assert len(engine.inbound.held) == 2
        assert engine.totals["unmatched"] == 3
        assert store.counts().unmatched_receipts == 3
        await engine.stop()
    store.close()


@pytest.mark.parametrize("tps", [math.nan, math.inf, -1.0, 0.0, 1e8])
async def test_set_tps_refuses_what_the_pacer_cannot_keep(nursery, tmp_path, tps):
    smsc = await simulator(nursery)
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=100))
    store = Store.open(cfg.resolve(cfg.store.path))
    engine = Engine(cfg, store)
    await nursery.start(engine.run)
    reply = await engine.act(p.SetTps(operator="local", tps=tps), uid=0)
    assert isinstance(reply, p.Error) and "tps must be > 0 and at most 1,000,000" in reply.message
    pacer = engine.operators["local"].pacer
    assert (pacer.target, pacer.rate) == (100, 100)
    assert pacer.next_time(trio.current_time()) < math.inf
    ok = await engine.act(p.SetTps(operator="local", tps=250), uid=0)
    assert isinstance(ok, p.Ok) and pacer.target == 250
    await engine.stop()
    store.close()
