"""`seqdb sql` output formats and `seqdb export`."""

from __future__ import annotations

import json

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from seqdb.views import VIEW_NAMES
from tests.helpers import assert_one_line_error, run_cli_inprocess

QUERY = "SELECT budget, horizon, param_count, best_val_loss FROM scaling_points WHERE experiment = 'scale' ORDER BY horizon, param_count"


def test_sql_formats(seeded_db, tmp_path):
    url, _ = seeded_db
    table = run_cli_inprocess("--db", url, "sql", QUERY)
    assert table.code == 0 and "20M" in table.out and "6 row(s)" in table.out
    as_json = json.loads(run_cli_inprocess("--db", url, "sql", QUERY, "--format", "json").out)
    assert [r["budget"] for r in as_json] == ["500k", "2M", "20M"] * 2
    csv_out = run_cli_inprocess("--db", url, "sql", QUERY, "--format", "csv").out
    assert csv_out.splitlines()[0] == '"budget","horizon","param_count","best_val_loss"'
    pq_file = tmp_path / "points.parquet"
    assert run_cli_inprocess("--db", url, "sql", QUERY, "--output", str(pq_file)).code == 0
    assert pq.read_table(pq_file).num_rows == 6
    csv_file = tmp_path / "t.csv"
    assert run_cli_inprocess("--db", url, "sql", "SELECT * FROM pareto_front", "--output", str(csv_file)).code == 0
    assert pacsv.read_csv(csv_file).num_rows == 3  # list columns written as JSON text
    assert_one_line_error(run_cli_inprocess("--db", url, "sql", QUERY, "--format", "parquet"), "--output")
    assert_one_line_error(run_cli_inprocess("--db", url, "sql", QUERY, "--format", "xml"), "xml")


def test_export_all_views(seeded_db, tmp_path):
    url, _ = seeded_db
    out = run_cli_inprocess("--db", url, "export", "--output", str(tmp_path / "exp"))
    assert out.code == 0, out.err
    files = sorted(p.name for p in (tmp_path / "exp").iterdir())
    assert files == sorted(f"{v}.parquet" for v in VIEW_NAMES)
    assert pq.read_table(tmp_path / "exp" / "trials.parquet").num_rows == 35
    one = run_cli_inprocess("--db", url, "export", "workers", "--format", "json", "--output", str(tmp_path / "j"))
    assert one.code == 0 and len(json.loads((tmp_path / "j" / "workers.json").read_text())) == 2
    assert_one_line_error(run_cli_inprocess("--db", url, "export", "nope", "--output", str(tmp_path / "n")), "nope")
    assert not (tmp_path / "n").exists() or not any((tmp_path / "n").iterdir())
