"""The engine against the simulator over real TCP on 127.0.0.1."""

from functools import partial

import pytest
import trio

from engine.service import Engine

from .helpers import enqueue, make_config, operator, run_until_drained, simulator, states

pytestmark = pytest.mark.trio

RU = [f"+7916{i:07d}" for i in range(200)]
RO = [f"+4072{i:07d}" for i in range(100)]


@pytest.mark.parametrize("path", ["compiled", "python"])
async def test_everything_is_delivered_and_the_counts_agree(nursery, tmp_path, monkeypatch, path):
    from engine.smpp import constants as c
    from engine.smpp import fastpath

    if path == "python":  # as on a machine where engine/smpp/_speedups.c was not built
        monkeypatch.setitem(fastpath.FAST, c.DELIVER_SM, fastpath.deliver_sm)
    smsc = await simulator(nursery)
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=5000, window=32))
    store = enqueue(cfg, RU)
    engine = await run_until_drained(cfg, store)
    assert states(store) == {"delivered": 200}
    assert smsc.counters["submit_ok"] == 200
    assert smsc.counters["receipts_acked"] == 200
    assert engine.totals["submitted"] == 200
    store.close()


async def test_window_is_never_exceeded(nursery, tmp_path):
    smsc = await simulator(nursery, response_delay=0.05, receipts=False)
    cfg = make_config(
        tmp_path, operator("local", smsc.port, tps=5000, window=5, registered_delivery=False)
    )
    store = enqueue(cfg, RU[:60])
    engine = Engine(cfg, store)
    peak = 0

    async def watch():
        nonlocal peak
        while True:
            peak = max(peak, *(b.stats.window_used for b in engine.operators["local"].binds))
            await trio.sleep(0.005)

    nursery.start_soon(watch)
    with trio.fail_after(20):
        await engine.run(until_drained=True)
    assert states(store) == {"sent": 60}
    assert 1 <= peak <= 5
    assert smsc.counters["max_delayed_responses"] == 5  # seen on the wire: the window, full
    store.close()


async def test_routing_by_prefix_and_failover_never_to_a_wrong_prefix(nursery, tmp_path):
    ru, world = await simulator(nursery), await simulator(nursery)
    ops = (
        operator("ru", ru.port, prefixes=["+7"], tps=5000)
        + operator("ro", 1, prefixes=["+40"], tps=5000, failover=["ru"], reconnect_min="0.1s")
        + operator("world", world.port, tps=5000)
    )
    cfg = make_config(tmp_path, ops)
    store = enqueue(cfg, RU[:50] + RO[:30])
    engine = Engine(cfg, store)
    async with trio.open_nursery() as inner:
        await inner.start(engine.run)
        with trio.fail_after(10):
            while store.counts().states["delivered"] < 50:
                await trio.sleep(0.05)
        await trio.sleep(0.5)
        await engine.stop()
    # ro is down; its failover "ru" does not accept +40, so those wait
    assert ru.counters["submit_ok"] == 50
    assert world.counters["submit_ok"] == 0
    waiting = store.counts().states
    assert waiting["queued"] + waiting["scheduled"] + waiting["inflight"] == 30
    store.close()


async def test_failover_to_an_operator_that_accepts(nursery, tmp_path):
    world = await simulator(nursery)
    ops = operator("ro", 1, prefixes=["+40"], failover=["world"], reconnect_min="0.1s") + operator(
        "world", world.port, tps=5000
    )
    cfg = make_config(tmp_path, ops)
    store = enqueue(cfg, RO[:30])
    await run_until_drained(cfg, store)
    assert world.counters["submit_ok"] == 30
    assert states(store) == {"delivered": 30}
    store.close()


