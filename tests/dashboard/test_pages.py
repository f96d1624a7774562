"""Streamlit AppTest: every page against a seeded SQLite database (the views: tests/views, both backends)."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from seqdb.dashboard.charts import LOSS, THROUGHPUT, metric_group, metric_groups
from tests.dashboard.conftest import HP_PRUNED, HP_TRIALS
from tests.views.seed import heartbeat

APP = str(Path(__file__).resolve().parents[2] / "seqdb" / "dashboard" / "app.py")


@pytest.fixture
def app(seeded_db, monkeypatch):
    monkeypatch.setenv("SEQDB_DASHBOARD_DB", seeded_db[0])
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


def open_page(at: AppTest, page: str, experiment: str | None = None, **query) -> AppTest:
    if experiment:
        at.sidebar.selectbox(key="experiment").select(experiment)
    at.query_params.clear()
    at.query_params.update(query)
    at.switch_page(f"screens/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    return " ".join(str(m.value) for m in [*at.markdown, *at.caption, *at.title, *at.subheader, *at.warning, *at.info])


def charts(at: AppTest) -> list[dict]:
    """The plotly figures on the page, as plotly JSON dicts."""
    import json

    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def values(v) -> list:  # noqa: ANN001
    """A trace's x or y: plotly 6 writes numeric arrays as {dtype, bdata (base64)}."""
    import base64

    import numpy as np

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def y_titles(at: AppTest) -> list[str]:
    return sorted(f["layout"]["yaxis"]["title"]["text"] for f in charts(at))


def test_metric_axes():
    assert [metric_group(m) for m in ("train_loss", "val_loss", "loss_y", "tokens_per_s", "lr")] == [LOSS, LOSS, LOSS, THROUGHPUT, "lr"]
    assert list(metric_groups(["lr", "tokens_per_s", "val_loss", "accuracy_y", "train_loss"])) == [LOSS, THROUGHPUT, "accuracy_y", "lr"]


def test_scaling_page(app):
    at = app
    assert not at.exception and at.title[0].value == "Scaling"
    assert at.sidebar.selectbox(key="experiment").value == "hp"  # the newest experiment
    assert at.sidebar.selectbox(key="experiment").options == ["hp", "mo", "scale"]
    at = open_page(at, "scaling", experiment="scale")
    assert len(at.get("plotly_chart")) == 1 and len(at.dataframe) == 2  # two horizons of `scale`
    legend = charts(at)[0]["layout"]["legend"]
    assert legend["yanchor"] == "bottom" and legend["y"] > 1  # above the plot, clear of the x axis title
    assert "E = 1" in texts(at) and "95% intervals" in texts(at) and "study_incomplete" in texts(at)
    at.text_input[0].set_value("2B").run()
    assert "extrapolated L(2,000,000,000)" in texts(at)
    open_page(at, "scaling", experiment="mo")
    assert "No fit for horizon 1" in texts(at)  # one budget: points, and the explicit message
    open_page(at, "scaling", experiment="hp")
    assert "No fit for horizon 1" in texts(at)


def test_every_page(app, seeded_db):
    _, seeded, _ = seeded_db
    at = app
    heartbeat(seeded_db[0], seeded.alive_worker)
    open_page(at, "studies", experiment="scale")
    assert at.title[0].value == "Studies" and len(at.get("plotly_chart")) == 1
    # 6 studies x 3 trials to go, 9 minutes each (the seed's trials), one live worker
    assert {m.label: m.value for m in at.metric} == {"studies complete": "0 / 6", "trials finished": "18 / 36",
                                                     "live workers": "1", "experiment ETA": "162.0 min"}
    assert set(at.dataframe[0].value.study) == {f"scale/{b}/h{h}" for b in ("500k", "2M", "20M") for h in (1, 3)}

    best = seeded.best_trial[("2M", 3)]
    open_page(at, "trials", trial_id=str(best))
    assert len(at.dataframe[0].value) == 30 and at.selectbox[0].value == best
    assert at.get("json") and "learning curves" in texts(at) and f"config of trial {best}" in texts(at)
    assert "losses" in y_titles(at)  # train_loss and val_loss share one axis; any other metric has its own
    assert len(y_titles(at)) == len(set(y_titles(at)))

    open_page(at, "curves")
    assert at.title[0].value == "Learning curves" and "losses (log)" in y_titles(at)
    losses = [f for f in charts(at) if f["layout"]["yaxis"]["title"]["text"] == "losses (log)"][0]
    assert len(losses["data"]) == 6 * 2  # the best trial of each budget x horizon, train_loss and val_loss

    open_page(at, "importance")  # two completed trials per study of `scale`
    assert "Importance needs at least 3 completed trials" in texts(at) and len(at.get("plotly_chart")) == 1

    open_page(at, "pareto")
    assert "No multi-objective study in scale" in texts(at)  # the filter applies
    open_page(at, "pareto", experiment="mo")
    assert "3 non-dominated of 5 completed trials" in texts(at)
    assert set(at.dataframe[0].value.trial_id) == seeded.mo_front_trial_ids


def test_experiment_filter_follows_the_url_and_every_page(app, seeded_db):
    _, seeded, _ = seeded_db
    at = app
    assert at.sidebar.selectbox(key="experiment").value == "hp"  # the default
    at.query_params["experiment"] = "scale"
    at.run()
    assert at.sidebar.selectbox(key="experiment").value == "scale"
    at.sidebar.selectbox(key="experiment").select("mo").run()
    assert at.sidebar.selectbox(key="experiment").value == "mo", "the URL must not undo the user's choice"
    at.sidebar.selectbox(key="experiment").select("hp").run()
    for page in ("studies", "trials", "history", "curves", "importance"):
        open_page(at, page)
        assert at.sidebar.selectbox(key="experiment").value == "hp", page  # kept from page to page
        assert "scale/" not in texts(at), page
    open_page(at, "trials", trial_id=str(seeded.best_trial[("500k", 1)]))  # a link to a trial selects its experiment
    assert at.sidebar.selectbox(key="experiment").value == "scale"
    assert set(at.dataframe[0].value.experiment) == {"scale"}


