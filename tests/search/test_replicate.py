"""Seed replicates: new trials of the same search study, the best trial's config with a new seed."""

from __future__ import annotations

import sqlalchemy as sa
import pytest

from seqdb.config.trial import TrialConfig
from seqdb.db.engine import session_scope
from seqdb.db.models import Trial
from seqdb.errors import ConfigError, NotFoundError
from seqdb.search.replicate import add_replicates
from seqdb.search.study import create_study
from seqdb.views import connect
from seqdb.views.query import sql
from tests.helpers import assert_one_line_error, run_cli_inprocess
from tests.search.fixtures import base_spec, experiment_config, register

SPACE = {"strategy": "grid", "space": {"learning_rate": [1e-3, 3e-4, 1e-4]}}


def _complete(engine, losses: dict[int, float]) -> None:
    """Mark trials {trial_id: best loss} completed."""
    with session_scope(engine) as s:
        for trial_id, loss in losses.items():
            t = s.get(Trial, trial_id)
            t.state, t.best_val_loss, t.step, t.epochs_done = "completed", loss, 10, 3


def _trials(engine, study_id: int) -> list[Trial]:
    with session_scope(engine, write=False) as s:
        return list(s.execute(sa.select(Trial).where(Trial.study_id == study_id).order_by(Trial.trial_id)).scalars())


def test_trials_record_their_seed_and_replicates_rerun_the_best_with_new_seeds(engine, db_url):
    cfg = experiment_config(SPACE, budgets=["60k"])
    study = create_study(engine, register(engine, cfg), cfg, "60k", 1, base_spec())
    search = _trials(engine, study.study_id)
    assert len(search) >= 3 and all(t.seed == 7 and t.config["seed"] == 7 for t in search)  # the experiment seed, recorded
    _complete(engine, {t.trial_id: 1.5 if t.number == 1 else 2.0 + 0.1 * t.number for t in search})
    best = search[1]
    reps = add_replicates(engine, "exp", 1, seeds=3)
    assert [(r.budget, r.replicate_of, r.seed, r.created) for r in reps] == [("60k", best.trial_id, s, True) for s in (8, 9, 10)]
    rows = {t.trial_id: t for t in _trials(engine, study.study_id)}
    for r in reps:
        t = rows[r.trial_id]
        config = TrialConfig.model_validate(t.config)
        assert (t.state, t.seed, t.replicate_of, config.seed, config.training.seed) == ("pending", r.seed, best.trial_id, r.seed, r.seed)
        assert t.config_hash == config.config_hash() != best.config_hash and t.params == best.params
        assert config.model_copy(update={"seed": 7, "training": config.training.model_copy(update={"seed": 7})}).config_hash() == best.config_hash
    assert len({t.number for t in rows.values()}) == len(rows)
    again = add_replicates(engine, "exp", 1, seeds=4)  # idempotent: only seed 11 is new
    assert [(r.seed, r.created) for r in again] == [(8, False), (9, False), (10, False), (11, True)]
    _complete(engine, {reps[0].trial_id: 1.4, reps[1].trial_id: 1.6, again[3].trial_id: 1.0})  # a lucky seed is not the best
    with connect(db_url) as vc:
        (p,) = sql(vc, "SELECT trial_id, n_finished, n_seeds, seed_losses FROM scaling_points").to_pylist()
    assert p["trial_id"] == best.trial_id and p["n_finished"] == len(search) and p["n_seeds"] == 4
    assert p["seed_losses"] == [1.5, 1.4, 1.6, 1.0]


def test_replicate_errors_name_what_is_missing(engine, db_url):
    cfg = experiment_config(SPACE, budgets=["60k"])
    create_study(engine, register(engine, cfg), cfg, "60k", 1, base_spec())
    with pytest.raises(NotFoundError, match="no completed search trial"):
        add_replicates(engine, "exp", 1)
    with pytest.raises(NotFoundError, match="horizon 3"):
        add_replicates(engine, "exp", 3)
    with pytest.raises(NotFoundError, match="'nope'"):
        add_replicates(engine, "nope", 1)
    with pytest.raises(ConfigError, match="--seeds 0"):
        add_replicates(engine, "exp", 1, seeds=0)
    assert_one_line_error(run_cli_inprocess("--db", db_url, "replicate", "--experiment", "exp", "--horizon", "1", "--budget", "20M"),
                          "budget 20,000,000")


def test_replicate_cli(engine, db_url):
    cfg = experiment_config(SPACE, budgets=["60k"])
    study = create_study(engine, register(engine, cfg), cfg, "60k", 1, base_spec())
    first = _trials(engine, study.study_id)[0]
    _complete(engine, {first.trial_id: 2.0})
    n = len(_trials(engine, study.study_id))
    out = run_cli_inprocess("--db", db_url, "replicate", "--experiment", "exp", "--horizon", "1", "--budget", "60k", "--seeds", "2")
    assert out.code == 0, out.err
    assert "2 trial(s) added" in out.out and len(_trials(engine, study.study_id)) == n + 2
