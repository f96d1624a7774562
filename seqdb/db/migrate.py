"""Schema revisions: upgrade, current, and the guard every command runs first."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from seqdb.db.engine import check_connection, first_line, safe_url
from seqdb.errors import DatabaseError, SchemaRevisionError

VERSION_TABLE = "seqdb_alembic_version"
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"  # shipped inside the package


def alembic_config(engine: Engine | None = None) -> Config:
    if not (MIGRATIONS_DIR / "env.py").exists():
        raise DatabaseError(f"migrations folder {MIGRATIONS_DIR} is missing; reinstall seqdb")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    check_connection(engine)
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Migrate the database to `revision` (default: the newest). Returns the new revision."""
    check_connection(engine)
    current = current_revision(engine)
    if current is not None and current not in known_revisions():
        raise SchemaRevisionError(
            f"database {safe_url(engine)} is at revision {current}, unknown to this seqdb; upgrade seqdb itself"
        )
    cfg = alembic_config(engine)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except OperationalError as exc:
        raise DatabaseError(f"migration of {safe_url(engine)} failed: {first_line(exc)}") from None
    return current_revision(engine)


def downgrade(engine: Engine, revision: str) -> str | None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
    return current_revision(engine)


def require_head(engine: Engine) -> None:
    """Refuse to work on a database that is not at the newest revision."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    where = safe_url(engine)
    if current is None:
        has_tables = bool(sa.inspect(engine).get_table_names())
        what = "has no seqdb schema" if not has_tables else "has tables but no seqdb revision"
        raise SchemaRevisionError(f"database {where} {what}; run `seqdb db upgrade`")
    if current not in known_revisions():
        raise SchemaRevisionError(
            f"database {where} is at revision {current}, unknown to this seqdb (newest known: {head}); "
            "upgrade seqdb, or run `seqdb db upgrade` with the seqdb that wrote it"
        )
    raise SchemaRevisionError(f"database {where} is at revision {current}, older than {head}; run `seqdb db upgrade`")
