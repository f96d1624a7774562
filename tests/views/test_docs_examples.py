"""Every ```sql example in docs/views.md runs and returns rows; every view and column is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seqdb.views import VIEW_NAMES, sql

DOC = Path(__file__).resolve().parents[2] / "docs" / "views.md"
TEXT = DOC.read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```sql\n(.*?)```", TEXT, flags=re.S)


def test_there_are_examples_for_every_view():
    assert len(EXAMPLES) >= len(VIEW_NAMES)
    for name in VIEW_NAMES:
        assert any(re.search(rf"\b{name}\b", ex) for ex in EXAMPLES), f"no example query uses {name}"


def test_every_example_runs_and_returns_rows(vc):
    for example in EXAMPLES:
        table = sql(vc, example)
        assert table.num_rows > 0, f"example returned no rows:\n{example}"


@pytest.mark.parametrize("view", VIEW_NAMES)
def test_every_column_is_documented(vc, view):
    section = TEXT.split(f"## {view}", 1)
    assert len(section) == 2, f"docs/views.md has no section for {view}"
    body = section[1].split("\n## ", 1)[0]
    if view == "best_trials":  # documented as "every column of trials plus ..."
        body += TEXT.split("## trials", 1)[1].split("\n## ", 1)[0]
    columns = sql(vc, f"SELECT * FROM {view} LIMIT 0").column_names
    missing = [c for c in columns if f"`{c}`" not in body]
    assert not missing, f"{view}: undocumented columns {missing}"
