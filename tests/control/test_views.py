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
