"""The light paths of `seqdb sql` / `seqdb status`: the same answers as the full ones."""

from __future__ import annotations

import duckdb
import pytest
import sqlalchemy as sa

from seqdb.db.engine import session_scope
from seqdb.db.migrate import downgrade, head_revision, light_head_revision, require_head
from seqdb.db.models import Study, Trial
from seqdb.errors import SchemaRevisionError
from seqdb.status import collect_status
from seqdb.views.connection import extension_file
from seqdb.views.query import sql, sql_rows
from tests.views.seed import seed


def test_sql_rows_match_arrow(vc):
    query = "SELECT trial_id, state, best_val_loss FROM trials ORDER BY trial_id"
    columns, rows = sql_rows(vc, query)
    table = sql(vc, query)
    assert columns == table.column_names and rows == [tuple(r.values()) for r in table.to_pylist()] and rows


def test_quoted_text_stays_one_literal(vc):
    assert sql_rows(vc, "SELECT 'a''b' AS q") == (["q"], [("a'b",)])
    from seqdb.views.guard import QueryRefused

    with pytest.raises(QueryRefused):  # a quote cannot smuggle a table function past the guard
        sql_rows(vc, "SELECT 1 FROM sqlite_query('db', 'SELECT 1'), (SELECT ''')')")


def test_no_extension_can_be_loaded_after_lock_down(vc, tmp_path):
    """Unsigned scanners load at connect; after the lock-down no file of any kind loads."""
    other = "postgres" if vc.backend == "sqlite" else "sqlite"
    copy = tmp_path / "evil.duckdb_extension"
    copy.write_bytes(open(extension_file(other), "rb").read(1 << 20))
    cur = vc.cursor()
    for statement in (f"LOAD '{extension_file(other)}'", f"LOAD '{copy}'", f"LOAD {other}",
                      "SET allow_unsigned_extensions = false", "RESET allow_unsigned_extensions"):
        with pytest.raises(duckdb.Error):
            cur.execute(statement)


def test_light_head_is_alembic_head():
    assert light_head_revision() == head_revision()


def test_fast_revision_check_still_refuses_an_old_schema(engine):
    require_head(engine)
    downgrade(engine, "-1")
    with pytest.raises(SchemaRevisionError, match="older than"):
        require_head(engine)


def test_status_counts_match_the_tables(engine):
    seeded = seed(engine)
    report = collect_status(engine)
    with session_scope(engine, write=False) as s:
        n_studies = s.execute(sa.select(sa.func.count()).select_from(Study)).scalar_one()
        by_state = dict(s.execute(sa.select(Trial.state, sa.func.count()).group_by(Trial.state)).all())
    assert len(report.studies) == n_studies and report.totals == by_state
    assert report.live_workers == 1  # seeded: one worker alive, one long silent
    assert sum(row.total for row in report.studies) == sum(by_state.values()) >= len(seeded.trial_ids) > 0
