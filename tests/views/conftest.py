"""Fixtures: a seeded database per backend, shared by a module's read-only tests, and a view
connection over it. Tests that write get their own database (`engine` / `db_url`)."""

from __future__ import annotations

import pytest

from seqdb.db.engine import dispose_engines
from seqdb.views import connect
from tests.conftest import BACKENDS, create_pg_database, drop_pg_database
from tests.views.seed import migrate_and_seed


@pytest.fixture(scope="module", params=BACKENDS)
def seeded_db(request, tmp_path_factory):
    """(url, Seeded) of a migrated, seeded database; read-only tests only."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('views') / 'seqdb.db'}"
    else:
        url = create_pg_database()
    yield url, migrate_and_seed(url)
    dispose_engines()
    if request.param == "postgres":
        drop_pg_database(url)


@pytest.fixture(scope="module")
def vc(seeded_db):
    conn = connect(seeded_db[0])
    yield conn
    conn.close()


@pytest.fixture
def seeded(seeded_db):
    return seeded_db[1]
