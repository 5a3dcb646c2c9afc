"""The store's side of issue 15: the lock, cancel, re-routing, repeated ids, key limits."""

import os

import pytest

from engine.store import (
    MarkSent,
    NewMessage,
    Requeue,
    Reroute,
    Store,
    StoreError,
    StoreLock,
    StoreLocked,
)
from engine.store.errors import DuplicateId
from engine.store.lock import INHERITED_FD

NOW = 1_800_000_000.0


def msgs(n, route="op", start=0, **kw):
    return [
        NewMessage(to=f"+7916{i:07d}", text="hi", sender="S", ext_id=str(i), route=route, **kw)
        for i in range(start, start + n)
    ]


def states(store):
    return {k: v for k, v in store.counts().states.items() if v}


# -- the lock ---------------------------------------------------------------------


def test_a_second_lock_names_the_holder_and_a_released_one_is_free(tmp_path):
    lock = StoreLock.acquire(tmp_path / "db")
    with pytest.raises(StoreLocked, match=f"pid {os.getpid()}") as err:
        StoreLock.acquire(tmp_path / "db")
    assert err.value.pid == os.getpid()
    assert (tmp_path / "db" / "volley.lock").stat().st_mode & 0o777 == 0o600
    lock.release()
    StoreLock.acquire(tmp_path / "db").release()


def test_opening_never_recovers_and_recovery_needs_the_lock(tmp_path):
    store = Store.open(tmp_path / "db")
    store.enqueue("b", msgs(3), now=NOW)
    store.claim("op", 2, NOW)
    store.close()
    again = Store.open(tmp_path / "db")  # what enqueue, numbers, segment do
    assert states(again) == {"queued": 1, "inflight": 2}
    with pytest.raises(StoreError, match="holding the store's lock"):
        again.recover_inflight(None)  # type: ignore[arg-type]
    other = StoreLock.acquire(tmp_path / "elsewhere")
    with pytest.raises(StoreError, match="holding the store's lock"):
        again.recover_inflight(other)  # another store's lock
    other.release()
    with StoreLock.acquire(tmp_path / "db") as lock:
        assert again.recover_inflight(lock) == 2
    assert states(again) == {"queued": 3}
    again.check()
    again.close()


def test_an_inherited_lock_is_checked_and_never_recovers(tmp_path, monkeypatch):
    with StoreLock.acquire(tmp_path / "db") as lock:
        monkeypatch.setenv(INHERITED_FD, str(lock.fd))
        child = StoreLock.from_environment(tmp_path / "db")
        assert child is not None and child.inherited
        s = Store.open(tmp_path / "db")
        with pytest.raises(StoreError, match="holding the store's lock"):
            s.recover_inflight(child)
        s.close()
        with pytest.raises(StoreError, match="not this store's lock"):
            StoreLock.inherit(tmp_path / "db", os.open(os.devnull, os.O_RDONLY))


def test_files_are_private_from_creation(tmp_path):
    old = os.umask(0o022)
    try:
        Store.open(tmp_path / "var" / "db").close()
    finally:
        os.umask(old)
    db = tmp_path / "var" / "db"
    assert db.stat().st_mode & 0o777 == 0o700
    assert (db / "data.mdb").stat().st_mode & 0o777 == 0o600
    assert (db / "lock.mdb").stat().st_mode & 0o777 == 0o600


# -- cancel -------------------------------------------------------------------------


def test_cancel_ends_queued_and_scheduled_and_leaves_what_is_in_flight(store):
    store.enqueue("b", msgs(4), now=NOW)
    store.enqueue("later", msgs(2, due=NOW + 3600), now=NOW)
    store.enqueue("other", msgs(2, start=10), now=NOW)
    inflight = store.claim("op", 2, NOW)  # messages 1 and 2 of "b"
    store.apply([MarkSent(id=inflight[0].id, smsc_ids=["x"], at=NOW)])
    assert store.cancel_batch("b", NOW + 1) == 2
    assert store.cancel_batch("later", NOW + 1) == 2
    assert store.batch_progress("b") == {"sent": 1, "inflight": 1, "cancelled": 2}
    assert store.batch_progress("later") == {"cancelled": 2}
    # a throttled retry of the one in flight is cancelled, never queued again
    store.apply([Requeue(id=inflight[1].id, due=0.0, reason="throttled")])
    assert store.batch_progress("b") == {"sent": 1, "cancelled": 3}
    assert [m.batch for m in store.claim("op", 10, NOW + 2)] == ["other", "other"]
    assert store.promote(NOW + 7200) == 0


