"""Streamlit AppTest: every page against a seeded SQLite database (the views: tests/views, both backends)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.views.seed import heartbeat

APP = str(Path(__file__).resolve().parents[2] / "seqdb" / "dashboard" / "app.py")


@pytest.fixture
def app(seeded_db, monkeypatch):
    monkeypatch.setenv("SEQDB_DASHBOARD_DB", seeded_db[0])
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


def open_page(at: AppTest, page: str, **query) -> AppTest:
    at.query_params.clear()
    at.query_params.update(query)
    at.switch_page(f"screens/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    return " ".join(str(m.value) for m in [*at.markdown, *at.caption, *at.title, *at.subheader, *at.warning, *at.info])


def test_every_page(app, seeded_db):
    _, seeded = seeded_db
    at = app
    assert not at.exception and at.title[0].value == "Scaling"
    at.selectbox[0].select("scale").run()
    assert len(at.get("plotly_chart")) == 1 and len(at.dataframe) == 2  # two horizons of `scale`
    assert "E = 1" in texts(at) and "95% bootstrap intervals" in texts(at)
    at.text_input[0].set_value("2B").run()
    assert "extrapolated L(2,000,000,000)" in texts(at)
    at.selectbox[0].select("mo").run()
    assert "No fit for horizon 1" in texts(at)  # one budget: points, and the explicit message

    open_page(at, "studies")
    assert at.title[0].value == "Studies" and len(at.get("plotly_chart")) == 1
    assert set(at.dataframe[0].value.study) >= {"scale/500k/h1", "mo/2M/h1"}

    best = seeded.best_trial[("2M", 3)]
    open_page(at, "trials", trial_id=str(best))
    assert len(at.dataframe[0].value) == 30 and len(at.get("plotly_chart")) == 1  # the trial's learning curve
    assert at.get("json") and "learning curve" in texts(at)

    open_page(at, "curves")
    assert at.title[0].value == "Learning curves" and len(at.get("plotly_chart")) == 1

    open_page(at, "importance")
    assert len(at.get("plotly_chart")) == 2 or "Importance needs" in texts(at)

    open_page(at, "pareto")
    assert "3 non-dominated of 5 completed trials" in texts(at)
    assert set(at.dataframe[0].value.trial_id) == seeded.mo_front_trial_ids

    heartbeat(seeded_db[0], seeded.alive_worker)
    open_page(at, "workers")
    workers = at.dataframe[0].value
    assert set(workers.name) == {seeded.alive_worker, seeded.dead_worker}
    assert [m.value for m in at.metric][0] == "1"
