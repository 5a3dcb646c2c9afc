"""volley report: per batch and per campaign, as text, JSON and CSV, from a real store."""

import csv
import io
import json

import pytest

from engine import cli, config, report
from engine.store import MarkSent, NewMessage, RecordMo, RecordReceipt, Skip
from engine.store.records import ClickIn, Link
from engine.wiring import open_store

NOW = 1_800_000_000.0


@pytest.fixture
def cfg_path(tmp_path):
    path = tmp_path / "engine.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "db"}"\n[links]\nbase = "https://s.example/"\n'
        '[[operators]]\nname = "op"\npassword = "x"\nprice_per_part = 0.5\n'
    )
    return path


def message(i, parts=1):
    code = f"code{i:03d}"
    return NewMessage(
        to=f"+7916400{i:04d}", text=f"Hi https://s.example/{code}", sender="S", ext_id=str(i),
        route="op", parts=parts, links=[Link(code=code, url="https://shop.example/")],
    )  # fmt: skip


def receipt(smsc_id, state, stat):
    return RecordReceipt(candidates=(smsc_id,), state=state, final=True, stat=stat, err=1,
                         network_error=None, at=NOW + 10)  # fmt: skip


@pytest.fixture
def filled(cfg_path):
    cfg = config.load(cfg_path)
    store = open_store(cfg)
    store.enqueue(
        "w-s1", [message(i, parts=2) for i in range(5)], now=NOW, campaign="w", segment="s1"
    )
    store.enqueue(
        "w-s2", [message(i) for i in range(5, 8)], now=NOW + 1, campaign="w", segment="s2"
    )
    store.enqueue("loose", [message(9)], now=NOW + 2)
    claimed = store.claim("op", 100, NOW + 5)
    skip, sent = claimed[0], claimed[1:]
    store.apply([Skip(id=skip.id, reason="stopped", at=NOW + 5)])
    store.apply([MarkSent(id=m.id, smsc_ids=[f"x{m.id}"], at=NOW + 5) for m in sent])
    outcomes = [receipt(f"x{m.id}", "delivered", "DELIVRD") for m in sent]
    outcomes[0] = receipt(f"x{sent[0].id}", "undelivered", "UNDELIV")
    store.apply(outcomes)
    codes = ["code002", "code002", "code003", "code006"]
    store.record_clicks([ClickIn(code=c, at=NOW + 20 + i) for i, c in enumerate(codes)])
    store.apply([RecordMo(source="+79164000004", destination="S", text="ok", at=NOW + 30)])
    store.close()
    return cfg


def test_a_campaign_per_step_and_in_total(filled, cfg_path, capsys):
    store = open_store(filled, readonly=True)
    result = report.build(filled, store, campaign="w")
    store.close()
    s1, s2 = result.batches
    assert (s1.segment, s1.messages, s1.parts, s1.skipped, s1.delivered) == (
        "s1",
        5,
        10,
        {"stopped": 1},
        3,
    )
    assert s1.states == {"delivered": 3, "skipped": 1, "undelivered": 1}
    assert (s1.clickers, s1.clicks, s1.replies, s1.repliers, s1.ctr) == (2, 3, 1, 1, 2 / 3)
    assert (s1.cost_parts, s1.cost) == (8, 4.0)  # the skipped one is not billed
    assert (s2.messages, s2.delivered, s2.clickers, s2.cost_parts, s2.cost) == (3, 3, 1, 3, 1.5)
    (w,) = result.campaigns
    assert (w.campaign, w.steps, w.total.delivered, w.total.clickers, w.total.cost) == (
        "w",
        ["w-s1", "w-s2"],
        6,
        3,
        5.5,
    )
    assert w.total.ctr == pytest.approx(0.5)

    assert cli.main(["report", "--campaign", "w", "--config", str(cfg_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("campaign w\n  step")
    assert "66.7%" in out and "total" in out and "skipped: stopped 1" in out
    assert "loose" not in out


def test_json_csv_and_every_batch(filled, cfg_path, capsys):
    assert cli.main(["report", "--json", "--config", str(cfg_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [b["batch"] for b in data["batches"]] == ["w-s1", "w-s2", "loose"]
    assert data["campaigns"][0]["total"]["clicks"] == 4
    assert cli.main(["report", "w-s2", "loose", "--csv", "--config", str(cfg_path)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["row"], r["batch"], r["clickers"], r["cost"]) for r in rows] == [
        ("batch", "w-s2", "1", "1.50"),
        ("batch", "loose", "0", "0.50"),
        ("campaign", "", "1", "1.50"),
    ]


def test_unknown_batch_or_campaign_exits_1(filled, cfg_path, capsys):
    assert cli.main(["report", "nope", "--config", str(cfg_path)]) == 1
    assert "no batch 'nope'" in capsys.readouterr().err
    assert cli.main(["report", "--campaign", "nope", "--config", str(cfg_path)]) == 1
    assert "no batch of campaign 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):  # argparse: bad usage
        cli.main(["report", "--json", "--csv", "--config", str(cfg_path)])


def test_chart_needs_matplotlib(filled, cfg_path, tmp_path, capsys):
    png = tmp_path / "funnel.png"
    args = ["report", "--campaign", "w", "--chart", str(png), "--config", str(cfg_path)]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert cli.main(args) == 2
        assert "pip install 'smsvolley[chart]'" in capsys.readouterr().err
        return
    assert cli.main(args) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_volley_enqueue_makes_a_campaign_step(cfg_path, tmp_path, capsys):
    lines = tmp_path / "spring.jsonl"
    lines.write_text(
        '{"id": "1", "to": "+79161234567", "text": "Sale: https://shop.example/a?utm_source=sms"}\n'
    )
    args = ["enqueue", str(lines), "--batch", "spring-1", "--campaign", "spring", "--step", "s1"]
    assert cli.main([*args, "--config", str(cfg_path)]) == 0
    capsys.readouterr()
    assert cli.main(["report", "--campaign", "spring", "--json", "--config", str(cfg_path)]) == 0
    (step,) = json.loads(capsys.readouterr().out)["batches"]
    assert (step["batch"], step["campaign"], step["segment"], step["parts"]) == (
        "spring-1",
        "spring",
        "s1",
        1,
    )
    again = ["enqueue", str(lines), "--batch", "spring-1", "--campaign", "autumn"]
    assert cli.main([*again, "--config", str(cfg_path)]) == 1
    assert "is step 's1' of campaign 'spring'" in capsys.readouterr().err
    store = open_store(config.load(cfg_path), readonly=True)
    (msg,) = store.messages("spring-1")
    assert msg.text.startswith("Sale: https://s.example/") and store.contacts(msg.to) == [msg.id]
    store.close()
