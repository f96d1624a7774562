"""A Postgres password given on the command line never shows: not on stdout or stderr, not in
any file of the project (seqdb.yaml, logs, exports), not in any row of the database. Fed
through every command that takes a URL, in runs that succeed and runs that fail."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from seqdb.errors import redact
from seqdb.db.engine import dispose_engines
from tests.helpers import run_cli, run_cli_inprocess

SECRET = "Hunter2-s3cret"


def _with_password(url: str, password: str = SECRET, **changes) -> str:
    return make_url(url).set(password=password, **changes).render_as_string(hide_password=False)


def _all_text_in_database(url: str) -> str:
    """Every row of every table, as text."""
    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, dbname=u.database) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return "\n".join(str(row) for t in tables for row in conn.execute(f'SELECT row_to_json(x)::text FROM "{t}" x'))


def _all_text_in_files(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file() and p.stat().st_size < 5_000_000)


def test_redact_forms():
    text = redact(f"postgresql://u:{SECRET}@h/db password={SECRET} password='{SECRET} x' {{'password': '{SECRET}'}}")
    assert SECRET not in text and text.count("***") == 4
    assert redact("no secrets here") == "no secrets here"


def test_password_never_printed_or_stored(pg_url, tmp_path):
    from seqdb.app.demo import demo_experiment
    import yaml

    url = _with_password(pg_url)
    proj = tmp_path / "proj"
    outputs = []

    def cli(*args, cwd=proj):  # noqa: ANN001, ANN202
        """In-process (fast), except `run`: a real process, its workers and their logs."""
        if "run" in args:
            res = run_cli(*args, cwd=str(cwd))
        else:
            res = run_cli_inprocess("--project", str(proj), *args) if cwd == proj else run_cli_inprocess(*args)
            dispose_engines()
        outputs.append((args, res))
        return res

    assert cli("--db", url, "init", str(proj), cwd=tmp_path).code == 0
    settings = (proj / "seqdb.yaml").read_text()
    assert "passfile=.pgpass" in settings and SECRET not in settings
    assert oct((proj / ".pgpass").stat().st_mode & 0o777) == "0o600"
    exp = demo_experiment(quick=True)
    exp["name"], exp["budgets"] = "secret-exp", ["10k"]
    exp["data"]["path"] = str(tmp_path / "sp500.csv")
    from seqdb.data.sp500 import write_sp500

    write_sp500(tmp_path / "sp500.csv")
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(exp, sort_keys=False))
    # succeeding commands, each given the URL with the password
    for args in (["status"], ["db", "current"], ["db", "upgrade"], ["experiment", "add", str(tmp_path / "exp.yaml")],
                 ["study", "create", "--budget", "10k", "--horizon", "1"],
                 ["sql", "SELECT count(*) AS n FROM trials"], ["export", "--output", str(proj / "export")],
                 ["run", "--budget", "10k", "--horizon", "1", "--once", "--lease-seconds", "5", "--no-live"]):
        res = cli("--db", url, *args)
        assert res.code == 0, (args, res.err[-2000:])
    # failing commands: wrong port, wrong database, bad port, bad scheme, DuckDB's own error
    bad = [_with_password(pg_url, port=1), _with_password(pg_url, database="no_such_db_x"),
           url.replace(f":{make_url(pg_url).port or 5432}/", ":notaport/"), url.replace("postgresql", "mysql", 1)]
    for bad_url, args in zip(bad + bad[1:2], (["status"], ["sql", "SELECT 1"], ["db", "upgrade"], ["status"], ["status"])):
        assert cli("--db", bad_url, *args).code != 0
    # the project's own settings (no --db): the passfile
    assert cli("status").code == 0
    leaked = [args for args, res in outputs if SECRET in res.out + res.err]
    assert not leaked, f"password printed by {leaked}"
    assert SECRET not in _all_text_in_files(proj).replace((proj / ".pgpass").read_text(), "")
    assert SECRET not in _all_text_in_database(pg_url)
