"""`volley segment` with inputs that would become store keys: checked before anything is
enqueued (exit 2, FILE:LINE: FIELD: reason), never an LMDB traceback."""

from engine import cli

from .test_job import AS_OF, EDGE, RULES


def segment(tmp_path, *args):
    return cli.main(
        ["segment", str(tmp_path / "customers.csv"), "--rules", str(RULES),
         "--as-of", AS_OF.isoformat(), "--config", str(tmp_path / "engine.toml"), *args]
    )  # fmt: skip


def test_a_600_byte_customer_id_exits_2_with_nothing_enqueued(tmp_path, capsys):
    (tmp_path / "engine.toml").write_text('[store]\npath = "db"\n')
    long_id = "c" * 600
    base = EDGE.replace("a10;+79161000010", f"{long_id};+79161000010")
    (tmp_path / "customers.csv").write_text(base, encoding="utf-8")
    assert segment(tmp_path) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'customers.csv'}:11: customer_id: 600 characters, at most 64" in err
    assert "nothing enqueued" in err and "Traceback" not in err
    assert cli.main(["status", "--json", "--config", str(tmp_path / "engine.toml")]) == 0
    assert '"batches": {}' in capsys.readouterr().out


def test_a_campaign_name_too_long_for_a_batch_id_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "engine.toml").write_text('[store]\npath = "db"\n')
    (tmp_path / "customers.csv").write_text(EDGE, encoding="utf-8")
    assert segment(tmp_path, "--campaign", "w" * 600) == 2
    assert "batch id: " in capsys.readouterr().err


def test_a_number_no_operator_routes_is_excluded_with_its_line(tmp_path, capsys):
    (tmp_path / "engine.toml").write_text(
        '[store]\npath = "db"\n[[operators]]\nname = "us"\nprefixes = ["+1"]\n'
    )
    (tmp_path / "customers.csv").write_text(EDGE, encoding="utf-8")
    assert segment(tmp_path, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "no operator routes +79161000001" in out
