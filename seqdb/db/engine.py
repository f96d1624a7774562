"""Engines and the one session scope.

SQLite is the embedded default: WAL journal, a busy timeout, foreign keys on, and explicit
`BEGIN` / `BEGIN IMMEDIATE` so that write transactions take the write lock up front
(no SQLITE_BUSY half way through a claim). Postgres goes through psycopg 3.

Read-only use never changes a database file: `get_engine` (the CLI's engine) opens an
existing SQLite file only (a missing one is an error, not a new empty database), and the
switch to WAL happens at the first write transaction, never on a read.

Secrets: every URL parsed here has its password remembered by `seqdb.errors.redact`, the
one place that masks passwords in text bound for the terminal, logs, files or the database.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from seqdb.errors import DatabaseError, redact, remember_secret

SQLITE_BUSY_TIMEOUT_MS = 30_000
_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()

ALLOWED_URL_FORMS = "sqlite:///PATH, postgresql://USER@HOST:PORT/DB or postgresql+psycopg://..."

def normalize_url(url: str) -> sa.URL:
    """Parse a database URL; Postgres URLs always use the psycopg 3 driver. Errors show the
    URL redacted."""
    shown = redact(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise DatabaseError(f"malformed database URL {shown!r}: {redact(str(exc))}; allowed: {ALLOWED_URL_FORMS}") from None
    remember_secret(parsed.password)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise DatabaseError(f"database URL {shown!r} names no file; allowed: {ALLOWED_URL_FORMS}")
        return parsed.set(drivername="sqlite")
    raise DatabaseError(f"unsupported database backend {backend!r} in {shown!r}; allowed: {ALLOWED_URL_FORMS}")


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, record):  # noqa: ANN001
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        record.info["wal"] = cur.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        mode = conn.get_execution_options().get("sqlite_begin", "")
        info = conn.connection.info  # the pooled connection's record: set once per connection
        if mode == "IMMEDIATE" and not info.get("wal"):
            # the first write switches the file to WAL (persistent); reads never change it
            conn.exec_driver_sql("PRAGMA journal_mode = WAL")
            info["wal"] = True
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def _sqlite_opener(path: str):  # noqa: ANN202
    """Open an EXISTING SQLite file (mode=rw: a missing file is an error, never created)."""

    def connect() -> sqlite3.Connection:
        if not Path(path).is_file():
            raise DatabaseError(f"SQLite database {path} does not exist (moved or deleted?); create it with `seqdb init PATH` or `seqdb db upgrade`")
        uri = f"file:{Path(path).resolve().as_posix()}?mode=rw"
        return sqlite3.connect(uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False)

    return connect


def create_engine_for(url: str, *, pool_size: int = 5, create: bool = True) -> Engine:
    """A new engine for `url` (no connection is made yet). With `create=False` a SQLite file
    must already exist (read-only commands and workers: never make an empty database)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        opener = {} if create else {"creator": _sqlite_opener(parsed.database)}
        engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **opener)
        _sqlite_events(engine)
        return engine
    return sa.create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=pool_size,
        connect_args={"connect_timeout": 5, "application_name": "seqdb"},
    )


def get_engine(url: str) -> Engine:
    """A process-wide cached engine per URL (the CLI's; a SQLite file must exist)."""
    key = str(url)
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = create_engine_for(url, create=False)
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
    """A URL for display: the password masked (a malformed URL is shown redacted)."""
    if isinstance(engine_or_url, Engine):
        return engine_or_url.url.render_as_string(hide_password=True)
    try:
        return make_url(str(engine_or_url)).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return redact(str(engine_or_url))


def first_line(exc: BaseException) -> str:
    """The first line of an error's text, redacted."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return redact(text.splitlines()[0]) if text else type(exc).__name__


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
