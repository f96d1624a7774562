"""`seqdb.open(...)`: the notebook API over the seeded views database, on SQLite and Postgres."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import polars as pl
import pytest
import sqlalchemy as sa

import seqdb
from seqdb.errors import ConfigError, NotFoundError, ProjectError
from seqdb.project import init_project
from tests.views.seed import BUDGETS, HORIZONS, seed, true_loss


@pytest.fixture
def seeded_url(db_url, engine):
    seed(engine)
    return db_url


def test_open_answers_scaling_trials_curve_and_sql(seeded_url, engine):
    with seqdb.open(seeded_url) as db:
        points = db.scaling(experiment="scale")
        assert isinstance(points, pl.DataFrame) and points.height == len(BUDGETS) * len(HORIZONS)
        for h in HORIZONS:
            rows = points.filter(pl.col("horizon") == h)
            assert rows["param_count"].is_sorted() and rows["budget"].to_list() == list(BUDGETS)
            assert all(abs(r["best_val_loss"] - true_loss(r["param_count"], h)) < 1e-6 for r in rows.iter_rows(named=True))
        assert db.scaling(experiment="scale", horizon=3).height == len(BUDGETS)

        done = db.trials(state="completed")
        with engine.connect() as c:
            n_completed = c.execute(sa.text("SELECT COUNT(*) FROM trial WHERE state = 'completed'")).scalar_one()
            tid = c.execute(sa.text("SELECT MIN(trial_id) FROM trial t WHERE EXISTS (SELECT 1 FROM metric m WHERE m.trial_id = t.trial_id)")).scalar_one()
            want = dict(c.execute(sa.text("SELECT step, value FROM metric WHERE trial_id = :t AND name = 'val_loss'"), {"t": tid}).all())
        assert done.height == n_completed and set(done["state"]) == {"completed"} and "learning_rate" in done.columns
        assert db.trials(experiment="mo").height == db.sql("SELECT COUNT(*) AS n FROM trials WHERE experiment = ?", ["mo"])["n"][0]

        curve = db.curve(tid)
        assert curve.columns[:2] == ["step", "epoch"] and {"train_loss", "val_loss", "tokens"} <= set(curve.columns)
        assert dict(zip(curve["step"].to_list(), curve["val_loss"].to_list())) == pytest.approx(want)
        assert db.curve(tid, metrics=["val_loss"]).columns == ["step", "epoch", "val_loss"]
        with pytest.raises(NotFoundError, match="trial 999999 has no metric rows"):
            db.curve(999999)
        assert "scaling_points" in db.views() and "seqdb.open(" in repr(db)

    with seqdb.open(seeded_url, frame="pandas") as db:
        frame = db.scaling()
        assert isinstance(frame, pd.DataFrame) and len(frame) >= len(BUDGETS) * len(HORIZONS)
        assert isinstance(db.curve(tid), pd.DataFrame)


def test_open_takes_a_project_folder_or_a_database_file_and_refuses_anything_else(tmp_path):
    project = init_project(tmp_path / "proj")
    with seqdb.open(project.root) as db:
        assert db.scaling().height == 0 and db.trials().height == 0
    with seqdb.open(project.root / "seqdb.db") as db:
        assert db.sql("SELECT 1 AS one")["one"].to_list() == [1]
    with pytest.raises(ProjectError, match="no such project folder or database file"):
        seqdb.open(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ProjectError, match="not a seqdb project"):
        seqdb.open(tmp_path / "plain")
    with pytest.raises(ConfigError, match="allowed: polars, pandas"):
        seqdb.open(project.root, frame="excel")


def test_import_seqdb_stays_cheap():
    code = "import seqdb, sys; print(sorted(m for m in ('polars', 'duckdb', 'sqlalchemy', 'torch', 'pandas', 'seqdb.app.notebook') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