def test_learning_curves_split_losses_and_throughput(app):
    at = open_page(app, "curves", experiment="hp")
    figs = charts(at)
    assert y_titles(at) == ["losses (log)", "lr (log)", "throughput (log)"]
    losses = [f for f in figs if f["layout"]["yaxis"]["title"]["text"] == "losses (log)"][0]
    assert {t["name"] for t in losses["data"]} == {"train_loss", "val_loss"}  # one trial: one line per metric
    assert all(max(values(t["y"])) < 10 for t in losses["data"])  # throughput is not on the loss axis
    assert losses["layout"]["yaxis"]["type"] == "log"
    at.checkbox[0].uncheck().run()
    assert [f["layout"]["yaxis"].get("type") for f in charts(at)] == [None, None, None]  # linear
    trials = at.multiselect[0].options
    at.multiselect[0].set_value(at.multiselect[0].value + [int(o.split(":")[0]) for o in trials[1:3]]).run()
    figs = charts(at)
    assert len(figs[0]["data"]) == 3 * 2  # three trials x (train_loss, val_loss): compared on one axis
    assert len({t["legendgroup"].split(",")[0] for t in figs[0]["data"]}) == 3
    at.multiselect[1].set_value(["val_loss"]).run()
    assert len(charts(at)) == 1 and "metrics" == at.multiselect[1].label


def test_history_best_so_far_slice_and_contour(app, seeded_db):
    losses = seeded_db[2]
    at = open_page(app, "history", experiment="hp")
    best_all, history, slice_, contour = charts(at)
    best_line = {k: values(v) for k, v in [t for t in history["data"] if t["name"] == "best so far"][0].items() if k in "xy"}
    completed = [losses[n] for n in range(HP_TRIALS) if n not in HP_PRUNED]
    expected = [min(losses[m] for m in range(n + 1) if m not in HP_PRUNED) for n in range(HP_TRIALS)]
    assert best_line["y"] == pytest.approx(expected)
    assert values(best_all["data"][0]["y"])[-1] == pytest.approx(min(completed))
    assert {t["name"] for t in history["data"]} == {"completed", "pruned", "best so far"}
    assert "10 finished trial(s) with a loss, 8 completed" in texts(at)
    assert len([k for k in slice_["layout"] if k.startswith("xaxis")]) == 3  # one panel per searched parameter
    assert contour["layout"]["xaxis"]["title"]["text"] == "d_model" and contour["layout"]["yaxis"]["title"]["text"] == "dropout"
    open_page(at, "history", experiment="scale")  # scale's completed trials vary the learning rate only
    assert len(charts(at)) == 3 and "varies only learning_rate" in texts(at)


def test_importance(app):
    at = open_page(app, "importance", experiment="hp")
    bars, _ = charts(at)
    assert set(values(bars["data"][0]["y"])) == {"learning_rate", "d_model", "dropout"}
    assert "fANOVA over 8 of 8 completed trials" in texts(at)
    at.radio[0].set_value("ped_anova").run()
    assert not at.exception and "PED-ANOVA over 8 of 8 completed trials" in texts(at)
    assert sum(values(charts(at)[0]["data"][0]["x"])) == pytest.approx(1.0)  # importances are shares


def test_workers_and_auto_refresh(app, seeded_db):
    url, seeded, _ = seeded_db
    at = app
    heartbeat(url, seeded.alive_worker)
    open_page(at, "workers", experiment="scale")
    assert set(at.dataframe[0].value.name) == {seeded.alive_worker, seeded.dead_worker}
    assert [m.value for m in at.metric][0] == "1"
    assert any("auto-refresh every 10 s: 1 live worker" in c.value for c in at.sidebar.caption)
    open_page(at, "workers", experiment="hp")  # the live worker runs a study of `scale`
    assert set(at.dataframe[0].value.name) == {seeded.dead_worker}
    age(url, seeded.alive_worker)
    st.cache_data.clear()
    open_page(at, "workers", experiment="scale")
    assert [m.value for m in at.metric][0] == "0" and not any("auto-refresh" in c.value for c in at.sidebar.caption)


def age(url: str, name: str) -> None:
    """A worker that stopped beating an hour ago."""
    from datetime import timedelta

    import sqlalchemy as sa

    from seqdb.db.engine import create_engine_for, session_scope
    from seqdb.db.models import Worker, utcnow

    eng = create_engine_for(url)
    with session_scope(eng) as s:
        s.execute(sa.update(Worker).where(Worker.name == name).values(last_seen_at=utcnow() - timedelta(hours=1)))
    eng.dispose()


PAGE_NAMES = ["scaling", "compute", "studies", "history", "trials", "curves", "importance", "pareto", "workers"]


def test_an_empty_database_says_what_to_do_on_every_page(tmp_path, monkeypatch):
    from seqdb.db.engine import create_engine_for
    from seqdb.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    eng = create_engine_for(url)
    upgrade(eng)
    eng.dispose()
    monkeypatch.setenv("SEQDB_DASHBOARD_DB", url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    for page in PAGE_NAMES:
        open_page(at, page)
        assert [i.value for i in at.info] == ["No experiments yet: `seqdb experiment add experiment.yaml` registers one."], page
        assert not at.sidebar.selectbox and not at.get("plotly_chart"), page
