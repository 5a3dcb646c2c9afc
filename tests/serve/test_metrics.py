"""/metrics parsed with prometheus_client's own parser: the store's series always, the
engine's (a real one against the simulator, through its control socket) only while it runs."""

import re
from pathlib import Path

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from engine.service import Engine
from tests.engine.helpers import operator, simulator

from .helpers import JSONL, lines, make_config, serve

pytestmark = pytest.mark.trio

LIVE = (
    "volley_submits",
    "volley_receipts",
    "volley_bind_up",
    "volley_operator_tps_limit",
    "volley_submit_latency_seconds",
    "volley_receipt_latency_seconds",
)


async def scrape(served) -> dict:
    async with served.client() as client:
        r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def value(families, name, sample=None, **labels):
    family = families[name]
    sample = sample or name
    found = [s.value for s in family.samples if s.name == sample and s.labels == labels]
    assert len(found) == 1, (sample, labels, family.samples)
    return found[0]


async def test_without_an_engine_only_the_store_speaks(nursery, tmp_path):
    cfg = make_config(tmp_path, '[windows.marketing]\nhours = "00:00-24:00"')
    served = await serve(nursery, cfg)
    async with served.client() as client:
        await client.post("/v1/batches/b", content=lines(7), headers=JSONL)
    families = await scrape(served)
    assert families["volley_messages"].type == "gauge"
    assert value(families, "volley_messages", state="queued") == 7
    assert value(families, "volley_messages", state="delivered") == 0
    assert value(families, "volley_engine_up") == 0
    assert 0 <= value(families, "volley_queue_age_seconds", route="local") < 60
    assert value(families, "volley_window_open", kind="marketing") == 1
    assert value(families, "volley_numbers", list="dead") == 0
    for name in LIVE:
        assert name not in families  # absent, not zero-faked
    await served.stop()


async def test_a_running_engine_adds_its_live_series(nursery, tmp_path):
    dead = frozenset({"+79160000003", "+79160000005"})
    smsc = await simulator(nursery, dead_numbers=dead)
    cfg = make_config(tmp_path, operators=operator("local", smsc.port, tps=2000.0))
    served = await serve(nursery, cfg)
    async with served.client() as client:
        r = await client.post("/v1/batches/b", content=lines(40), headers=JSONL)
        assert r.json()["queued"] == 40
    engine = Engine(cfg, served.store, control=cfg.resolve(cfg.control.socket))
    await nursery.start(engine.run)
    with trio.fail_after(15):
        while served.store.counts().states["sent"] or served.store.counts().states["queued"]:
            await trio.sleep(0.05)
        while sum(engine.operators["local"].meters.receipts.values()) < 40:
            await trio.sleep(0.05)
    families = await scrape(served)
    assert value(families, "volley_engine_up") == 1
    assert families["volley_submits"].type == "counter"
    assert (
        value(families, "volley_submits", "volley_submits_total", operator="local", status="0x00")
        == 40
    )
    assert (
        value(
            families, "volley_receipts", "volley_receipts_total", operator="local", stat="DELIVRD"
        )
        == 38
    )
    assert (
        value(
            families, "volley_receipts", "volley_receipts_total", operator="local", stat="UNDELIV"
        )
        == 2
    )
    assert value(families, "volley_messages", state="delivered") == 38
    assert value(families, "volley_bind_up", bind="local#0", operator="local") == 1
    assert value(families, "volley_bind_window_size", bind="local#0", operator="local") == 64
    assert value(families, "volley_operator_tps_limit", operator="local") == 2000
    assert value(families, "volley_operator_tps_configured", operator="local") == 2000
    assert value(families, "volley_operator_up", operator="local") == 1
    latency = families["volley_submit_latency_seconds"]
    assert latency.type == "histogram"
    assert (
        value(
            families,
            "volley_submit_latency_seconds",
            "volley_submit_latency_seconds_count",
            operator="local",
        )
        == 40
    )
    assert (
        value(
            families,
            "volley_submit_latency_seconds",
            "volley_submit_latency_seconds_bucket",
            operator="local",
            le="+Inf",
        )
        == 40
    )
    buckets = [s.value for s in latency.samples if s.name.endswith("_bucket")]
    assert buckets == sorted(buckets)  # cumulative
    assert (
        value(
            families,
            "volley_receipt_latency_seconds",
            "volley_receipt_latency_seconds_count",
            operator="local",
        )
        == 40
    )
    samples = {s.name for f in families.values() for s in f.samples}
    dashboard = (Path(__file__).parents[2] / "examples" / "grafana-volley.json").read_text()
    assert set(re.findall(r"volley_\w+", dashboard)) <= samples  # every panel has data
    await engine.stop()
    await engine.stopped.wait()
    families = await scrape(served)
    assert value(families, "volley_engine_up") == 0
    for name in LIVE:
        assert name not in families
    await served.stop()
