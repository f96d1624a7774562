"""One seeded SQLite database per module for the dashboard tests (the pages only read).

The AppTest pages run on SQLite only: they exercise the dashboard's code, and every view they
query is checked on SQLite AND Postgres by tests/views. Running the Streamlit pages twice cost
minutes on a loaded machine without checking anything new.
"""

from __future__ import annotations

import pytest

from seqdb.db.engine import dispose_engines
from tests.views.seed import migrate_and_seed


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory):
    """(url, Seeded) of a migrated, seeded SQLite database; read-only tests only."""
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'seqdb.db'}"
    yield url, migrate_and_seed(url)
    dispose_engines()
