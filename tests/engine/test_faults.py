"""A misbehaving SMSC (the simulator's --fault modes) against the whole engine, over real TCP.

Whatever one SMSC sends, the engine keeps running, the other operator keeps
delivering, and once drained nothing is in flight and every part of every
message reached the SMSC at least once.
"""

import json
import time
from collections import Counter

import pytest
import trio

from engine.routing import route_for
from engine.service import Engine
from engine.store import NewMessage, Store

from .helpers import make_config, operator, simulator, states

pytestmark = pytest.mark.trio

RU = [f"+7916{i:07d}" for i in range(40)]
RO = [f"+4072{i:07d}" for i in range(20)]
LONG = "Volley " * 60  # 3 GSM parts


def enqueue_mixed(cfg) -> tuple[Store, dict[str, int]]:
    """Every third message is three parts long; returns the store and parts per number."""
    store = Store.open(cfg.resolve(cfg.store.path))
    parts: dict[str, int] = {}
    msgs = []
    for i, n in enumerate(RU + RO):
        long = i % 3 == 0
        parts[n] = 3 if long else 1
        text = LONG if long else f"Hello {i}"
        route = route_for(n, cfg.operators)
        msgs.append(
            NewMessage(to=n, text=text, sender="Shop", ext_id=str(i), route=route, parts=parts[n])
        )
    store.enqueue("b", msgs, now=time.time())
    return store, parts


def arrived(record) -> Counter:
    """Parts recorded by the SMSC, per destination."""
    with open(record) as lines:
        return Counter(json.loads(line)["destination_addr"] for line in lines)


async def two_operators(nursery, tmp_path, fault, **bad):
    bad_smsc = await simulator(
        nursery,
        faults=frozenset({fault} - {"none"}),
        fault_every=7,
        record=str(tmp_path / "bad.jsonl"),
        **bad,
    )
    good_smsc = await simulator(nursery, record=str(tmp_path / "good.jsonl"))
    common = {
        "tps": 5000,
        "window": 8,
        "response_timeout": "1s",
        "enquire_link_interval": "1s",
        "reconnect_min": "0.05s",
        "reconnect_max": "0.2s",
    }
    ops = operator("bad", bad_smsc.port, prefixes=["+7"], **common) + operator(
        "good", good_smsc.port, prefixes=["+40"], **common
    )
    extra = '[defaults]\nreceipt_timeout = "3s"\n'
    return bad_smsc, good_smsc, make_config(tmp_path, ops, extra)


@pytest.mark.parametrize(
    ("fault", "unknown"),
    [
        ("wrong-response", False),
        ("cut", False),
        ("empty-id", True),
        ("blank-id", True),
        ("long-id", True),
        ("receipt-blank-id", True),
        ("receipt-long-id", True),
        ("unknown-pdus", False),
    ],
)
async def test_a_misbehaving_smsc_costs_only_its_own_connection(nursery, tmp_path, fault, unknown):
    bad_smsc, good_smsc, cfg = await two_operators(nursery, tmp_path, fault)
    store, parts = enqueue_mixed(cfg)
    engine = Engine(cfg, store)
    with trio.fail_after(30):
        await engine.run(until_drained=True)
    got = states(store)
    assert got.get("inflight", 0) == 0 and got.get("queued", 0) == 0
    assert sum(got.values()) == len(RU) + len(RO)
    assert good_smsc.counters["submit_ok"] == sum(parts[n] for n in RO)
    assert bad_smsc.faults.struck[fault] > 0
    bad_arrivals, good_arrivals = arrived(tmp_path / "bad.jsonl"), arrived(tmp_path / "good.jsonl")
    for n in RU:
        assert bad_arrivals[n.removeprefix("+")] >= parts[n], n
    for n in RO:
        assert good_arrivals[n.removeprefix("+")] == parts[n], n
    if unknown:
        assert got.get("unknown", 0) > 0
        assert set(got) <= {"delivered", "unknown"}
    else:
        assert got == {"delivered": len(RU) + len(RO)}
    if fault == "unknown-pdus":
        assert bad_smsc.counters["nacks_received"] >= 2  # one for each PDU it does not take
    store.close()


async def test_an_mo_in_the_same_read_as_bind_resp_is_stored_and_answered(nursery, tmp_path):
    bad_smsc, _, cfg = await two_operators(
        nursery, tmp_path, "mo-on-bind", mo_from="+79169999999", mo_text="hello there"
    )
    store, _ = enqueue_mixed(cfg)
    engine = Engine(cfg, store)
    with trio.fail_after(30):
        await engine.run(until_drained=True)
    mos = store.list_mo()
    assert mos and mos[0].source == "+79169999999" and mos[0].text == "hello there"
    assert bad_smsc.faults.struck["mo-on-bind"] >= 1
    assert states(store) == {"delivered": len(RU) + len(RO)}
    store.close()


async def test_a_trickling_smsc_is_reset_while_the_other_operator_delivers(nursery, tmp_path):
    _, good_smsc, cfg = await two_operators(nursery, tmp_path, "trickle")
    store, parts = enqueue_mixed(cfg)
    engine = Engine(cfg, store)
    async with trio.open_nursery() as inner:
        await inner.start(engine.run)
        with trio.fail_after(20):
            while good_smsc.counters["submit_ok"] < sum(parts[n] for n in RO):
                await trio.sleep(0.05)
            bad = engine.operators["bad"].binds[0]
            while bad.stats.reconnects < 1:
                await trio.sleep(0.05)
        assert "enquire_link" in bad.stats.last_error or "no response" in bad.stats.last_error
        await engine.stop()
    assert states(store).get("inflight", 0) == 0
    store.close()


async def test_two_smscs_that_give_the_same_ids_never_cross_their_receipts(nursery, tmp_path):
    """Message ids are unique per SMSC only (both simulators here count from the same start)."""
    _, _, cfg = await two_operators(nursery, tmp_path, "none")
    store, _ = enqueue_mixed(cfg)
    engine = Engine(cfg, store)
    with trio.fail_after(30):
        await engine.run(until_drained=True)
    assert states(store) == {"delivered": len(RU) + len(RO)}
    ids = [set(m.smsc_ids) for m in store.messages()]
    assert any(a & b for a in ids for b in ids if a is not b)  # the same ids, both SMSCs
    store.close()
