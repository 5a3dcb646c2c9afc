"""The LMDB store: every operation on a real environment in tmp_path."""

import lmdb
import pytest

from engine.store import (
    Fail,
    MarkSent,
    MarkUnknown,
    NewMessage,
    RecordMo,
    RecordReceipt,
    Requeue,
    Schedule,
    Skip,
    Store,
    StoreError,
    StoreLock,
)
from engine.store import store as store_mod

NOW = 1_800_000_000.0


def msgs(n, route="op", start=0, **kw):
    return [
        NewMessage(to=f"+7916{i:07d}", text="hi", sender="S", ext_id=str(i), route=route, **kw)
        for i in range(start, start + n)
    ]


def to_one(number, n):
    """``n`` messages to the same number."""
    return [
        NewMessage(to=number, text="x", sender="S", ext_id=str(i), route="op") for i in range(n)
    ]


def states(store):
    return {k: v for k, v in store.counts().states.items() if v}


def receipt(smsc_id, state="delivered", stat="DELIVRD", err=0, final=True):
    return RecordReceipt(
        candidates=(smsc_id,),
        state=state,
        final=final,
        stat=stat,
        err=err,
        network_error=None,
        at=NOW,
    )


def test_enqueue_is_idempotent_on_batch_and_id(store):
    assert store.enqueue("b", msgs(10), now=NOW).queued == 10
    again = store.enqueue("b", msgs(12), now=NOW)
    assert (again.queued, again.duplicates) == (2, 10)
    assert store.enqueue("other", msgs(3), now=NOW).queued == 3
    assert states(store) == {"queued": 15}
    assert store.counts().batches == {"b": {"queued": 12}, "other": {"queued": 3}}


def test_duplicate_ids_inside_one_file_are_queued_once(store):
    res = store.enqueue("b", msgs(3) + msgs(3), now=NOW)
    assert (res.queued, res.duplicates) == (3, 3)


def test_claim_in_order_per_route(store):
    store.enqueue("b", msgs(5, route="a") + msgs(5, route="z", start=5), now=NOW)
    first = store.claim("a", 3, NOW)
    assert [m.ext_id for m in first] == ["0", "1", "2"]
    assert all(m.state == "inflight" for m in first)
    assert [m.ext_id for m in store.claim("z", 10, NOW)] == ["5", "6", "7", "8", "9"]
    assert states(store) == {"queued": 2, "inflight": 8}


def test_sent_then_receipts_final_and_counters_agree(store):
    store.enqueue("b", msgs(3), now=NOW)
    claimed = store.claim("op", 3, NOW)
    store.apply([MarkSent(id=m.id, smsc_ids=[f"s{m.id}"], at=NOW) for m in claimed])
    results = store.apply(
        [receipt("s1"), receipt("s2", "undelivered", "UNDELIV", 1), receipt("nope")]
    )
    assert [r.detail for r in results] == ["delivered", "undelivered", "unmatched"]
    assert states(store) == {"sent": 1, "delivered": 1, "undelivered": 1}
    assert store.counts().unmatched_receipts == 1
    (kept,) = store.list_unmatched()
    assert (kept.candidates, kept.stat) == (["nope"], "DELIVRD")
    assert store.get(2).err == 1


def test_receipts_are_idempotent_and_final_is_never_overwritten(store):
    store.enqueue("b", msgs(1), now=NOW)
    (m,) = store.claim("op", 1, NOW)
    store.apply([MarkSent(id=m.id, smsc_ids=["x"], at=NOW)])
    store.apply([receipt("x", "enroute", "ENROUTE", final=False)])
    assert store.get(m.id).state == "sent"
    assert store.get(m.id).reason == "receipt ENROUTE"  # recorded, not final
    store.apply([receipt("x")])
    dup = store.apply([receipt("x", "undelivered", "UNDELIV", 1)])
    assert dup[0].detail == "duplicate"
    assert store.get(m.id).state == "delivered"


