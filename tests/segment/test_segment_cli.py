"""`volley segment` as users run it, and the whole loop: segment, send, prune, segment."""

import json

import pytest
import trio

from engine import cli, config
from engine.service import Engine
from engine.smsc.options import Options
from engine.smsc.server import Smsc
from engine.wiring import open_store

from .test_job import AS_OF, EDGE, RULES


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "engine.toml").write_text('[store]\npath = "db"\n')
    (tmp_path / "customers.csv").write_text(EDGE, encoding="utf-8")
    return tmp_path


def segment(workdir, *args):
    return cli.main(
        ["segment", str(workdir / "customers.csv"), "--rules", str(RULES),
         "--as-of", AS_OF.isoformat(), "--config", str(workdir / "engine.toml"), *args]
    )  # fmt: skip


def test_dry_run_reports_and_enqueues_nothing(workdir, capsys):
    assert segment(workdir, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "(dry run: nothing enqueued)" in out
    assert "segment sleep30 -> batch reactivation-sleep30-20261123" in out
    assert "excluded before segmenting: duplicate 1, invalid_number 1, no_consent 1" in out
    assert not (workdir / "db").exists()
    assert not (workdir / "customers-removal-20261123.csv").exists()


def test_a_run_enqueues_one_batch_per_segment_and_lists_the_dead(workdir, capsys):
    assert segment(workdir) == 0
    out = capsys.readouterr().out
    assert "enqueued: 3 queued" in out
    removal = workdir / "customers-removal-20261123.csv"
    assert f"listed for removal written to {removal}" in out
    assert cli.main(["status", "--json", "--config", str(workdir / "engine.toml")]) == 0
    batches = json.loads(capsys.readouterr().out)["batches"]
    assert batches == {
        "reactivation-never-20261123": {"queued": 1},
        "reactivation-sleep30-20261123": {"queued": 3},
    }


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--as-of", "yesterday"], "--as-of: 'yesterday': expected a date"),
        (["--rules", "nope.toml"], "nope.toml: No such file or directory"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(workdir, capsys, args, error):
    assert segment(workdir, *args) == 2
    assert error in capsys.readouterr().err


def test_a_bad_header_names_the_missing_column(workdir, capsys):
    (workdir / "customers.csv").write_text("tel,name\n+79161234567,Anna\n")
    assert segment(workdir) == 2
    assert "no column 'phone' for [columns] phone (the header has: tel, name)" in (
        capsys.readouterr().err
    )


def send_everything(cfg_path, dead: set[str]) -> set[str]:
    """Run the engine against a simulator that knows ``dead``; returns the pruned numbers."""

    async def main() -> set[str]:
        smsc = Smsc(Options(port=0, dead_numbers=frozenset(dead), receipt_delay=0.0, seed=1))
        async with trio.open_nursery() as nursery:
            port = await nursery.start(smsc.serve)
            text = cfg_path.read_text().replace("port = 9\n", f"port = {port}\n")
            cfg_path.write_text(text)
            cfg = config.load(cfg_path)
            store = open_store(cfg)
            with trio.fail_after(20):
                await Engine(cfg, store).run(until_drained=True)
            pruned = {number for number, _ in store.list_dead()}
            store.close()
            nursery.cancel_scope.cancel()
        return pruned

    return trio.run(main)


def test_segment_send_prune_segment(workdir, capsys):
    """Receipts prune the dead numbers; the next run excludes them."""
    (workdir / "engine.toml").write_text(
        '[store]\npath = "db"\n[prune]\nafter_failures = 1\n'
        '[[operators]]\nname = "local"\nport = 9\npassword = "x"\ntps = 1000\n'
    )
    assert segment(workdir) == 0
    dead = {"+79161000001", "+79161000002"}
    assert send_everything(workdir / "engine.toml", dead) == dead
    capsys.readouterr()
    assert segment(workdir, "--dry-run") == 0  # the same campaign: it sent to them already
    out = capsys.readouterr().out
    sleep30 = out[out.index("segment sleep30") :]
    assert "recipients: 0\n  excluded: already_sent 3" in sleep30
    assert segment(workdir, "--dry-run", "--campaign", "another") == 0
    out = capsys.readouterr().out
    sleep30 = out[out.index("segment sleep30") :]
    assert "recipients: 1\n  excluded: dead 2" in sleep30


def test_campaign_names_the_batches(workdir, capsys):
    assert segment(workdir, "--campaign", "winter") == 0
    out = capsys.readouterr().out
    assert "segment sleep30 -> batch winter-sleep30-20261123" in out
    assert "utm_campaign=winter&utm_content=sleep30" in out
    assert segment(workdir, "--campaign", "winter") == 0  # the same day again: nothing new
    again = capsys.readouterr().out
    assert "recipients: 0\n  excluded: already_sent 3" in again and "enqueued:" not in again


def test_the_base_can_come_from_stdin(workdir, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(EDGE))
    args = ["segment", "-", "--rules", str(RULES), "--as-of", AS_OF.isoformat()]
    assert cli.main([*args, "--config", str(workdir / "engine.toml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "<stdin>:7: phone: '12345' is not a valid number" in out


def test_a_rules_error_exits_2_naming_the_segment(workdir, capsys):
    bad = workdir / "bad.toml"
    bad.write_text(
        RULES.read_text().replace("days_since_activity = { ge = 30, lt = 60 }", "days = 30")
    )
    assert cli.main(["segment", str(workdir / "customers.csv"), "--rules", str(bad),
                     "--config", str(workdir / "engine.toml")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert f"{bad}: segments[3] (sleep30): when.days: unknown value 'days'" in err


def test_a_message_over_the_part_limit_exits_2_with_an_example(workdir, capsys):
    long = workdir / "long.toml"
    long.write_text(
        RULES.read_text().replace(
            "как вам у нас?", "как вам у нас? " + "Очень длинный текст. " * 20
        )
    )
    assert cli.main(["segment", str(workdir / "customers.csv"), "--rules", str(long),
                     "--as-of", AS_OF.isoformat(),
                     "--config", str(workdir / "engine.toml")]) == 2  # fmt: skip
    captured = capsys.readouterr()
    assert "ERROR: a message needs" in captured.out
    assert "segment sleep30: a message needs 9 UCS2 parts, the limit is 6 (line 2: 'Анна, " in (
        captured.err
    )
    assert "volley segment: nothing enqueued" in captured.err
    assert cli.main(["status", "--json", "--config", str(workdir / "engine.toml")]) == 0
    assert json.loads(capsys.readouterr().out)["batches"] == {}


def test_the_example_rules_on_a_generated_base_with_a_bom(workdir, capsys, monkeypatch):
    """`python -m engine.segment.sample N > file.csv`, then `volley segment` on it."""
    import subprocess
    import sys

    sample = subprocess.run(
        [sys.executable, "-m", "engine.segment.sample", "500", "--as-of", AS_OF.isoformat(),
         "--seed", "4", "--delimiter", ";", "--bom"],
        capture_output=True, check=True,
    )  # fmt: skip
    assert sample.stdout.startswith("\ufeffcustomer_id;phone;".encode())
    (workdir / "base.csv").write_bytes(sample.stdout)
    monkeypatch.chdir(workdir)
    example = RULES.parents[2] / "examples" / "reactivation.toml"
    args = ["segment", "base.csv", "--rules", str(example), "--as-of", AS_OF.isoformat()]
    assert cli.main(args) == 2  # its sleep30 cap needs [caps.marketing]
    err = capsys.readouterr().err
    assert "segment sleep30: cap: sends are counted per number only for kinds" in err
    assert "Add [caps.marketing]" in err
    (workdir / "engine.toml").write_text(
        '[store]\npath = "db"\n[caps.marketing]\nmax = 4\nperiod = "30d"\n'
    )
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "customers read: 500" in out
    assert "listed for removal written to base-removal-20261123.csv" in out
    removal = (workdir / "base-removal-20261123.csv").read_text(encoding="utf-8")
    assert removal.startswith("segment,line,customer_id,phone,")
    assert cli.main(args) == 0  # a re-run the same day
    again = capsys.readouterr().out
    assert "already_sent" in again and "enqueued:" not in again
