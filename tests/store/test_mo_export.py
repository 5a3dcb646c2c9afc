"""Inbound messages keep why they did (or did not) opt out; the export shows it."""

import json

from engine import cli, config
from engine.store import RecordMo
from engine.wiring import open_store


def test_the_mo_export_shows_the_rule_that_matched(tmp_path, capsys):
    path = tmp_path / "engine.toml"
    path.write_text('[store]\npath = "db"\n')
    store = open_store(config.load(path))
    store.apply(
        [
            RecordMo(
                source="+79160000001",
                destination="Shop",
                text="Stop please",
                at=1.0,
                stop=True,
                stop_rule="keyword STOP",
            ),
            RecordMo(
                source="+79160000002",
                destination="Shop",
                text="don't stop",
                at=2.0,
                stop_rule="not an opt-out: STOP among other words",
            ),
        ]
    )
    store.close()
    args = ["numbers", "export", "--mo", "--format", "jsonl", "--config", str(path)]
    assert cli.main(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["text"], r["stopped"], r["stop_rule"]) for r in rows] == [
        ("Stop please", True, "keyword STOP"),
        ("don't stop", False, "not an opt-out: STOP among other words"),
    ]
    assert cli.main(["numbers", "export", "--mo", "--config", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "at,from,to,text,stopped,stop_rule,batch"