async def test_reconnects_after_the_smsc_drops_the_connection(nursery, tmp_path):
    smsc = await simulator(nursery)
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=300, reconnect_min="0.05s"))
    store = enqueue(cfg, RU)
    engine = Engine(cfg, store)
    async with trio.open_nursery() as inner:
        await inner.start(partial(engine.run, until_drained=True))
        with trio.fail_after(10):
            while smsc.counters["submit_ok"] < 50:
                await trio.sleep(0.01)
        for conn in list(smsc.connections):
            await conn.stream.aclose()
        with trio.fail_after(20):
            await engine.stopped.wait()
    assert engine.operators["local"].binds[0].stats.reconnects >= 1
    assert states(store) == {"delivered": 200}
    assert 200 <= smsc.counters["submit_ok"] <= 200 + 64  # resend policy: at most one window
    store.close()


async def test_rejected_credentials_stop_and_alert(nursery, tmp_path):
    smsc = await simulator(nursery, accounts={"volley": "other"})
    cfg = make_config(tmp_path, operator("local", smsc.port))
    store = enqueue(cfg, RU[:10])
    engine = Engine(cfg, store)
    async with trio.open_nursery() as inner:
        await inner.start(engine.run)
        with trio.fail_after(5):
            while engine.operators["local"].binds[0].stats.state != "failed":
                await trio.sleep(0.01)
        await trio.sleep(0.3)
        inner.cancel_scope.cancel()
    bind = engine.operators["local"].binds[0]
    assert "0x0E" in bind.stats.last_error
    assert bind.stats.reconnects == 0
    assert smsc.counters["bind_refused"] == 1
    assert states(store) == {"queued": 10}
    store.close()


async def test_throttling_requeues_never_fails_and_the_rate_adapts(nursery, tmp_path):
    smsc = await simulator(nursery, throttle_tps=40)
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=200, window=10))
    store = enqueue(cfg, RU[:120])
    engine = await run_until_drained(cfg, store, timeout=30)
    assert states(store) == {"delivered": 120}
    assert smsc.counters["throttled"] > 0
    assert engine.operators["local"].pacer.throttles > 0
    assert engine.totals["failed"] == 0
    store.close()


async def test_permanent_errors_fail_with_the_status(nursery, tmp_path):
    smsc = await simulator(nursery, error_rate=1.0, error_status=0x0B)
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=1000))
    store = enqueue(cfg, RU[:5])
    await run_until_drained(cfg, store)
    assert states(store) == {"failed": 5}
    msg = store.get(1)
    assert msg.status == 0x0B
    assert "Invalid destination" in msg.reason or "0x0B" in msg.reason
    store.close()


async def test_response_timeout_marks_unknown_and_resets_the_bind(nursery, tmp_path):
    smsc = await simulator(nursery, response_delay=3.0, receipts=False)
    cfg = make_config(
        tmp_path,
        operator("local", smsc.port, tps=1000, response_timeout="0.3s", reconnect_min="0.05s"),
        extra='[store]\npath = "x"\non_crash_inflight = "hold"' if False else "",
    )
    cfg = cfg.__class__(
        **{
            **{f: getattr(cfg, f) for f in cfg.__struct_fields__},
            "store": cfg.store.__class__(path=cfg.store.path, on_crash_inflight="hold"),
        }
    )
    store = enqueue(cfg, RU[:3])
    await run_until_drained(cfg, store, timeout=15)
    assert states(store) == {"unknown": 3}
    assert "no response" in store.get(1).reason
    store.close()


async def test_graceful_stop_with_messages_in_flight(nursery, tmp_path):
    smsc = await simulator(nursery, response_delay=0.3)
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=1000, window=20))
    store = enqueue(cfg, RU)
    engine = Engine(cfg, store)
    async with trio.open_nursery() as inner:
        await inner.start(engine.run)
        with trio.fail_after(5):
            while not any(b.stats.window_used for b in engine.operators["local"].binds):
                await trio.sleep(0.01)
        await engine.stop()
    counts = states(store)
    assert counts.get("inflight", 0) == 0
    assert sum(counts.values()) == 200
    assert counts.get("sent", 0) + counts.get("delivered", 0) == smsc.counters["submit_ok"]
    store.close()
