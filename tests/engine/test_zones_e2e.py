"""Every +79 mobile timed in its own region's hours: enqueue to the engine's last check."""

import io
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import trio

from engine import cli, ingest
from engine.sched.schedule import Scheduler
from engine.service import Engine

from .helpers import make_config, operator, simulator, states

MSK = ZoneInfo("Europe/Moscow")
VLAT = ZoneInfo("Asia/Vladivostok")
NOON_MSK = datetime(2026, 11, 23, 12, 0, tzinfo=MSK).timestamp()  # 19:00 in Vladivostok
WINDOW = '[windows.marketing]\nhours = "10:00-18:00"\n'
NUMBERS = {  # each inside its region's range in the shipped registry table
    "vladivostok": "+79140701234",
    "moscow": "+79161234567",
    "kaliningrad": "+79003451234",  # 11:00 there
    "novosibirsk": "+79130012345",  # 16:00
    "yekaterinburg": "+79221012345",  # 14:00
}


def lines():
    return "\n".join(
        json.dumps({"id": city, "to": number, "text": "offer"}) for city, number in NUMBERS.items()
    )


@pytest.mark.trio
async def test_a_vladivostok_number_waits_for_vladivostok_hours(nursery, tmp_path):
    smsc = await simulator(nursery)
    cfg = make_config(tmp_path, operator("local", smsc.port, tps=1000), extra=WINDOW)
    from engine.wiring import open_store

    store = open_store(cfg)
    validator = ingest.Validator(cfg, scheduler=Scheduler(cfg), now=NOON_MSK)
    result = store.enqueue(
        "b", ingest.messages(io.StringIO(lines()), "b.jsonl", validator), now=NOON_MSK
    )
    assert result.scheduled == 1
    assert validator.default_zone == 0  # every zone known from its number range
    engine = Engine(cfg, store, wall=lambda: NOON_MSK)
    with trio.fail_after(20):
        await engine.run(until_drained=True)
    by_id = {m.ext_id: m for m in store.messages()}
    assert states(store) == {"delivered": 4, "scheduled": 1}
    vladivostok = by_id["vladivostok"]
    assert (vladivostok.state, vladivostok.zone) == ("scheduled", "Asia/Vladivostok")
    due = datetime.fromtimestamp(vladivostok.due, VLAT)
    assert (due.date().isoformat(), due.hour, due.minute) == ("2026-11-24", 10, 0)
    assert by_id["kaliningrad"].zone == "Europe/Kaliningrad"
    assert smsc.counters["submit_ok"] == 4
    store.close()


def test_volley_enqueue_times_a_vladivostok_number_in_its_zone(tmp_path, capsys):
    path = tmp_path / "engine.toml"
    path.write_text(f'[store]\npath = "db"\n{WINDOW}')
    src = tmp_path / "b.jsonl"
    src.write_text(json.dumps({"id": "v", "to": NUMBERS["vladivostok"], "text": "offer"}) + "\n")
    assert cli.main(["enqueue", str(src), "--batch", "b", "--config", str(path)]) == 0
    assert "no known zone" not in capsys.readouterr().out
    from engine import config
    from engine.wiring import open_store

    store = open_store(config.load(path))
    (m,) = store.messages()
    store.close()
    assert (m.zone, m.zone_default) == ("Asia/Vladivostok", False)
    if m.due:  # enqueued outside Vladivostok's 10:00-18:00: due at its next opening
        due = datetime.fromtimestamp(m.due, VLAT)
        assert (due.hour, due.minute) == (10, 0)
