"""The store of issue 16: bodies apart from status records, claim sets, tokens, check().

Each test runs on a real LMDB in tmp_path; Store.check() after each proves the
counters equal what they count and every pending message waits in one place.
"""

import lmdb
import pytest

from engine.store import (
    MarkSent,
    NewMessage,
    RecordMo,
    RecordReceipt,
    Requeue,
    Store,
    StoreError,
    StoreLock,
    sweeps,
)
from engine.store import campaign as camp
from engine.store import layout as L

NOW = 1_800_000_000.0


def msgs(n, start=0, route="op", **kw):
    return [
        NewMessage(to=f"+7916{i:07d}", text="hi", sender="S", ext_id=str(i), route=route, **kw)
        for i in range(start, start + n)
    ]


def receipt(smsc_id, state="delivered", stat="DELIVRD", err=0, at=NOW):
    return RecordReceipt(
        candidates=(smsc_id,), state=state, final=True, stat=stat, err=err,
        network_error=None, at=at,
    )  # fmt: skip


def states(store):
    return {k: v for k, v in store.counts().states.items() if v}


# -- what a message costs ------------------------------------------------------------


class _Counting:
    """An LMDB transaction that counts the calls a message costs: get, put, delete (on
    the transaction or a cursor) and each key of a getmulti or putmulti. Walking a cursor
    is not counted (as bench/store.py's floor does not)."""

    def __init__(self, txn, calls):
        self._txn, self._calls = txn, calls

    def get(self, *a, **k):
        self._calls["get"] += 1
        return self._txn.get(*a, **k)

    def put(self, *a, **k):
        self._calls["put"] += 1
        return self._txn.put(*a, **k)

    def delete(self, *a, **k):
        self._calls["delete"] += 1
        return self._txn.delete(*a, **k)

    def cursor(self, *a, **k):
        return _CountingCursor(self._txn.cursor(*a, **k), self._calls)

    def __getattr__(self, name):
        return getattr(self._txn, name)


class _CountingCursor:
    def __init__(self, cur, calls):
        self._cur, self._calls = cur, calls

    def delete(self):
        self._calls["delete"] += 1
        return self._cur.delete()

    def putmulti(self, items, *a, **k):
        items = list(items)
        self._calls["put"] += len(items)
        return self._cur.putmulti(items, *a, **k)

    def getmulti(self, keys, *a, **k):
        keys = list(keys)
        self._calls["get"] += len(keys)
        return self._cur.getmulti(keys, *a, **k)

    def __iter__(self):
        return iter(self._cur)

    def __getattr__(self, name):
        return getattr(self._cur, name)


class _CountingEnv:
    def __init__(self, env, calls):
        self._env, self._calls = env, calls

    def begin(self, *a, **k):
        env, calls = self._env, self._calls

        class Ctx:
            def __enter__(self):
                self.txn = env.begin(*a, **k)
                self.txn.__enter__()
                return _Counting(self.txn, calls)

            def __exit__(self, *exc):
                return self.txn.__exit__(*exc)

        return Ctx()

    def __getattr__(self, name):
        return getattr(self._env, name)


def test_claim_sent_and_a_final_receipt_cost_eight_lmdb_calls_a_message(store):
    """Against 17 before issue 16: the claim deletes the ready entry and reads the body
    and the number's record; mark-sent writes the SMSC id and the status; the receipt
    reads the SMSC id and the status and writes the status."""
    n = 512
    store.enqueue("b", msgs(n), now=NOW)
    store.stop([f"+7926{i:07d}" for i in range(10)], "opt-out", NOW)  # numbers exist
    calls = {"get": 0, "put": 0, "delete": 0}
    store.env = _CountingEnv(store.env, calls)
    phases = {}
    claimed = store.claim("op", n, NOW)
    phases["claim"] = dict(calls)
    store.apply([MarkSent(id=m.id, smsc_ids=[f"{m.id:x}"], at=NOW, token=m.token) for m in claimed])
    phases["sent"] = {k: calls[k] - phases["claim"][k] for k in calls}
    store.apply([receipt(f"{m.id:x}") for m in claimed])
    store.env = store.env._env
    total = sum(calls.values())
    per_message = {
        phase: round(sum(c.values()) / n, 2) for phase, c in phases.items()
    }  # fmt: skip
    assert per_message == {"claim": pytest.approx(3, abs=0.05), "sent": pytest.approx(2, abs=0.05)}
    assert total / n == pytest.approx(8, abs=0.1)  # per transaction: sets, counters
    assert states(store) == {"delivered": n}


