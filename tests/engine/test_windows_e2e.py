"""Send windows in the engine: nothing goes out while closed, retries included."""

import io
import json
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import trio
import trio.testing

from engine import ingest
from engine.sched.schedule import Scheduler
from engine.service import Engine
from engine.wiring import open_store

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


MSK = ZoneInfo("Europe/Moscow")
MONDAY_1755 = datetime(2026, 11, 23, 17, 55, tzinfo=MSK).timestamp()


@pytest.fixture
def clock():
    """Trio's MockClock at 100x: five minutes of sending take three seconds.

    (Autojump does not suit a test with real sockets and LMDB threads: the
    clock would leap whenever the loop waits for them.)"""
    return trio.testing.MockClock(rate=100)


async def test_a_batch_enqueued_at_1755_moscow_sends_until_18_then_waits(nursery, tmp_path, clock):
    smsc = await simulator(nursery, receipts=False)
    window = (
        '[windows.marketing]\ndays = ["mon", "tue", "wed", "thu", "fri"]\nhours = "10:00-18:00"\n'
    )
    # 1 ms of real time is 0.1 s of the engine's: no response timeout in reach
    op = operator(
        "local", smsc.port, tps=1, registered_delivery=False, response_timeout="1h",
        enquire_link_interval="1h",
    )  # fmt: skip
    cfg = make_config(tmp_path, op, extra=window, store="sync = false")
    store = open_store(cfg)
    lines = [json.dumps({"id": str(i), "to": f"+7495{i:07d}", "text": "sale"}) for i in range(400)]
    validator = ingest.Validator(cfg, scheduler=Scheduler(cfg), now=MONDAY_1755)
    batch = ingest.messages(io.StringIO("\n".join(lines)), "b.jsonl", validator)
    assert store.enqueue("b", batch, now=MONDAY_1755).scheduled == 0  # open: 5 minutes left
    engine = Engine(cfg, store, wall=lambda: MONDAY_1755)
    nursery.start_soon(engine.run)
    await trio.sleep(360)  # to 18:01
    sent = [m for m in store.messages() if m.state == "sent"]
    waiting = [m for m in store.messages() if m.state == "scheduled"]
    six_pm = MONDAY_1755 + 300
    # tps = 1 for five minutes (less the bind's start-up, 100x slower than real)
    assert 250 <= len(sent) <= 301
    # sent until the close; ``updated`` is when the response was committed, just after
    assert six_pm - 10 < max(m.updated for m in sent) < six_pm + 1
    assert smsc.counters["submit_sm"] == len(sent)
    assert len(sent) + len(waiting) == 400
    tuesday_10 = datetime(2026, 11, 24, 10, tzinfo=MSK).timestamp()
    assert {m.due for m in waiting} == {tuesday_10}
    await engine.stop()
    await engine.stopped.wait()
    store.close()


async def test_an_operators_send_window_holds_its_marketing_traffic(nursery, tmp_path):
    smsc = await simulator(nursery)
    windows = (
        f'[windows.marketing]\nzone = "UTC"\nhours = "{window_hours(0)}"\n'
        f'[windows.night-off]\nzone = "UTC"\nhours = "{window_hours(2)}"\n'
    )
    op = operator("local", smsc.port, tps=1000) + 'send_windows = { marketing = "night-off" }\n'
    cfg = make_config(tmp_path, op, extra=windows)
    store = open_store(cfg)
    assert enqueue_lines(cfg, store, LINES).scheduled == 2  # the operator's window is closed
    await run_until_drained(cfg, store)
    assert smsc.counters["submit_ok"] == 1  # the transactional one
    assert states(store) == {"scheduled": 2, "delivered": 1}
    store.close()
