import subprocess
import sys

import pytest

from engine import cli


def test_every_command_has_help(capsys):
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as exc:
            cli.main([name, "--help"])
        assert exc.value.code == 0
        assert "--config" in capsys.readouterr().out


def test_python_dash_m_engine_runs():
    out = subprocess.run(
        [sys.executable, "-m", "engine", "--help"], capture_output=True, text=True, check=True
    )
    assert "smsc" in out.stdout


def test_bad_config_exits_2(tmp_path, capsys):
    bad = tmp_path / "engine.toml"
    bad.write_text("[store]\npth = 1\n")
    assert cli.main(["status", "--config", str(bad)]) in (1, 2)