# -- tokens and claims answered by others ----------------------------------------------


@pytest.mark.parametrize("smsc_id", ["a", "0123456789abcdef" * 2, "é" * 15, "x" * 32, "y" * 300])
def test_the_hot_path_writes_what_the_general_one_would(store, smsc_id):
    store.enqueue("b", msgs(1), now=NOW)
    (m,) = store.claim("op", 1, NOW)
    store.apply([MarkSent(id=m.id, smsc_ids=[smsc_id], at=NOW, operator="op1")])
    with store.env.begin() as txn:
        raw = txn.get(L.U64.pack(m.id), db=store.db["status"])
    assert raw[L.SIZE :] == L.pack_tail([smsc_id], b"", "")
    assert store.get(m.id).smsc_ids == [smsc_id]
    assert store.apply([receipt(smsc_id) for _ in range(1)])[0].detail == "unmatched"
    ok = RecordReceipt(candidates=(smsc_id,), state="delivered", final=True, stat="DELIVRD",
                       err=0, network_error=None, at=NOW, operator="op1")  # fmt: skip
    assert store.apply([ok])[0].ok


def test_a_token_from_an_earlier_claim_is_refused_as_stale(store):
    store.enqueue("b", msgs(1), now=NOW)
    (first,) = store.claim("op", 1, NOW)
    store.apply([Requeue(id=first.id, due=0, reason="throttled", token=first.token)])
    (again,) = store.claim("op", 1, NOW)
    assert again.token != first.token
    (late,) = store.apply([MarkSent(id=first.id, smsc_ids=["x"], at=NOW, token=first.token)])
    assert not late.ok and "stale" in late.detail
    assert store.get(first.id).state == "inflight"
    (ok,) = store.apply([MarkSent(id=again.id, smsc_ids=["x"], at=NOW, token=again.token)])
    assert ok.ok and store.get(again.id).state == "sent"


def test_a_claim_answered_through_another_store_object(tmp_path):
    """Tools and tests apply operations through their own Store: it reads the status."""
    path = tmp_path / "db"
    engine = Store.open(path)
    engine.enqueue("b", msgs(3), now=NOW)
    claimed = engine.claim("op", 3, NOW)
    engine.close()
    tool = Store.open(path)
    assert tool.get(claimed[0].id).updated == NOW  # in flight since its claim
    results = tool.apply(
        [
            MarkSent(id=claimed[0].id, smsc_ids=["a"], at=NOW + 1),
            Requeue(id=claimed[1].id, due=0, reason="x", retry=True),
        ]
    )
    assert [r.ok for r in results] == [True, True]
    tool.apply([receipt("a")])
    assert states(tool) == {"delivered": 1, "queued": 1, "inflight": 1}
    assert tool.get(claimed[1].id).attempts == 1
    tool.check()
    with StoreLock.acquire(path) as lock:
        assert tool.recover_inflight(lock) == 1  # only the one left in flight
    assert states(tool) == {"delivered": 1, "queued": 2}
    tool.check()
    tool.close()


