"""Receipts back to the base: dead numbers pruned and skipped, STOP honoured, ids matched."""

import json
import time

import pytest
import trio

from engine import cli
from engine.routing import route_for
from engine.service import Engine
from engine.store import NewMessage
from engine.wiring import open_store

from .helpers import make_config, operator, run_until_drained, simulator, states

pytestmark = pytest.mark.trio

LIVE = [f"+7916{i:07d}" for i in range(40)]
DEAD = ["+79990000001", "+79990000002", "+79990000003"]


def campaign(store, cfg, batch, numbers, copies=1):
    return store.enqueue(
        batch,
        [
            NewMessage(
                to=n,
                text=f"{batch} hello",
                sender="Shop",
                ext_id=f"{n}-{c}",
                route=route_for(n, cfg.operators),
            )
            for c in range(copies)
            for n in numbers
        ],
        now=time.time(),
    )


async def test_dead_numbers_are_pruned_with_evidence_then_never_sent_again(nursery, tmp_path):
    smsc = await simulator(nursery, dead_numbers=frozenset(DEAD), receipt_id_form="other")
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=2000))
    store = open_store(cfg)
    campaign(store, cfg, "first", LIVE + DEAD, copies=2)  # two attempts each: two hard failures
    await run_until_drained(cfg, store)
    assert states(store) == {"delivered": 80, "undelivered": 6}  # ids matched across hex/decimal
    dead = dict(store.list_dead())
    assert set(dead) == set(DEAD)
    assert [(o.stat, o.err) for o in dead[DEAD[0]].evidence] == [("UNDELIV", 1), ("UNDELIV", 1)]

    sent_before = smsc.counters["submit_ok"]
    result = campaign(store, cfg, "second", LIVE + DEAD)
    assert result.dead == 3
    await run_until_drained(cfg, store)
    assert smsc.counters["submit_ok"] - sent_before == len(LIVE)  # nothing to the dead
    assert store.counts().batches["second"] == {"delivered": 40, "skipped": 3}
    assert {m.reason for m in store.messages("second") if m.state == "skipped"} == {"dead"}
    store.close()


async def test_stop_from_a_subscriber_stops_them_within_the_run(nursery, tmp_path):
    smsc = await simulator(nursery)
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=40))
    store = open_store(cfg)
    target = LIVE[-1]
    campaign(store, cfg, "b", LIVE)
    engine = Engine(cfg, store)
    async with trio.open_nursery() as inner:
        await inner.start(engine.run)
        with trio.fail_after(5):
            while smsc.counters["submit_ok"] < 3:
                await trio.sleep(0.02)
        assert await smsc.send_mo(target, "Стоп.") == 1  # any case, punctuation around
        assert await smsc.send_mo(LIVE[0], "не стоп, пишите ещё") == 1
        with trio.fail_after(20):
            while not await engine.drained():
                await trio.sleep(0.05)
        await engine.stop()
    assert dict(store.list_stopped())[target].reason == "MO 'Стоп.'"
    skipped = [m for m in store.messages("b") if m.state == "skipped"]
    assert [(m.to, m.reason) for m in skipped] == [(target, "stopped")]
    stop, chat = store.list_mo()
    assert (stop.source, stop.text, stop.stopped, stop.stop_rule) == (
        target,
        "Стоп.",
        True,
        "keyword СТОП",
    )
    assert (chat.stopped, chat.stop_rule) == (False, "not an opt-out: СТОП among other words")
    store.close()


async def test_numbers_cli_lists_and_exports_the_evidence(nursery, tmp_path, capsys):
    smsc = await simulator(nursery, dead_numbers=frozenset(DEAD[:1]))
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=2000))
    store = open_store(cfg)
    campaign(store, cfg, "b", DEAD[:1], copies=2)
    await run_until_drained(cfg, store)
    store.close()
    path = tmp_path / "engine.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "db"}"\n')
    assert cli.main(["numbers", "list", "--dead", "--json", "--config", str(path)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["number"] == DEAD[0]
    assert [e["stat"] for e in row["evidence"]] == ["UNDELIV", "UNDELIV"]
    out = tmp_path / "dead.csv"
    assert (
        cli.main(["numbers", "export", "--dead", "--output", str(out), "--config", str(path)]) == 0
    )
    assert out.read_text().splitlines()[0] == "number,pruned_at,expires,evidence"
    assert cli.main(["numbers", "restore", DEAD[0], "--config", str(path)]) == 0
    capsys.readouterr()
    assert cli.main(["numbers", "list", "--dead", "--json", "--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == []


async def test_receipts_before_their_responses_are_held_then_matched(nursery, tmp_path):
    smsc = await simulator(nursery, response_delay=0.3)  # the receipt overtakes the response
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=2000))
    store = open_store(cfg)
    campaign(store, cfg, "b", LIVE[:20])
    engine = await run_until_drained(cfg, store)
    assert states(store) == {"delivered": 20}
    assert store.counts().unmatched_receipts == 0
    assert engine.totals["unmatched"] == 0
    store.close()


async def test_duplicate_receipts_are_ignored(nursery, tmp_path):
    smsc = await simulator(nursery, receipt_resend_after=0.001, receipt_resend_max=2)
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=2000))
    store = open_store(cfg)
    campaign(store, cfg, "b", LIVE)
    await run_until_drained(cfg, store)
    assert smsc.counters["receipts_resent"] > 0
    assert states(store) == {"delivered": 40}
    assert store.counts().unmatched_receipts == 0
    store.close()


async def test_transmitter_plus_receiver_binds_get_their_receipts(nursery, tmp_path):
    smsc = await simulator(nursery)
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=2000, bind="transmitter"))
    store = open_store(cfg)
    campaign(store, cfg, "b", LIVE[:10])
    engine = await run_until_drained(cfg, store)
    assert [b.mode for b in engine.operators["local"].binds] == ["transmitter", "receiver"]
    assert states(store) == {"delivered": 10}
    store.close()


async def test_a_receipt_that_never_matches_is_counted_and_acknowledged(nursery, tmp_path):
    from engine.smpp import pdu as p

    smsc = await simulator(nursery)
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=2000))
    store = open_store(cfg)
    engine = Engine(cfg, store)
    engine.inbound.held.seconds = 2.5  # > the 1 s retry period
    async with trio.open_nursery() as inner:
        await inner.start(engine.run)
        with trio.fail_after(5):
            while not any(c.bound for c in smsc.connections):
                await trio.sleep(0.02)
        (conn,) = smsc.connections
        conn.queue_deliver(
            p.DeliverSm(
                esm_class=4,
                short_message=b"id:feedbeef stat:DELIVRD err:000",
                receipted_message_id="feedbeef",
                message_state=2,
            )
        )
        with trio.fail_after(10):
            while store.counts().unmatched_receipts == 0:
                await trio.sleep(0.1)
        with trio.fail_after(5):
            while smsc.counters["receipts_acked"] == 0:
                await trio.sleep(0.05)
        assert await engine.drained()
        await engine.stop()
    assert engine.totals["unmatched"] == 1
    (kept,) = store.list_unmatched()
    assert "feedbeef" in kept.candidates
    store.close()
