"""A read-only DuckDB connection over the LIVE seqdb database.

DuckDB attaches the seqdb database itself (SQLite file or Postgres server) through its
sqlite / postgres scanners, `READ_ONLY`; nothing is copied, so every query sees the rows
the workers have committed so far. The scanner extensions come from the pinned
`duckdb-ext-sqlite` / `duckdb-ext-postgres` wheels (no download, works offline).

Read-only is enforced in layers (see docs/views.md, "Read-only"):
1. the database is attached READ_ONLY (SQLite opened read-only; Postgres transactions are
   `READ ONLY`, and the session default is `default_transaction_read_only=on`);
2. after the views are created, external access is disabled (no ATTACH, COPY, INSTALL, file
   reads) and DuckDB's configuration is locked (no SET can undo it);
3. every user statement passes `seqdb.views.guard.check_select` first: one SELECT, with
   table functions from an allow-list only.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from sqlalchemy.engine import make_url

from seqdb.db.engine import normalize_url, safe_url
from seqdb.errors import DatabaseError

DB_ALIAS = "db"  # the attached seqdb database inside DuckDB

# The scanners are LOADed by absolute path from the pinned duckdb-ext-* wheels (whose files
# pip checked against the registry's hashes at install). DuckDB's own signature check hashes
# the whole ~50 MB file on every connect (~0.25 s of every `seqdb sql`), so it is skipped:
# `allow_unsigned_extensions` only matters until `_lock_down`, after which no LOAD, INSTALL
# or SET can run (external access off, configuration locked).
CONNECT_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False, "allow_unsigned_extensions": True}


def extension_directory() -> str:
    """Folder of the scanner extensions shipped by the duckdb-ext-* wheels."""
    import duckdb_ext  # namespace package installed by duckdb-ext-sqlite / -postgres

    for root in duckdb_ext.__path__:
        folder = Path(root) / "extensions"
        if folder.is_dir():
            return str(folder)
    raise DatabaseError("DuckDB scanner extensions not found: install duckdb-ext-sqlite and duckdb-ext-postgres")


_EXTENSION_FILES: dict[str, str] = {}


def extension_file(name: str) -> str:
    """Absolute path of the shipped `<name>_scanner.duckdb_extension` for this DuckDB build."""
    if name not in _EXTENSION_FILES:
        version_dir = Path(extension_directory()) / f"v{duckdb.__version__}"
        found = sorted(version_dir.glob(f"*/{name}_scanner.duckdb_extension"))
        if not found:
            raise DatabaseError(f"DuckDB {name} scanner for DuckDB {duckdb.__version__} not found under {version_dir}; "
                                f"install duckdb-ext-{name}=={duckdb.__version__}")
        _EXTENSION_FILES[name] = str(found[0])
    return _EXTENSION_FILES[name]


def postgres_conninfo(url: str) -> str:
    """A libpq keyword/value string for DuckDB's postgres scanner (read-only by default)."""
    u = make_url(url)
    parts = {
        "host": u.host or "127.0.0.1",
        "port": u.port or 5432,
        "user": u.username or "postgres",
        "dbname": u.database or "postgres",
        "password": u.password,
        **{k: v for k, v in u.query.items() if isinstance(v, str)},
    }
    text = " ".join(f"{k}={_quote(str(v))}" for k, v in parts.items() if v is not None)
    return text + " options='-c default_transaction_read_only=on' application_name=seqdb_views"


def _quote(value: str) -> str:
    if value and all(c not in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class ViewConnection:
    """A locked DuckDB connection with the seqdb views; use `cursor()` per thread."""

    con: duckdb.DuckDBPyConnection
    url: str
    backend: str  # sqlite | postgres
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection to the same in-memory catalog, safe to use from another thread."""
        with self._lock:
            return self.con.cursor()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "ViewConnection":
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.close()


def _attach(con: duckdb.DuckDBPyConnection, url: str) -> str:
    """ATTACH the live database read-only; returns the backend name."""
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = Path(parsed.database)
        if not path.is_file():
            raise DatabaseError(f"SQLite database {path} does not exist; run `seqdb init` or pass --db")
        con.execute(f"LOAD {_sql_str(extension_file('sqlite'))}")
        con.execute(f"ATTACH {_sql_str(str(path))} AS {DB_ALIAS} (TYPE sqlite, READ_ONLY)")
        return "sqlite"
    con.execute(f"LOAD {_sql_str(extension_file('postgres'))}")
    conninfo = postgres_conninfo(parsed.render_as_string(hide_password=False))
    con.execute(f"ATTACH {_sql_str(conninfo)} AS {DB_ALIAS} (TYPE postgres, READ_ONLY)")
    return "postgres"


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """No file/network access, no extension installs, no configuration changes from here on."""
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def connect(url: str, *, threads: int | None = None) -> ViewConnection:
    """Open DuckDB over the live seqdb database at `url`, create the views, lock it down."""
    from seqdb.views.definitions import create_views

    con = duckdb.connect(":memory:", config=CONNECT_CONFIG)
    try:
        con.execute("SET TimeZone = 'UTC'")
        if threads or os.environ.get("SEQDB_DUCKDB_THREADS"):
            con.execute(f"SET threads = {int(threads or os.environ['SEQDB_DUCKDB_THREADS'])}")
        backend = _attach(con, url)
        create_views(con, backend)
        _lock_down(con)
    except duckdb.Error as exc:
        con.close()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(f"cannot open DuckDB views over {safe_url(url)}: {first}") from None
    return ViewConnection(con=con, url=url, backend=backend)
