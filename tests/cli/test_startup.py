"""CLI start-up stays light: each command imports only what it uses (the timings themselves are
measured by benchmarks/bench_overhead.py; these tests pin the imports that made it slow)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import contextlib, io, json, sys
from seqdb.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main({args!r})
heavy = ["sqlalchemy", "alembic", "sqlmodel", "seqdb.db.models", "duckdb", "pyarrow", "pandas", "polars", "torch"]
print(json.dumps({{"code": code, "loaded": [m for m in heavy if m in sys.modules], "out": out.getvalue()}}))
"""


def probe(*args: str, cwd=None) -> dict:  # noqa: ANN001
    """Run the CLI once in a fresh interpreter; which heavy modules did it import?"""
    proc = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["run", "--help"]])
def test_help_and_version_import_nothing_heavy(args):
    result = probe(*args)
    assert result["code"] == 0 and result["out"]
    assert result["loaded"] == []


def test_status_needs_no_alembic_nor_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'seqdb.db'}"
    from tests.helpers import run_cli_inprocess

    assert run_cli_inprocess("--db", url, "db", "upgrade").code == 0
    result = probe("--db", url, "status")
    assert result["code"] == 0 and "live workers: 0" in result["out"]
    assert result["loaded"] == ["sqlalchemy"]


def test_sql_table_needs_no_arrow_nor_pandas(tmp_path):
    url = f"sqlite:///{tmp_path / 'seqdb.db'}"
    from tests.helpers import run_cli_inprocess

    assert run_cli_inprocess("--db", url, "db", "upgrade").code == 0
    result = probe("--db", url, "sql", "SELECT 'it''s' AS q")
    assert result["code"] == 0 and "it's" in result["out"]
    assert "pyarrow" not in result["loaded"] and "pandas" not in result["loaded"] and "alembic" not in result["loaded"]
