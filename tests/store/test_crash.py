"""kill -9 at random moments: nothing lost, counters true, loads all-or-nothing."""

import random
import subprocess
import sys
import textwrap
import time

import pytest

from engine.store import STATES, Store, StoreLock

pytestmark = pytest.mark.slow

LOADER = textwrap.dedent(
    """
    import sys, time
    from engine.store import NewMessage, Store
    s = Store.open(sys.argv[1])
    print("ready", flush=True)
    s.enqueue("big", (NewMessage(to=f"+7916{i:07d}", text="Anna, we miss you! -40%",
              sender="S", ext_id=str(i), route="op") for i in range(int(sys.argv[2]))),
              now=time.time())
    print("done", flush=True)
    time.sleep(30)
    """
)

MOVER = textwrap.dedent(
    """
    import random, sys, time
    from engine.store import (Fail, MarkSent, NewMessage, RecordReceipt, Requeue, Store)
    s = Store.open(sys.argv[1])
    rng = random.Random(int(sys.argv[2]))
    print("ready", flush=True)
    n = 0
    while True:
        now = time.time()
        claimed = s.claim("op", rng.randint(1, 200), now)
        if not claimed:
            s.enqueue(f"b{n}", [NewMessage(to="+79161234567", text="x", sender="S",
                      ext_id=str(i), route="op") for i in range(300)], now=now)
            n += 1
            continue
        ops = []
        for m in claimed:
            r = rng.random()
            if r < 0.6:
                ops.append(MarkSent(id=m.id, smsc_ids=[f"x{m.id}"], at=now))
            elif r < 0.8:
                ops.append(Requeue(id=m.id, due=0, reason="throttled", retry=True))
            else:
                ops.append(Fail(id=m.id, status=11, description="bad", at=now))
        s.apply(ops)
        s.apply([RecordReceipt(candidates=(f"x{m.id}",), state="delivered", final=True,
                 stat="DELIVRD", err=0, network_error=None, at=now) for m in claimed[::2]])
    """
)


def spawn(script: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def kill9(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()
    proc.stdout.close()


def check_consistent(store: Store) -> dict[str, int]:
    """Every message in exactly one state and place (Store.check); counters equal a scan of
    the messages' effective states."""
    store.check()
    scan = dict.fromkeys(STATES, 0)
    for msg in store.messages():
        scan[msg.state] += 1
    counts = store.counts()
    assert counts.states == scan
    batch_total = {}
    for per in counts.batches.values():
        for state, n in per.items():
            batch_total[state] = batch_total.get(state, 0) + n
    assert batch_total == {k: v for k, v in scan.items() if v}
    return scan


@pytest.mark.parametrize("seed", range(3))
def test_kill_during_a_large_enqueue_leaves_all_or_nothing(tmp_path, seed):
    path = tmp_path / "db"
    total = 120_000
    proc = spawn(LOADER, path, total)
    time.sleep(random.Random(seed).uniform(0.05, 0.9))
    kill9(proc)
    store = Store.open(path)
    scan = check_consistent(store)
    assert scan["queued"] in (0, total)
    assert sum(1 for _ in store.messages()) in (0, total)
    store.close()


def test_kill_while_moving_states_loses_nothing(tmp_path):
    path = tmp_path / "db"
    rng = random.Random(7)
    for seed in range(5):
        proc = spawn(MOVER, path, seed)
        time.sleep(rng.uniform(0.1, 0.6))
        kill9(proc)
        lock = StoreLock.acquire(path)
        store = Store.open(path)
        store.recover_inflight(lock)  # inflight goes back to the queue
        lock.release()
        scan = check_consistent(store)
        assert scan["inflight"] == 0
        assert sum(scan.values()) == 300 * len(store.counts().batches)
        store.close()


READER = textwrap.dedent(
    """
    import sys
    from engine.store import Store, StoreLock
    s = Store.open(sys.argv[1], readonly=True)
    print("ready", flush=True)
    bad = 0
    for _ in range(int(sys.argv[2])):
        c = s.counts()
        total = sum(c.states.values())
        per_batch = sum(sum(v.values()) for v in c.batches.values())
        if total != per_batch or total % 300:
            bad += 1
    print(bad, flush=True)
    """
)


def test_a_reader_process_always_sees_consistent_counts(tmp_path):
    path = tmp_path / "db"
    Store.open(path).close()
    mover = spawn(MOVER, path, 1)
    reader = spawn(READER, path, 3000)
    try:
        out = reader.stdout.readline().strip()
    finally:
        kill9(mover)
        reader.wait()
        reader.stdout.close()
    assert out == "0"