def test_cancel_of_an_unknown_batch_and_enqueueing_into_a_cancelled_one(store):
    with pytest.raises(StoreError, match="no batch 'nope'"):
        store.cancel_batch("nope", NOW)
    store.enqueue("b", msgs(1), now=NOW)
    store.cancel_batch("b", NOW)
    assert store.enqueue("b", msgs(1), now=NOW).queued == 0  # a re-run: still a no-op
    with pytest.raises(StoreError, match="was cancelled"):
        store.enqueue("b", msgs(1, start=5), now=NOW)
    assert states(store) == {"cancelled": 1}


def test_a_crash_recovery_cancels_a_cancelled_batchs_inflight(tmp_path, store):
    store.enqueue("b", msgs(2), now=NOW)
    store.claim("op", 2, NOW)
    store.cancel_batch("b", NOW)
    with StoreLock.acquire(tmp_path / "db") as lock:
        assert store.recover_inflight(lock) == 2
    assert states(store) == {"cancelled": 2}


# -- routes ---------------------------------------------------------------------------


def test_reroute_moves_what_waits_and_counts_the_unroutable(store):
    store.enqueue("b", msgs(4), now=NOW)
    store.enqueue("s", msgs(2, start=10, due=NOW + 60), now=NOW)
    store.enqueue("u", msgs(1, start=20, route=""), now=NOW)
    assert store.counts().unroutable == 1
    routes = {"+79160000001": "", "+79160000010": ""}
    moved, unroutable = store.reroute(lambda n: routes.get(n, "new"), table="t1")
    assert (moved, unroutable) == (7, 2)
    assert store.counts().unroutable == 2
    assert store.routing_table() == "t1"
    assert sorted(store.ready_routes()) == ["", "new"]
    assert store.ready_count("new") == 4 and store.ready_count("") == 1
    assert store.claim("op", 10, NOW) == []
    assert [m.ext_id for m in store.claim("new", 10, NOW)] == ["0", "2", "3", "20"]
    store.promote(NOW + 61)
    assert [m.ext_id for m in store.claim("new", 10, NOW + 61)] == ["11"]
    assert store.counts().unroutable == 2  # the queued one and the scheduled one


def test_reroute_of_a_claimed_message_and_of_named_routes_only(store):
    store.enqueue("b", msgs(2), now=NOW)
    store.enqueue("c", msgs(1, start=5, route="gone"), now=NOW)
    (m, _) = store.claim("op", 2, NOW)
    store.apply([Reroute(id=m.id, route="b2")])
    assert store.get(m.id).state == "queued"
    assert store.reroute(lambda n: "b2", routes=["gone"]) == (1, 0)
    assert [x.ext_id for x in store.claim("b2", 5, NOW)] == ["0", "5"]


# -- repeated ids and key limits ----------------------------------------------------------


def test_a_repeated_id_with_other_content_names_both_lines_and_enqueues_nothing(store):
    a = NewMessage(to="+79160000001", text="a", sender="S", ext_id="x", line=3)
    b = NewMessage(to="+79160000002", text="a", sender="S", ext_id="x", line=9)
    with pytest.raises(DuplicateId, match=r"'x' twice with different content \(lines 3 and 9\)"):
        store.enqueue("b", [a, b], now=NOW)
    assert states(store) == {}
    same = NewMessage(to="+79160000001", text="a", sender="S", ext_id="x", line=4)
    assert store.enqueue("b", [a, same], now=NOW).queued == 1  # the same line twice: one
    changed = NewMessage(to="+79160000009", text="b", sender="S", ext_id="x", line=1)
    assert store.enqueue("b", [changed], now=NOW).duplicates == 1  # an earlier run's id


@pytest.mark.parametrize(
    ("batch", "why"),
    [("", "0 bytes"), ("x" * 129, "129 bytes"), ("é" * 65, "130 bytes"), ("a\nb", "control")],
)
def test_batch_ids_are_bounded(store, batch, why):
    with pytest.raises(StoreError, match=why):
        store.enqueue(batch, msgs(1), now=NOW)


def test_long_ids_are_refused_before_lmdb_sees_them(store):
    with pytest.raises(StoreError, match="longer than 64"):
        store.enqueue(
            "b", [NewMessage(to="+79160000001", text="a", sender="S", ext_id="i" * 65)], now=NOW
        )
    assert states(store) == {}
