"""`seqdb train` end to end on a tiny project, on SQLite and Postgres: the final study and
trial, test metrics, the report, the ONNX pair as artifacts, `seqdb report`, `seqdb infer`
with an artifact id, and a second `seqdb train` that trains nothing again."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from seqdb.db.engine import create_engine_for, session_scope
from seqdb.db.models import Artifact, Checkpoint, Metric, Study, Trial
from seqdb.errors import NotFoundError
from seqdb.experiment.registry import register_experiment
from seqdb.project import init_project
from seqdb.results.best import best_trial
from seqdb.results.final import ensure_final_trial, final_config, final_training, load_report, plan_start
from seqdb.results.onnx_export import sha256_file
from seqdb.search.optuna_view import study_spec
from seqdb.search.study import ensure_study
from tests.helpers import assert_one_line_error, run_cli_inprocess

EXPERIMENT = """name: toy
seed: 3
data:
  path: data/toy.csv
  sequence_column: sid
  position_column: pos
  columns: {x: real, day: categorical}
target: {column: x, task: direction}
context_length: 8
horizons: [1]
split: {validation: 0.2, test: 0.2}
budgets: [12k]
tolerance: 0.5
search:
  strategy: sample
  n_samples: 2
  objectives: [val_loss]
  pruner: median
  space:
    learning_rate: [1.0e-3, 3.0e-3]
training:
  max_epochs: 1
  effective_batch_size: 32
