"""`make demo` runs `volley demo`: simulator, sample campaign, engine, outcome."""

from engine import cli


def test_demo_sends_the_sample_campaign(tmp_path, capsys):
    assert cli.main(["demo", "--dir", str(tmp_path / "demo"), "--tps", "2000"]) == 0
    out = capsys.readouterr().out
    assert "enqueued batch demo-campaign: 10 messages" in out
    assert "drained" in out
    assert "delivered" in out
    assert "SMS parts to bill" in out
    assert "segmented reactivation-sleep30-20261123" in out
    assert "segmented dead:" in out and "listed, not sent" in out
    pruned = int(out.split("numbers pruned as dead by their receipts: ")[1].split()[0])
    assert pruned > 0
    clicked = int(out.split("clicked ")[1].split()[0])
    assert clicked > 10  # about one delivered message of the segments' in eight
    report = out[out.index("The campaign report") :]
    assert "campaign reactivation" in report and "clickers" in report and "sleep30" in report
