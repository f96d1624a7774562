"""Autogenerate a new Alembic revision from the models.

Usage: python scripts/new_migration.py "short message"
Builds a scratch SQLite database at the current head, compares it with seqdb/db/models.py
and writes the difference as a new script under seqdb/migrations/versions/. Review it before
committing.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from seqdb.db.engine import create_engine_for
from seqdb.db.migrate import alembic_config, upgrade


def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine_for(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        upgrade(engine)
        cfg = alembic_config(engine)
        command.revision(cfg, message=message, autogenerate=True)
        engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/new_migration.py MESSAGE")
    main(sys.argv[1])