"""


def toy_project(root: Path, db_url: str):
    """A project whose search study has one completed trial (the search itself is tested
    elsewhere; here its result is given)."""
    project = init_project(root, database=db_url)
    rng = np.random.default_rng(0)
    rows = []
    for s in range(3):
        x = 0.0
        for p in range(100):
            x = 0.6 * x + rng.normal()
            rows.append((s, p, x, ["mon", "tue", "wed", "thu", "fri"][p % 5]))
    pl.DataFrame(rows, schema=["sid", "pos", "x", "day"], orient="row").write_csv(root / "data" / "toy.csv")
    (root / "configs" / "toy.yaml").write_text(EXPERIMENT)
    engine = create_engine_for(db_url)
    register_experiment(engine, root / "configs" / "toy.yaml")
    study = ensure_study(engine, project, "toy", "12k", 1)
    with session_scope(engine) as s:
        first, second = s.execute(sa.select(Trial).where(Trial.study_id == study.study_id).order_by(Trial.number)).scalars().all()
        first.state, first.best_val_loss, first.best_step = "pruned", 0.1, 3
        second.state, second.best_val_loss, second.best_step = "completed", 0.69, 5
    return project, engine


def test_final_training_report_export_and_infer(db_url, tmp_path):
    project, engine = toy_project(tmp_path / "proj", db_url)
    with pytest.raises(NotFoundError, match="no test report"):
        load_report(engine, "12k", 1)
    # an older final configuration left unfinished: the worker may claim it first
    older = ensure_final_trial(engine, project, best_trial(engine, "12k", 1), final_config(best_trial(engine, "12k", 1), 2))[1]
    said: list[str] = []
    result = final_training(engine, project, "12k", 1, resamples=100, say=said.append)
    assert result.trained and any("final training" in line for line in said)
    assert result.trial_id != older
    with session_scope(engine, write=False) as s:
        final = s.get(Study, result.study_id)
        trial = s.get(Trial, result.trial_id)
        assert final.kind == "final" and final.name == "toy/12k/h1/final"
        assert final.pruner == "none" and study_spec(final).pruner.name == "none"  # the search's median pruner never cuts a final run
        assert trial.state == "completed" and trial.config["training"]["max_epochs"] == 1
        assert trial.params["source_trial_id"] != trial.trial_id
        assert s.get(Trial, older).state == "completed"  # claimed first, then ours
        names = set(s.execute(sa.select(Metric.name).where(Metric.trial_id == trial.trial_id)).scalars())
        arts = {a.kind: a for a in s.execute(sa.select(Artifact).where(Artifact.trial_id == trial.trial_id)).scalars()}
    assert {"train_loss", "val_loss", "test_loss"} <= names  # recorded by the runner's reporter, then the test split
    assert set(arts) == {"test_report", "onnx_generative", "onnx_embedding"}
    for art in arts.values():
        assert sha256_file(Path(art.path)) == art.sha256 and Path(art.path).stat().st_size == art.bytes
    assert arts["onnx_generative"].meta["max_abs_diff"] <= 1e-4
    metrics = {(r.target, r.metric) for r in result.report.rows}
    assert metrics == {("x", "loss"), ("x", "hit_rate")}  # direction: accuracy is the hit rate
    assert all(c.verdict in ("beats", "does not beat", "worse") for r in result.report.rows for c in r.comparisons)
    assert load_report(engine, "12k", 1).to_json() == result.report.to_json()

    # a second `seqdb train` trains nothing again; the artifacts are replaced, not duplicated
    again = final_training(engine, project, "12k", 1, resamples=100, say=lambda _: None)
    assert not again.trained and again.trial_id == result.trial_id
    with session_scope(engine, write=False) as s:
        n = s.execute(sa.select(sa.func.count()).select_from(Artifact).where(Artifact.trial_id == trial.trial_id)).scalar_one()
    assert n == 3

    cli = ("--db", db_url, "--project", str(project.root))
    rep = run_cli_inprocess(*cli, "report", "--budget", "12k", "--horizon", "1", "--json")
    assert rep.code == 0, rep.err
    assert json.loads(rep.out)["n_rows"] == result.report.n_rows
    gen_id = next(a.artifact_id for a in again.artifacts if a.kind == "onnx_generative")
    out = tmp_path / "pred.csv"
    res = run_cli_inprocess(*cli, "infer", "--model", str(gen_id), "--data", str(project.root / "data" / "toy.csv"), "--output", str(out), "--probabilities")
    assert res.code == 0, res.err
    pred = pl.read_csv(out)
    assert pred.height == 3 and set(pred["x_pred"].to_list()) <= {"down", "up"}  # target x of input x: named apart
    assert np.allclose(pred["x_pred__p_down"] + pred["x_pred__p_up"], 1.0) and pred["horizon"].to_list() == [1, 1, 1]
    assert_one_line_error(run_cli_inprocess(*cli, "infer", "--model", "99999", "--data", str(out)), "artifact 99999 does not exist")
    # a replaced model file is caught by its registered sha256
    gen_path = Path(next(a.path for a in again.artifacts if a.kind == "onnx_generative"))
    gen_path.write_bytes(gen_path.read_bytes() + b"\0")
    assert_one_line_error(run_cli_inprocess(*cli, "infer", "--model", str(gen_id), "--data", str(out)), "does not match the registered")


def test_train_without_a_completed_search_trial_is_a_one_line_error(db_url, tmp_path):
    project, engine = toy_project(tmp_path / "proj", db_url)
    with session_scope(engine) as s:
        s.execute(sa.update(Trial).values(state="pending", best_val_loss=None))
    res = run_cli_inprocess("--db", db_url, "--project", str(project.root), "train", "--budget", "12k", "--horizon", "1")
    assert_one_line_error(res, "no completed trial for budget 12k horizon 1")
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Study).where(Study.kind == "final")).scalar_one() == 0


def test_train_reuses_the_identical_search_trial_and_continues_it_for_more_epochs(db_url, tmp_path):
    project, engine = toy_project(tmp_path / "proj", db_url)
    with session_scope(engine) as s:  # undo the given result: the search really trains here
        s.execute(sa.update(Trial).values(state="pending", best_val_loss=None, best_step=None))
    ran = run_cli_inprocess("--db", db_url, "--project", str(project.root), "run", "--budget", "12k", "--horizon", "1", "--no-live")
    assert ran.code == 0, ran.err
    best = best_trial(engine, "12k", 1)
    said: list[str] = []
    reused = final_training(engine, project, "12k", 1, resamples=50, export=False, say=said.append)
    assert reused.start == "reused" and not reused.trained
    assert any(f"reusing search trial {best.trial_id}'s best checkpoint" in line and "nothing to train" in line for line in said), said
    with session_scope(engine, write=False) as s:
        final = s.get(Trial, reused.trial_id)
        src_ckpt = s.execute(sa.select(Checkpoint).where(Checkpoint.trial_id == best.trial_id, Checkpoint.is_best)).scalars().first()
        own = s.execute(sa.select(Checkpoint).where(Checkpoint.trial_id == final.trial_id)).scalars().one()
        curve = lambda t: s.execute(sa.select(Metric.step, Metric.value).where(Metric.trial_id == t, Metric.name == "train_loss").order_by(Metric.step)).all()  # noqa: E731
        assert final.state == "completed" and final.best_val_loss == best.best_val_loss and final.step == s.get(Trial, best.trial_id).step
        assert own.sha256 == src_ckpt.sha256 and own.path != src_ckpt.path and Path(own.path).is_file()
        assert curve(final.trial_id) == curve(best.trial_id) and "test_loss" in set(s.execute(sa.select(Metric.name).where(Metric.trial_id == final.trial_id)).scalars())
        search_steps = s.get(Trial, best.trial_id).step

    # the search capped by max_steps: a cap above the epochs' steps never bit (the same run);
    # a cap that bit makes the final run longer (continue)
    capped = lambda cap: dataclasses.replace(best, config={**best.config, "training": {**best.config["training"], "max_steps": cap}})  # noqa: E731
    loose, tight = capped(10 * search_steps), capped(search_steps - 1)
    assert plan_start(engine, loose, final_config(loose, 1)).how == "reuse"
    assert "max_steps cap" in plan_start(engine, loose, final_config(loose, 1)).reason
    assert plan_start(engine, tight, final_config(tight, 1)).how == "continue"
    assert plan_start(engine, best, final_config(best, 1).model_copy(update={"seed": 99})).how == "train"

    said.clear()
    longer = final_training(engine, project, "12k", 1, epochs=3, resamples=50, export=False, say=said.append)
    assert longer.start == "continued" and longer.trained and longer.trial_id != reused.trial_id
    assert any(f"continuing search trial {best.trial_id} from its checkpoint at step {search_steps}" in line for line in said), said
    with session_scope(engine, write=False) as s:
        t = s.get(Trial, longer.trial_id)
        steps = [r.step for r in s.execute(sa.select(Metric.step).where(Metric.trial_id == t.trial_id, Metric.name == "train_loss").order_by(Metric.step))]
    assert t.state == "completed" and t.epochs_done == 3 and t.step == 3 * search_steps
    assert steps == list(range(1, t.step + 1))  # the search's steps, then the continuation: one curve, no gap, no repeat
    again = final_training(engine, project, "12k", 1, epochs=3, resamples=50, export=False, say=said.append)
    assert again.start == "done" and not again.trained and again.trial_id == longer.trial_id