def test_multi_part_takes_the_worst_part(store):
    store.enqueue("b", msgs(1), now=NOW)
    (m,) = store.claim("op", 1, NOW)
    store.apply([MarkSent(id=m.id, smsc_ids=["p1", "p2", "p3"], at=NOW)])
    store.apply([receipt("p1"), receipt("p3", "expired", "EXPIRED", 27)])
    assert store.get(m.id).state == "sent"
    store.apply([receipt("p2")])
    assert store.get(m.id).state == "expired"
    assert store.get(m.id).err == 27  # the failing part's code, not the last receipt's


def test_requeue_keeps_the_place_and_schedule_waits(store):
    store.enqueue("b", msgs(3), now=NOW)
    first = store.claim("op", 1, NOW)[0]
    store.apply([Requeue(id=first.id, due=0, reason="0x58", retry=True)])
    assert [m.id for m in store.claim("op", 3, NOW)] == [1, 2, 3]
    assert store.get(1).attempts == 1
    store.apply([Schedule(id=2, due=NOW + 60)])
    assert store.due_count(NOW) == 0
    assert store.promote(NOW + 30) == 0
    assert store.promote(NOW + 61) == 1
    assert store.claim("op", 5, NOW + 61)[0].id == 2


def test_fail_skip_unknown_and_expiry_at_claim(store):
    store.enqueue("b", msgs(3) + msgs(1, start=3, expires=NOW - 1), now=NOW - 10)
    a, b, c = store.claim("op", 3, NOW)
    store.apply(
        [
            Fail(id=a.id, status=0x0B, description="Invalid destination", at=NOW),
            Skip(id=b.id, reason="dead", at=NOW),
            MarkUnknown(id=c.id, reason="no response", at=NOW),
        ]
    )
    assert store.claim("op", 5, NOW) == []
    assert store.get(4).reason == "expired"
    assert states(store) == {"failed": 1, "skipped": 2, "unknown": 1}
    assert store.apply([Skip(id=a.id, reason="x", at=NOW)])[0].ok is False


def test_receipt_timeout_ends_as_unknown(store):
    store.enqueue("b", msgs(2), now=NOW)
    for m in store.claim("op", 2, NOW):
        store.apply([MarkSent(id=m.id, smsc_ids=[str(m.id)], at=NOW + m.id)])
    assert store.expire_sent(NOW + 1.5, NOW + 100) == 1
    assert states(store) == {"unknown": 1, "sent": 1}


@pytest.mark.parametrize(("policy", "state"), [("resend", "queued"), ("hold", "unknown")])
def test_crash_recovery_of_inflight(tmp_path, policy, state):
    s = Store.open(tmp_path / "db")
    s.enqueue("b", msgs(4), now=NOW)
    s.claim("op", 2, NOW)
    s.close()  # as if the process died here: two messages inflight
    s = Store.open(tmp_path / "db", on_crash_inflight=policy)
    assert states(s) == {"queued": 2, "inflight": 2}  # opening alone recovers nothing
    with StoreLock.acquire(tmp_path / "db") as lock:
        assert s.recover_inflight(lock) == 2
    assert states(s) == ({"queued": 4} if state == "queued" else {"queued": 2, "unknown": 2})
    s.check()
    if policy == "resend":
        assert [m.id for m in s.claim("op", 4, NOW)] == [1, 2, 3, 4]
    s.check()
    s.close()


def test_purge_final_messages(store):
    store.enqueue("b", msgs(2), now=NOW)
    for m in store.claim("op", 2, NOW):
        store.apply([MarkSent(id=m.id, smsc_ids=[f"s{m.id}"], at=NOW)])
    store.apply([receipt("s1")])
    assert store.purge(NOW + 1) == 1
    assert store.get(1) is None
    assert states(store) == {"sent": 1}
    assert store.enqueue("b", msgs(1), now=NOW).queued == 0  # still idempotent


def test_schema_mismatch_is_a_clear_error(tmp_path):
    Store.open(tmp_path / "db").close()
    env = lmdb.open(str(tmp_path / "db"), max_dbs=20)
    with env.begin(write=True, db=env.open_db(b"meta")) as txn:
        txn.put(b"schema", b"99")
    env.close()
    with pytest.raises(StoreError, match="schema 99"):
        Store.open(tmp_path / "db")