def test_recovery_of_one_engine_process_leaves_what_another_claimed_since(tmp_path):
    """A claim set lives until its last id moves on: an id given back by process 1 and
    claimed again by process 2 is in both sets, and the newest claim is the one in flight."""
    path = tmp_path / "db"
    one = Store.open(path)
    one.owner = b"\x01"
    one.enqueue("b", msgs(3), now=NOW)
    a, b = one.claim("op", 2, NOW)
    one.apply([Requeue(id=a.id, due=0, reason="throttled")])
    one.close()  # process 1 dies with b in flight
    two = Store.open(path)
    two.owner = b"\x02"
    assert [m.id for m in two.claim("op", 5, NOW)] == [a.id, 3]
    two.close()  # process 2 runs on (its claims stay in flight)
    supervisor = Store.open(path)
    with StoreLock.acquire(path) as lock:
        assert supervisor.recover_inflight(lock, b"\x01") == 1
    assert [supervisor.get(i).state for i in (a.id, b.id, 3)] == ["inflight", "queued", "inflight"]
    supervisor.check()
    supervisor.close()


def test_an_aborted_load_keeps_what_the_batch_has_in_flight(store):
    store.enqueue("b", msgs(3), now=NOW)
    claimed = store.claim("op", 2, NOW)

    def more():
        yield from msgs(5, start=10)
        raise ValueError("line 6 is bad")

    with pytest.raises(ValueError, match="line 6"):
        store.enqueue("b", more(), now=NOW)
    assert states(store) == {"queued": 1, "inflight": 2}
    assert {m.id for m in store.messages()} == {1, 2, 3}
    store.apply([MarkSent(id=m.id, smsc_ids=[str(m.id)], at=NOW) for m in claimed])
    assert states(store) == {"queued": 1, "sent": 2}


def test_a_message_marked_sent_again_is_found_by_its_new_ids_only(store):
    store.enqueue("b", msgs(1), now=NOW)
    (m,) = store.claim("op", 1, NOW)
    store.apply([MarkSent(id=m.id, smsc_ids=["old"], at=NOW)])
    store.apply([MarkSent(id=m.id, smsc_ids=["new-1", "new-2"], at=NOW + 1)])
    assert store.apply([receipt("old")])[0].detail == "unmatched"
    store.apply([receipt("new-1"), receipt("new-2")])
    assert store.get(m.id).state == "delivered"
    assert store.awaiting_receipts() == 0


@pytest.mark.parametrize("via_another_store", [False, True])
def test_a_sent_message_given_back_and_sent_again_is_counted_once(tmp_path, via_another_store):
    """Nothing of the first sending (no receipt asked, two parts, their ids) stays with it."""
    s = Store.open(tmp_path / "db")
    s.enqueue("b", msgs(1), now=NOW)
    (m,) = s.claim("op", 1, NOW)
    s.apply([MarkSent(id=m.id, smsc_ids=["a1", "a2"], at=NOW, receipt=False)])
    s.apply([Requeue(id=m.id, due=0, reason="sent to the wrong operator")])
    (again,) = s.claim("op", 1, NOW)
    if via_another_store:
        s.close()
        s = Store.open(tmp_path / "db")
    s.apply([MarkSent(id=again.id, smsc_ids=["b1"], at=NOW + 1)])
    assert s.awaiting_receipts() == 1
    s.check()
    assert s.apply([receipt("a1")])[0].detail == "unmatched"
    s.apply([receipt("b1")])
    got = s.get(m.id)
    assert (got.state, got.smsc_ids, got.part_states) == ("delivered", ["b1"], ["delivered"])
    assert got.reason == "sent to the wrong operator"
    assert s.awaiting_receipts() == 0
    s.check()
    s.close()


def test_a_failure_then_a_delivery_to_the_same_number_in_one_commit(store):
    """The delivery was claimed before the number had failures: it still clears them."""
    same = [NewMessage(to="+79160000001", text="x", sender="S", ext_id=str(i)) for i in range(2)]
    store.enqueue("b", same, now=NOW)
    a, b = store.claim("default", 2, NOW)
    store.apply([MarkSent(id=m.id, smsc_ids=[f"s{m.id}"], at=NOW) for m in (a, b)])
    store.apply([receipt(f"s{a.id}", "undelivered", "UNDELIV", 1), receipt(f"s{b.id}")])
    assert store.history("+79160000001").outcomes == []


