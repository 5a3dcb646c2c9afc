"""Snapshots read from the store alone: what status and the TUI show with no engine."""

import time

from engine import config
from engine.control.views import store_snapshot
from engine.store import NewMessage
from engine.store.records import Outcome
from engine.wiring import open_store


def make(tmp_path):
    return config.parse(
        f'[store]\npath = "{tmp_path / "db"}"\n[windows.marketing]\nhours = "10:00-18:00"\n'
    )


def test_no_store_yet_is_zero_and_not_live(tmp_path):
    snap = store_snapshot(make(tmp_path))
    assert not snap.live
    assert sum(snap.states.values()) == 0
    assert [w.kind for w in snap.windows] == ["marketing"]


def test_counts_paused_batches_and_prunes(tmp_path):
    cfg = make(tmp_path)
    store = open_store(cfg)
    new = [NewMessage(to=f"+7916000000{i}", text="x", sender="S", ext_id=str(i)) for i in range(3)]
    store.enqueue("b1", new, now=time.time())
    store.pause_batch("b1")
    store.mark_dead("+79160000009", [Outcome("UNDELIV", 1, 0.0)], time.time(), 86400)
    store.stop(["+79160000008"], "complaint", time.time())
    store.close()
    snap = store_snapshot(cfg)
    assert snap.states["queued"] == 3
    assert snap.batches == {"b1": {"queued": 3}}
    assert snap.paused_batches == ["b1"]
    assert (snap.dead, snap.stopped) == (1, 1)
    assert snap.prunes[0].endswith("+79160000009 (UNDELIV err 1)")


def test_merged_snapshots_sum_counts_and_histograms():
    from engine.control import protocol as p
    from engine.control.views import merge_snapshots

    def op(n: int) -> p.OperatorView:
        return p.OperatorView(
            name="mts",
            submits={"0x00": 10 * n, "0x58": n},
            receipts={"DELIVRD": 9 * n},
            submit_latency=p.Histogram(bounds=[0.1, 1.0], counts=[n, 2 * n, 0], total=0.5 * n),
        )

    merged = merge_snapshots(
        [p.Snapshot(at=1.0, operators=[op(1)]), p.Snapshot(at=2.0, operators=[op(2)])], pid=7
    )
    (mts,) = merged.operators
    assert mts.submits == {"0x00": 30, "0x58": 3}
    assert mts.receipts == {"DELIVRD": 27}
    assert mts.submit_latency == p.Histogram(bounds=[0.1, 1.0], counts=[3, 6, 0], total=1.5)
    assert mts.receipt_latency is None


def test_an_older_peer_reads_a_snapshot_with_the_new_fields():
    import msgspec

    from engine.control import protocol as p

    class OperatorView(msgspec.Struct, tag=True, kw_only=True):  # as version 1 had it
        name: str
        tps_limit: float = 0.0

    class Snapshot(msgspec.Struct, tag=True, kw_only=True):
        at: float
        operators: list[OperatorView] = []

    hist = p.Histogram(bounds=[1.0], counts=[1, 0], total=0.2)
    new = p.Snapshot(
        at=1.0, operators=[p.OperatorView(name="mts", tps_limit=5.0, submit_latency=hist)]
    )
    old = msgspec.msgpack.decode(p.frame(new)[4:], type=Snapshot)
    assert old.operators[0].name == "mts" and old.operators[0].tps_limit == 5.0