def test_map_grows_on_demand(tmp_path):
    s = Store.open(tmp_path / "db", map_size=1 << 20)
    s.enqueue(
        "b",
        [
            NewMessage(to="+79161234567", text="x" * 500, sender="S", ext_id=str(i), route="op")
            for i in range(5000)
        ],
        now=NOW,
    )
    assert s.counts().states["queued"] == 5000
    assert s.env.info()["map_size"] > 1 << 20
    s.check()
    s.close()


def test_full_map_is_a_clear_error_and_nothing_is_half_written(tmp_path):
    s = Store.open(tmp_path / "db", map_size=1 << 20, max_map_size=1 << 20)
    with pytest.raises(StoreError, match="full"):
        s.enqueue(
            "b",
            [
                NewMessage(to="+79161234567", text="x" * 500, sender="S", ext_id=str(i), route="op")
                for i in range(5000)
            ],
            now=NOW,
        )
    assert s.counts().states["queued"] == 0
    s.check()
    s.close()


def test_bad_batch_in_the_middle_leaves_nothing(store):
    def gen():
        yield from msgs(10)
        raise ValueError("line 11 is bad")

    with pytest.raises(ValueError, match="line 11"):
        store.enqueue("b", gen(), now=NOW)
    assert store.counts().batches == {}
    assert list(store.messages()) == []
    assert store.enqueue("b", msgs(10), now=NOW).queued == 10


def test_large_batch_crosses_chunks(store, monkeypatch):
    monkeypatch.setattr(store_mod, "LOAD_CHUNK", 100)
    assert store.enqueue("b", msgs(1050), now=NOW).queued == 1050
    assert len(store.claim("op", 2000, NOW)) == 1050


def test_stop_list_dead_numbers_and_mo(store):
    store.stop(["+79161234567"], "complaint", NOW)
    assert store.is_stopped("+79161234567")
    store.apply(
        [RecordMo(source="+79160000001", destination="Shop", text="STOP", at=NOW, stop=True)]
    )
    assert {n for n, _ in store.list_stopped()} == {"+79161234567", "+79160000001"}
    store.mark_dead("+79162222222", [], NOW, 86400)
    assert [n for n, _ in store.list_dead()] == ["+79162222222"]
    assert store.restore(["+79161234567", "+79162222222"]) == 2
    assert [n for n, _ in store.list_stopped()] == ["+79160000001"]


def test_status_on_a_missing_store_is_zero(tmp_path):
    with pytest.raises(StoreError):
        Store.open(tmp_path / "nothing", readonly=True)


class _TwoHard:
    ttl = 1000.0

    def dead(self, outcomes, route):
        return sum(o.stat == "UNDELIV" for o in outcomes) >= 2


def test_receipts_prune_a_number_and_claim_skips_it(store):
    store.prune_policy = _TwoHard()
    store.enqueue(
        "b",
        to_one("+79160000001", 3),
        now=NOW,
    )
    for m in store.claim("op", 2, NOW):
        store.apply([MarkSent(id=m.id, smsc_ids=[f"s{m.id}"], at=NOW)])
    store.apply(
        [receipt("s1", "undelivered", "UNDELIV", 1), receipt("s2", "undelivered", "UNDELIV", 1)]
    )
    ((number, entry),) = store.list_dead()
    assert number == "+79160000001"
    assert [(o.stat, o.err) for o in entry.evidence] == [("UNDELIV", 1), ("UNDELIV", 1)]
    assert store.claim("op", 5, NOW) == []
    assert store.get(3).reason == "dead"
    again = store.enqueue("b2", msgs(1, start=1), now=NOW)  # +79160000001
    assert again.dead == 1
    assert store.enqueue("b3", msgs(1, start=1), now=NOW, drop_dead=True).dropped == 1
    assert store.claim("op", 5, NOW + 2000)[0].batch == "b2"  # the prune expired


def test_a_delivery_resets_the_history(store):
    store.prune_policy = _TwoHard()
    store.enqueue("b", msgs(2), now=NOW)
    store.enqueue(
        "c",
        to_one("+79160000000", 3),
        now=NOW,
    )
    for m in store.claim("op", 10, NOW):
        store.apply([MarkSent(id=m.id, smsc_ids=[f"s{m.id}"], at=NOW)])
    store.apply([receipt("s1", "undelivered", "UNDELIV", 1)])
    store.apply([receipt("s3")])
    store.apply([receipt("s4", "undelivered", "UNDELIV", 1)])
    assert store.list_dead() == []
    assert len(store.history("+79160000000").outcomes) == 1