def test_parts_of_one_message_in_one_commit_take_the_worst_part(store):
    store.enqueue("b", msgs(1), now=NOW)
    (m,) = store.claim("op", 1, NOW)
    store.apply([MarkSent(id=m.id, smsc_ids=["p1", "p2", "p3"], at=NOW)])
    first = store.apply([receipt("p1", "undelivered", "UNDELIV", 1), receipt("p1")])
    assert [r.detail for r in first] == ["undelivered", "delivered"]  # a part told twice
    assert store.get(m.id).state == "sent"
    store.apply([receipt("p1", "undelivered", "UNDELIV", 1), receipt("p2"),
                 receipt("p3", "expired", "EXPIRED", 27)])  # fmt: skip
    got = store.get(m.id)
    assert (got.state, got.err) == ("undelivered", 1)
    assert got.part_states == ["undelivered", "delivered", "expired"]
    assert store.awaiting_receipts() == 0


def test_a_final_receipt_whose_state_is_not_final_is_refused_alone(store):
    store.enqueue("b", msgs(1), now=NOW)
    (m,) = store.claim("op", 1, NOW)
    store.apply([MarkSent(id=m.id, smsc_ids=["x"], at=NOW)])
    bogus = RecordReceipt(candidates=("x",), state="enroute", final=True, stat="ENROUTE",
                          err=None, network_error=None, at=NOW)  # fmt: skip
    results = store.apply([bogus, receipt("x")])
    assert [r.ok for r in results] == [False, True]
    assert "not a final state" in results[0].detail
    assert store.get(m.id).state == "delivered"


# -- the sets the sweeps walk -----------------------------------------------------------


def test_purge_and_the_receipt_timeout_walk_sets_within_their_limit(store):
    store.enqueue("b", msgs(5), now=NOW)
    claimed = store.claim("op", 5, NOW)
    store.apply([MarkSent(id=m.id, smsc_ids=[f"s{m.id}"], at=NOW) for m in claimed])
    store.apply([receipt("s1", at=NOW + 1)])  # moved on: the sweep skips it
    assert store.expire_sent(NOW + 10, NOW + 10, limit=2) == 2  # the limit counts ended ones
    store.check()
    assert store.expire_sent(NOW + 10, NOW + 10, limit=2) == 2
    assert store.expire_sent(NOW + 10, NOW + 10, limit=2) == 0
    assert states(store) == {"delivered": 1, "unknown": 4}
    assert store.awaiting_receipts() == 0
    assert [store.purge(NOW + 20, limit=2) for _ in range(4)] == [2, 2, 1, 0]
    assert states(store) == {}
    assert store.enqueue("b", msgs(5), now=NOW).duplicates == 5


def test_the_receipt_timeout_sweep_walks_every_old_set_in_chunks(store, monkeypatch):
    """Most sent messages have had their receipt: the sweep reads them all (in chunks),
    and its limit counts only those it ends."""
    monkeypatch.setattr(sweeps, "SWEEP_CHUNK", 3)
    store.enqueue("b", msgs(10), now=NOW)
    for m in store.claim("op", 10, NOW):  # ten sets, one message each
        store.apply([MarkSent(id=m.id, smsc_ids=[f"s{m.id}"], at=NOW + m.id / 1000)])
    store.apply([receipt(f"s{i}") for i in range(1, 10)])  # all but the last answered
    assert store.expire_sent(NOW + 10, NOW + 10, limit=5) == 1
    assert store.get(10).state == "unknown"
    with store.env.begin() as txn:
        assert txn.stat(store.db["sent"])["entries"] == 0


def test_apply_replays_after_the_map_grew_and_remembers_its_claims(tmp_path):
    s = Store.open(tmp_path / "db", map_size=1 << 20)
    s.enqueue("b", msgs(1500), now=NOW)
    claimed = s.claim("op", 1500, NOW)
    before = s.env.info()["map_size"]
    ids = ["x" * 150, "y" * 150, "z" * 150]
    s.apply([MarkSent(id=m.id, smsc_ids=[f"{m.id}-{i}" for i in ids], at=NOW) for m in claimed])
    assert s.env.info()["map_size"] > before  # a MapFullError was replayed
    assert states(s) == {"sent": 1500}
    assert s.in_flight == 0
    s.check()
    s.close()


