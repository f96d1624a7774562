"""The Compute page (AppTest, SQLite): loss against tokens per budget, IsoFLOP slices, the
compute-optimal frontier with its band, and the fitted law, over a synthetic ladder."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from seqdb.db.engine import create_engine_for, dispose_engines
from seqdb.db.migrate import upgrade
from tests.views.test_scaling_nd import SIZES, TOKENS, seed_ladder

APP = str(Path(__file__).resolve().parents[2] / "seqdb" / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def ladder_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('compute') / 'seqdb.db'}"
    eng = create_engine_for(url)
    upgrade(eng)
    seed_ladder(eng)
    eng.dispose()
    yield url
    dispose_engines()


def _open(url: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("SEQDB_DASHBOARD_DB", url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("screens/compute.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_compute_page_draws_the_ladder_the_slices_and_the_frontier(ladder_url, monkeypatch):
    import json

    at = _open(ladder_url, monkeypatch)
    text = " ".join(str(m.value) for m in [*at.markdown, *at.title, *at.subheader])
    assert "Compute" in text and "horizon 1" in text
    assert "L(N, D) = E + A·N^-α + B·D^-β" in text and "(a + b = 1)" in text and "20 points" in text
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(figs) == 3
    tokens, iso, front = figs
    assert tokens["layout"]["xaxis"]["type"] == "log" and tokens["layout"]["yaxis"]["type"] == "log"
    finals = [t for t in tokens["data"] if t["name"].endswith(" final")]
    assert len(finals) == len(SIZES) and all(sorted(t["x"]) == list(TOKENS) for t in finals)
    assert sum(t.get("name", "").startswith("C = ") for t in iso["data"]) == 4
    assert [t["name"] for t in front["data"]] == ["N_opt 95% band", "N_opt(C)", "D_opt(C)"]
    assert not at.warning  # a clean synthetic truth raises no flag


def test_compute_page_without_tokens_says_what_it_needs(seeded_db, monkeypatch):
    at = _open(seeded_db[0], monkeypatch)
    at.sidebar.selectbox(key="experiment").select("mo")
    at.run()
    assert any("recorded tokens" in str(i.value) for i in at.info)
