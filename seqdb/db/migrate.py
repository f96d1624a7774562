"""Schema revisions: upgrade, current, and the guard every command runs first."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from seqdb.db.engine import check_connection, first_line, safe_url
from seqdb.errors import DatabaseError, SchemaRevisionError

if TYPE_CHECKING:  # alembic costs ~0.5 s to import: only upgrades and the slow checks load it
    from alembic.config import Config

VERSION_TABLE = "seqdb_alembic_version"
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"  # shipped inside the package


def alembic_config(engine: Engine | None = None) -> "Config":
    from alembic.config import Config

    if not (MIGRATIONS_DIR / "env.py").exists():
        raise DatabaseError(f"migrations folder {MIGRATIONS_DIR} is missing; reinstall seqdb")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    check_connection(engine)
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Migrate the database to `revision` (default: the newest). Returns the new revision."""
    from alembic import command

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
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
    return current_revision(engine)


# The revision graph read from the migration files as text (without importing alembic or
# the migrations): `revision = '…'` and `down_revision = '…'` lines. Only used to confirm a
# database is current; any other answer goes through alembic itself.
_REV_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(None|'[0-9a-zA-Z_]+'|\"[0-9a-zA-Z_]+\")\s*$", re.M)


def light_head_revision() -> Optional[str]:
    """The single head of the migration files, parsed as text; None when unsure."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict(m.groups() for m in _REV_LINE.finditer(path.read_text(encoding="utf-8")))
        if "revision" not in found or "down_revision" not in found:
            return None
        revisions.add(found["revision"].strip("'\""))
        if found["down_revision"] != "None":
            parents.add(found["down_revision"].strip("'\""))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _stored_revision(engine: Engine) -> Optional[str]:
    """The version table's row read with one plain SELECT (None if unreadable)."""
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").all()
    except sa.exc.DBAPIError:
        return None
    return rows[0][0] if len(rows) == 1 else None


def require_head(engine: Engine) -> None:
    """Refuse to work on a database that is not at the newest revision."""
    head = light_head_revision()
    if head is not None and _stored_revision(engine) == head:  # the common case, without alembic
        return
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