def test_stopped_numbers_are_skipped_unless_the_kind_is_exempt(store):
    store.stop(["+79160000000"], "STOP", NOW)
    store.enqueue(
        "b",
        [
            *msgs(1),
            NewMessage(
                to="+79160000000",
                text="x",
                sender="S",
                ext_id="t",
                route="op",
                kind="transactional",
            ),
        ],
        now=NOW,
    )
    assert store.claim("op", 5, NOW) == []
    assert {m.reason for m in store.messages()} == {"stopped"}
    store.stop_exempt_kinds = frozenset({"transactional"})
    store.enqueue(
        "c",
        [
            NewMessage(
                to="+79160000000",
                text="x",
                sender="S",
                ext_id="t",
                route="op",
                kind="transactional",
            )
        ],
        now=NOW,
    )
    assert [m.kind for m in store.claim("op", 5, NOW)] == ["transactional"]


def test_a_paused_batch_is_not_claimed_and_keeps_its_place_on_resume(store):
    store.enqueue("a", msgs(3), now=NOW)
    store.enqueue("b", msgs(2, start=10), now=NOW)
    first = store.claim("op", 1, NOW)[0]
    assert store.pause_batch("a") == 2
    store.apply([Requeue(id=first.id, due=0, reason="0x58")])  # a retry of "a" parks too
    assert store.paused_batches() == ["a"]
    assert [m.batch for m in store.claim("op", 10, NOW)] == ["b", "b"]
    assert states(store) == {"queued": 3, "inflight": 2}
    assert store.due_count(NOW) == 0
    assert store.pause_batch("a", paused=False) == 3
    assert [m.id for m in store.claim("op", 10, NOW)] == [1, 2, 3]
    assert store.paused_batches() == []


def test_a_message_enqueued_into_a_paused_batch_waits(store):
    store.enqueue("a", msgs(1), now=NOW)
    store.pause_batch("a")
    result = store.enqueue("a", msgs(2, start=1), now=NOW)
    assert result.queued == 2
    assert store.claim("op", 10, NOW) == []
    store.pause_batch("a", paused=False)
    assert len(store.claim("op", 10, NOW)) == 3
    with pytest.raises(StoreError, match="no batch 'zz'"):
        store.pause_batch("zz")


def test_bad_keys_are_refused_alone_and_never_abort_the_group_commit(tmp_path):
    """Ids that cannot be LMDB keys: that one operation is refused with the reason; the rest of
    the transaction commits; an accepted message with an unusable id is unknown, not stranded."""
    store = Store.open(tmp_path / "db")
    new = [NewMessage(to=f"+7916000000{i}", text="hi", sender="S", ext_id=str(i)) for i in range(3)]
    store.enqueue("b", new, now=1.0)
    a, b, c = store.claim("default", 3, 2.0)
    results = store.apply(
        [
            MarkSent(id=a.id, smsc_ids=[""], at=3.0),
            MarkSent(id=b.id, smsc_ids=["x" * 600], at=3.0),
            MarkSent(id=c.id, smsc_ids=["ok-1"], at=3.0),
            RecordReceipt(
                candidates=(" " * 0,),
                state="delivered",
                final=True,
                stat="DELIVRD",
                err=None,
                network_error=None,
                at=4.0,
            ),
            RecordReceipt(
                candidates=("y" * 600,),
                state="delivered",
                final=True,
                stat="DELIVRD",
                err=None,
                network_error=None,
                at=4.0,
            ),
        ]
    )
    assert [r.ok for r in results] == [False, False, True, False, False]
    assert "expected 1 to 511" in results[1].detail
    assert store.get(a.id).state == "unknown" and store.get(b.id).state == "unknown"
    assert store.get(c.id).state == "sent"
    assert store.counts().states["inflight"] == 0
    store.check()
    store.close()
