"""Alembic environment for seqdb.

The version table is `seqdb_alembic_version` so that Optuna's storage (which uses
`alembic_version`) can share the same database. `render_as_batch=True` lets every
migration run on SQLite too.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import seqdb.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from seqdb.db.engine import create_engine_for

VERSION_TABLE = "seqdb_alembic_version"
target_metadata = SQLModel.metadata
config = context.config


def include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001
    # Ignore tables that are not seqdb's (e.g. Optuna's, sharing the database).
    if type_ == "table" and name not in target_metadata.tables:
        return False
    return True


def _configure(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
        compare_type=True,
        include_object=include_object,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine_for(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