# -- campaigns in the store's transactions ------------------------------------------------


def test_a_failing_campaign_write_leaves_nothing_of_its_chunk(tmp_path, monkeypatch):
    """engine/store/campaign.py writes in the chunk's transaction: if it fails, nothing of
    the chunk (nor of the load) is left."""
    s = Store.open(tmp_path / "db")

    def boom(tx, msg_id, new, remember):
        raise RuntimeError("campaign table full")

    monkeypatch.setattr(camp, "on_enqueue", boom)
    with pytest.raises(RuntimeError, match="full"):
        s.enqueue("b", msgs(3), now=NOW, campaign="c", segment="s1")
    assert list(s.messages()) == []
    assert s.batch_infos() == {}
    s.check()
    s.close()


def test_a_reply_is_attributed_to_the_step_whose_message_reached_the_number(store):
    store.enqueue("step1", msgs(2), now=NOW, campaign="c", segment="s1")
    claimed = store.claim("op", 2, NOW)
    store.apply([MarkSent(id=m.id, smsc_ids=[f"s{m.id}"], at=NOW) for m in claimed])
    store.enqueue("step2", msgs(1), now=NOW + 1, campaign="c", segment="s2")  # not sent yet
    (mo,) = store.apply([RecordMo(source="+79160000000", destination="S", text="hi", at=NOW + 9)])
    assert mo.ok
    (kept,) = store.list_mo()
    assert (kept.batch, kept.message) == ("step1", claimed[0].id)
    assert store.step_stats(["step1"])["step1"].replies == 1


# -- check() and the schema --------------------------------------------------------------


def _tamper(path, fn):
    env = lmdb.open(str(path), max_dbs=len(L.NAMES) + L.SPARE_DBS)
    with env.begin(write=True) as txn:
        fn(txn, {name: env.open_db(name.encode(), txn=txn) for name in L.NAMES})
    env.close()


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (
            lambda txn, db: txn.put(b"s\0queued", L.U64.pack(5), db=db["counters"]),
            "state counters",
        ),
        (lambda txn, db: txn.delete(b"op\0" + L.U64.pack(2), db=db["ready"]), "waits nowhere"),
        (
            lambda txn, db: txn.put(b"zzz", L.U64.pack(1) + b"\0+7", db=db["smsc"]),
            "SMSC id",
        ),
        (
            lambda txn, db: txn.put(L.U64.pack(1) + L.U64.pack(1), b"", db=db["sched"]),
            "sched entry of message 1",
        ),
    ],
)
def test_check_names_the_first_broken_invariant(tmp_path, damage, why):
    s = Store.open(tmp_path / "db")
    s.enqueue("b", msgs(3), now=NOW)
    s.check()
    s.close()
    _tamper(tmp_path / "db", damage)
    s = Store.open(tmp_path / "db")
    with pytest.raises(StoreError, match=why):
        s.check()
    s.close()


def test_a_store_of_the_previous_schema_is_refused_untouched(tmp_path):
    env = lmdb.open(str(tmp_path / "db"), max_dbs=20)
    with env.begin(write=True, db=env.open_db(b"meta")) as txn:
        txn.put(b"schema", b"1")
    env.open_db(b"msgs")
    env.close()
    with pytest.raises(StoreError, match="written with store schema 1, this Volley reads schema 2"):
        Store.open(tmp_path / "db")
    env = lmdb.open(str(tmp_path / "db"), max_dbs=20, readonly=True)
    with env.begin() as txn:
        names = {bytes(k) for k, _ in txn.cursor()}
    env.close()
    assert names == {b"meta", b"msgs"}  # nothing of the new layout was created in it
