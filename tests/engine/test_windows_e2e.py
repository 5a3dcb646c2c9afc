"""Send windows in the engine: nothing goes out while closed, retries included."""

import io
import json
import time
from datetime import UTC, datetime

import pytest
import trio

from engine import ingest
from engine.sched.schedule import Scheduler
from engine.service import Engine
from engine.store.setup import open_store

from .helpers import make_config, operator, run_until_drained, simulator, states

pytestmark = pytest.mark.trio


def window_hours(offset_hours: int, length: int = 1) -> str:
    """An hour range in UTC that starts ``offset_hours`` from now."""
    h = (datetime.now(UTC).hour + offset_hours) % 24
    return f"{h:02d}:00-{(h + length) % 24 or 24:02d}:00"


def enqueue_lines(cfg, store, lines, window=""):
    validator = ingest.Validator(cfg, scheduler=Scheduler(cfg), now=time.time(), window=window)
    return store.enqueue(
        "b", ingest.messages(io.StringIO("\n".join(lines)), "b.jsonl", validator), now=time.time()
    )


LINES = [
    json.dumps({"id": "m1", "to": "+79161234567", "text": "offer"}),
    json.dumps({"id": "m2", "to": "+14155552671", "text": "offer"}),
    json.dumps({"id": "t1", "to": "+79161234568", "text": "order ready", "kind": "transactional"}),
]


async def test_closed_window_schedules_marketing_and_sends_transactional(nursery, tmp_path):
    smsc = await simulator(nursery)
    window = f'[windows.marketing]\nzone = "UTC"\nhours = "{window_hours(2)}"\n'
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=1000), extra=window)
    store = open_store(cfg)
    result = enqueue_lines(cfg, store, LINES)
    assert result.scheduled == 2
    await run_until_drained(cfg, store)  # scheduled messages do not keep it running
    assert smsc.counters["submit_ok"] == 1
    assert states(store) == {"scheduled": 2, "delivered": 1}
    opening = min(m.due for m in store.messages() if m.state == "scheduled")
    assert 3600 <= opening - time.time() <= 2 * 3600 + 60
    store.close()


async def test_a_window_that_closed_while_queued_sends_nothing(nursery, tmp_path):
    smsc = await simulator(nursery)
    window = f'[windows.marketing]\nzone = "UTC"\nhours = "{window_hours(0)}"\n'
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=1000), extra=window)
    store = open_store(cfg)
    assert enqueue_lines(cfg, store, LINES[:2]).scheduled == 0  # open at enqueue
    later = Engine(cfg, store, wall=lambda: time.time() + 3 * 3600)  # the engine runs later
    with trio.fail_after(10):
        await later.run(until_drained=True)
    assert smsc.counters["submit_ok"] == 0
    assert states(store) == {"scheduled": 2}
    assert {m.reason for m in store.messages()} == {"outside the send window"}
    store.close()


async def test_open_window_sets_validity_before_it_closes(nursery, tmp_path):
    wire = tmp_path / "wire.jsonl"
    smsc = await simulator(nursery, record=str(wire))
    window = (
        f'[windows.marketing]\nzone = "UTC"\nhours = "{window_hours(0, 2)}"\n'
        'validity_margin = "10m"\n'
    )
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=1000), extra=window)
    store = open_store(cfg)
    enqueue_lines(cfg, store, LINES[:1])
    await run_until_drained(cfg, store)
    (entry,) = [json.loads(line) for line in wire.read_text().splitlines()]
    vp = entry["validity_period"]
    assert vp.endswith("R")
    hours, minutes = int(vp[6:8]), int(vp[8:10])
    assert 0 < hours * 60 + minutes < 110  # under 2 h minus the 10 min margin
    store.close()


async def test_a_batch_can_use_another_window(nursery, tmp_path):
    smsc = await simulator(nursery)
    windows = (
        f'[windows.marketing]\nzone = "UTC"\nhours = "{window_hours(2)}"\n'
        f'[windows.urgent]\nzone = "UTC"\nhours = "{window_hours(0)}"\n'
    )
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=1000), extra=windows)
    store = open_store(cfg)
    assert enqueue_lines(cfg, store, LINES[:2], window="urgent").scheduled == 0
    await run_until_drained(cfg, store)
    assert smsc.counters["submit_ok"] == 2  # marketing's window is closed, the batch's is open
    assert {m.window for m in store.messages()} == {"urgent"}
    store.close()
