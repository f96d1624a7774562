"""Engines and the one session scope.

SQLite is the embedded default: WAL journal, a busy timeout, foreign keys on, and explicit
`BEGIN` / `BEGIN IMMEDIATE` so that write transactions take the write lock up front
(no SQLITE_BUSY half way through a claim). Postgres goes through psycopg 3.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from seqdb.errors import DatabaseError

SQLITE_BUSY_TIMEOUT_MS = 30_000
_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()

ALLOWED_URL_FORMS = "sqlite:///PATH, postgresql://USER@HOST:PORT/DB or postgresql+psycopg://..."


def normalize_url(url: str) -> sa.URL:
    """Parse a database URL; Postgres URLs always use the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise DatabaseError(f"malformed database URL {url!r}: {exc}; allowed: {ALLOWED_URL_FORMS}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise DatabaseError(f"database URL {url!r} names no file; allowed: {ALLOWED_URL_FORMS}")
        return parsed.set(drivername="sqlite")
    raise DatabaseError(f"unsupported database backend {backend!r} in {url!r}; allowed: {ALLOWED_URL_FORMS}")


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def create_engine_for(url: str, *, pool_size: int = 5) -> Engine:
    """A new engine for `url` (no connection is made yet)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _sqlite_events(engine)
        return engine
    return sa.create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=pool_size,
        connect_args={"connect_timeout": 5, "application_name": "seqdb"},
    )


def get_engine(url: str) -> Engine:
    """A process-wide cached engine per URL."""
    key = str(url)
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = create_engine_for(url)
        return engine


def dispose_engines() -> None:
    """Drop cached engines (after fork, or in tests)."""
    with _LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def check_connection(engine: Engine) -> None:
    """Connect once; a failure is a one-line DatabaseError naming the server."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except OperationalError as exc:
        raise DatabaseError(f"cannot connect to {safe_url(engine)}: {first_line(exc)}") from None


def safe_url(engine_or_url) -> str:  # noqa: ANN001
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(str(engine_or_url))
    return url.render_as_string(hide_password=True)


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def session_scope(engine: Engine, *, write: bool = True) -> Iterator[Session]:
    """The one transaction scope: commit on success, roll back on any exception.

    On SQLite a write scope starts with BEGIN IMMEDIATE (the write lock is taken at once and
    waits up to the busy timeout); a read scope starts a deferred transaction.
    """
    bind = engine
    if is_sqlite(engine):
        bind = engine.execution_options(sqlite_begin="IMMEDIATE" if write else "DEFERRED")
    factory = sessionmaker(bind=bind, expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
