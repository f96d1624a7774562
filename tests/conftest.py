"""Shared fixtures: real SQLite files and a real Postgres server, no mocks.

`db_url` / `engine` are parametrized over both backends. Each Postgres test gets a fresh
database (created and dropped here). Under CI=true an unreachable Postgres fails the run
instead of skipping. SEQDB_TEST_PG_URL points at the server (default: the local one).
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

from seqdb.db.engine import create_engine_for, dispose_engines
from seqdb.db.migrate import upgrade

PG_ADMIN_URL = os.environ.get("SEQDB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgres"]


def _pg_conninfo(url: str) -> str:
    u = make_url(url)
    return f"host={u.host or '127.0.0.1'} port={u.port or 5432} user={u.username or 'postgres'} dbname={u.database or 'postgres'}"


def pg_available() -> str | None:
    try:
        with psycopg.connect(_pg_conninfo(PG_ADMIN_URL), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).splitlines()[0]


def create_pg_database() -> str:
    """Create a fresh Postgres database; returns its URL."""
    problem = pg_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Postgres unreachable under CI=true: {problem}")
        pytest.skip(f"Postgres unreachable: {problem}")
    name = f"seqdb_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_conninfo(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(_pg_conninfo(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def empty_db_url(backend, tmp_path):
    """A URL of an empty database (no schema) on the parametrized backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'seqdb.db'}"
        dispose_engines()
        return
    url = create_pg_database()
    yield url
    dispose_engines()
    drop_pg_database(url)


@pytest.fixture
def db_url(empty_db_url):
    """A URL of a database migrated to the newest revision."""
    engine = create_engine_for(empty_db_url)
    upgrade(engine)
    engine.dispose()
    return empty_db_url


@pytest.fixture
def engine(db_url):
    eng = create_engine_for(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def pg_url():
    """A fresh Postgres database at head (for Postgres-only tests)."""
    url = create_pg_database()
    eng = create_engine_for(url)
    upgrade(eng)
    eng.dispose()
    yield url
    dispose_engines()
    drop_pg_database(url)
