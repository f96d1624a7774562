"""Migrations and models agree, on SQLite and Postgres; old revisions upgrade with rows intact."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from seqdb.db.engine import create_engine_for
from seqdb.db.migrate import VERSION_TABLE, current_revision, downgrade, head_revision, require_head, upgrade
from seqdb.db.models import TABLES
from seqdb.errors import SchemaRevisionError

FIXTURES = Path(__file__).parent / "fixtures"


def _diff(engine) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE, "render_as_batch": True}
        )
        return [d for d in compare_metadata(ctx, SQLModel.metadata) if not _is_foreign_table(d)]


def _is_foreign_table(diff) -> bool:
    """Differences that concern another tool's tables (Optuna's) are not ours to compare."""
    if diff[0] == "remove_table":
        return diff[1].name not in SQLModel.metadata.tables
    if diff[0] == "remove_index":
        return diff[1].table.name not in SQLModel.metadata.tables
    return False


def test_upgrade_head_matches_models(empty_db_url):
    engine = create_engine_for(empty_db_url)
    assert upgrade(engine) == head_revision()
    assert _diff(engine) == []
    names = set(sa.inspect(engine).get_table_names())
    assert set(TABLES) <= names and VERSION_TABLE in names
    require_head(engine)
    engine.dispose()


def test_downgrade_upgrade_round_trip(empty_db_url):
    engine = create_engine_for(empty_db_url)
    upgrade(engine)
    assert downgrade(engine, "base") is None
    assert not set(TABLES) & set(sa.inspect(engine).get_table_names())
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _diff(engine) == []
    engine.dispose()


def test_unmigrated_and_unknown_revisions_refused(empty_db_url):
    engine = create_engine_for(empty_db_url)
    with pytest.raises(SchemaRevisionError, match="seqdb db upgrade"):
        require_head(engine)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'ffffffffffff'"))
    with pytest.raises(SchemaRevisionError, match="unknown to this seqdb"):
        require_head(engine)
    with pytest.raises(SchemaRevisionError, match="unknown to this seqdb"):
        upgrade(engine)
    engine.dispose()


def test_optuna_can_share_the_database(empty_db_url):
    import optuna

    engine = create_engine_for(empty_db_url)
    upgrade(engine)
    engine.dispose()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = empty_db_url.replace("postgresql://", "postgresql+psycopg://")
    study = optuna.create_study(storage=url, study_name="shared")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    engine = create_engine_for(empty_db_url)
    require_head(engine)  # Optuna's alembic_version did not disturb ours
    assert _diff(engine) == []
    engine.dispose()


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.db")), ids=lambda p: p.stem)
def test_released_revisions_upgrade_with_rows_intact(fixture, tmp_path):
    path = tmp_path / fixture.name
    shutil.copy(fixture, path)
    engine = create_engine_for(f"sqlite:///{path}")
    before = {t: _count(engine, t) for t in TABLES}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert {t: _count(engine, t) for t in TABLES} == before
    assert _diff(engine) == []
    engine.dispose()


def test_every_revision_has_a_fixture():
    from seqdb.db.migrate import known_revisions

    assert {p.stem for p in FIXTURES.glob("*.db")} == known_revisions(), (
        "run `python scripts/make_revision_fixture.py` after adding a migration"
    )


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
