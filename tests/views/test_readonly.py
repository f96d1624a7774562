"""No path through `seqdb sql` (the guard) or the DuckDB connection itself can change the database."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from seqdb.db.models import TABLES
from seqdb.errors import SeqdbError
from seqdb.views import QueryRefused, connect, sql
from tests.helpers import assert_one_line_error, run_cli_inprocess
from tests.views.seed import seed

ATTEMPTS = [
    "DELETE FROM trials",
    "DELETE FROM db.trial",
    "DELETE FROM db.public.trial",
    "UPDATE tables.trial SET state = 'failed'",
    "UPDATE db.trial SET state = 'failed'",
    "INSERT INTO db.metric (trial_id, step, epoch, name, value, time) VALUES (1, 999, 0, 'x', 1, 1)",
    "DROP TABLE db.metric",
    "DROP VIEW trials",
    "CREATE TABLE db.evil (a INTEGER)",
    "ALTER TABLE db.trial ADD COLUMN evil INTEGER",
    "TRUNCATE db.metric",
    "ATTACH '/tmp/seqdb-evil.db' AS evil",
    "DETACH db",
    "COPY (SELECT 1) TO '/tmp/seqdb-evil.csv'",
    "COPY db.metric FROM '/etc/hostname'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "PRAGMA lock_configuration = false",
    "CALL postgres_execute('db', 'DELETE FROM metric')",
    "SELECT * FROM postgres_execute('db', 'DELETE FROM metric')",
    "SELECT * FROM postgres_execute('db', 'COMMIT; SET default_transaction_read_only = off; DELETE FROM metric')",
    "SELECT * FROM postgres_query('db', 'DELETE FROM metric RETURNING *')",
    "SELECT * FROM sqlite_query('db', 'DELETE FROM metric RETURNING *')",
    "SELECT * FROM query('DELETE FROM db.metric')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT 1; DELETE FROM db.metric",
    "WITH x AS (DELETE FROM db.metric RETURNING *) SELECT * FROM x",
    "BEGIN; DELETE FROM db.metric; COMMIT",
    "CHECKPOINT db",
    "VACUUM",
    "EXPORT DATABASE '/tmp/seqdb-evil'",
    "SELECT * FROM learning_curve('1 OR 1=1; DELETE FROM metric')",
]
# Statements that DuckDB itself must refuse even without the guard (the layers under it).
RAW_ATTEMPTS = [
    "DELETE FROM tables.trial", "DELETE FROM {t}trial", "UPDATE {t}trial SET state = 'failed'",
    "INSERT INTO {t}stop_request (reason, created_at) VALUES ('x', now())", "DROP TABLE {t}metric",
    "CREATE TABLE {t}evil (a INTEGER)", "ATTACH '/tmp/seqdb-evil.db' AS evil", "COPY (SELECT 1) TO '/tmp/seqdb-evil.csv'",
    "INSTALL httpfs", "SET enable_external_access = true", "SET lock_configuration = false",
    "SELECT * FROM postgres_execute('db', 'DELETE FROM metric')",
    "SELECT * FROM postgres_execute('db', 'COMMIT; SET default_transaction_read_only = off; DELETE FROM metric')",
    "SELECT * FROM sqlite_query('db', 'DELETE FROM metric RETURNING *')",
]


def snapshot(engine) -> dict:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f'SELECT * FROM "{t}" ORDER BY 1')).all() for t in TABLES}


def test_no_statement_changes_the_database(engine, db_url, backend):
    seed(engine)
    before = snapshot(engine)
    prefix = "db." if backend == "sqlite" else "db.public."
    with connect(db_url) as vc:
        for statement in ATTEMPTS:
            with pytest.raises(SeqdbError):
                sql(vc, statement)
        for statement in RAW_ATTEMPTS:  # straight to DuckDB, bypassing the guard
            cur = vc.cursor()
            with pytest.raises(Exception):  # noqa: B017 - any refusal will do; the snapshot decides
                cur.execute(statement.format(t=prefix)).fetchall()
            cur.close()
        assert sql(vc, "SELECT count(*) AS n FROM trials").to_pylist()[0]["n"] == 35  # still usable
    assert snapshot(engine) == before
    assert not Path("/tmp/seqdb-evil.csv").exists() and not Path("/tmp/seqdb-evil.db").exists()


def test_guard_messages_are_one_line(vc):
    with pytest.raises(QueryRefused, match="refused a DELETE statement"):
        sql(vc, "DELETE FROM trials")
    with pytest.raises(QueryRefused, match="exactly one statement"):
        sql(vc, "SELECT 1; SELECT 2")
    with pytest.raises(QueryRefused, match=r"table function postgres_execute\(\) is not allowed"):
        sql(vc, "SELECT * FROM (SELECT * FROM postgres_execute('db', 'SELECT 1'))")


def test_cli_refuses_writes_with_one_line(seeded_db):
    url, _ = seeded_db
    assert_one_line_error(run_cli_inprocess("--db", url, "sql", "DROP TABLE db.trial"), "DROP", "read-only")
    assert_one_line_error(run_cli_inprocess("--db", url, "sql", "SELECT * FROM no_such_view"), "no_such_view")
    assert_one_line_error(run_cli_inprocess("--db", url, "sql", "SELEC 1"), "syntax")
