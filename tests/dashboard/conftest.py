"""A seeded database per backend for the dashboard tests (module scope: the pages only read)."""

from tests.views.conftest import seeded_db  # noqa: F401  (re-exported fixture)
