"""`make demo` runs `volley demo`: simulator, sample campaign, engine, outcome."""

from engine import cli


def test_demo_sends_the_sample_campaign(tmp_path, capsys):
    assert cli.main(["demo", "--dir", str(tmp_path / "demo"), "--tps", "500"]) == 0
    out = capsys.readouterr().out
    assert "enqueued batch demo-campaign: 10 messages" in out
    assert "drained" in out
    assert "delivered" in out
    assert "SMS parts to bill" in out
