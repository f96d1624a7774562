"""Studies in the database (SQLite and Postgres): expansion into valid in-budget trials,
idempotent and concurrent creation, ablation labels, pruning, Pareto front, importance."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest
import sqlalchemy as sa

from seqdb.config.trial import TrialConfig
from seqdb.db.engine import create_engine_for, session_scope
from seqdb.db.models import Architecture, Budget, Metric, Study, Trial
from seqdb.errors import ConfigError
from seqdb.model.params import param_count
from seqdb.search.analysis import importance
from seqdb.search.pruning import should_prune
from seqdb.search.sampler import tell
from seqdb.config.search import SearchSpace
from seqdb.search.study import check_space_columns, create_study, objective_values
from seqdb.config.study import study_config
from tests.search.fixtures import base_spec, experiment_config, register, study_complete

GRID = {
    "strategy": "grid",
    "space": {
        "learning_rate": [1e-3, 3e-4], "epochs": [2, 4], "dropout": [0.0, 0.1],
        "input_columns": [["log_return"], ["log_return", "weekday"]], "embedding_dim": {"weekday": [2, 4]},
        "activation": ["swiglu", "gelu"],
    },
}  # fmt: skip


def trials_of(engine, study_id):
    with session_scope(engine, write=False) as s:
        return list(s.execute(sa.select(Trial).where(Trial.study_id == study_id).order_by(Trial.number)).scalars())


def test_grid_study_trials_are_complete_valid_unique_and_in_budget(engine):
    cfg = experiment_config(GRID, budgets=["60k"])
    exp = register(engine, cfg)
    study = create_study(engine, exp, cfg, "60k", 3, base_spec(3))
    trials = trials_of(engine, study.study_id)
    with session_scope(engine, write=False) as s:
        archs = list(s.execute(sa.select(Architecture).order_by(Architecture.ordinal)).scalars())
    stats = study_config(study).stats
    assert stats["expanded"] == len(archs) * 2 * 2 * 2 * 2 * 2
    # weekday's embedding size is irrelevant when weekday is not an input: those collapse
    assert len(trials) == study.n_trials == stats["expanded"] - stats["duplicates"] - stats["out_of_budget"]
    assert stats["duplicates"] > 0 and len(trials) > 0
    assert len({t.config_hash for t in trials}) == len(trials)
    for t in trials:
        config = TrialConfig.model_validate(t.config)  # a complete standalone config
        assert config.config_hash() == t.config_hash and config.horizon == 3 and config.budget == "60k"
        total = param_count(config.model, config.data).total
        assert total == t.param_count and 45_000 <= total <= 75_000
        assert config.training.max_epochs == t.params["epochs"] and t.state == "pending"
        assert t.architecture_id in {a.architecture_id for a in archs}
    assert study.max_epochs == 4 and study.strategy == "grid" and study.objectives == [{"name": "val_loss", "direction": "minimize"}]
    # idempotent
    again = create_study(engine, exp, cfg, "60k", 3, base_spec(3))
    assert again.study_id == study.study_id and len(trials_of(engine, study.study_id)) == len(trials)


def test_space_shapes_define_the_budget_architectures(engine):
    space = {"dim_model": [32, 64, 64], "n_head": [2, 4, 4], "num_layers": [1, 2], "dim_feedforward": [256], "n_kv_heads": [None, 2]}
    cfg = experiment_config({"space": space}, budgets=["60k"])
    study = create_study(engine, register(engine, cfg), cfg, "60k", 1, base_spec())
    trials = trials_of(engine, study.study_id)
    with session_scope(engine, write=False) as s:
        archs = list(s.execute(sa.select(Architecture).order_by(Architecture.ordinal)).scalars())
    shapes = {(a.d_model, a.n_layers, a.n_head, a.n_kv_heads) for a in archs}
    assert shapes and all(45_000 <= a.param_count <= 75_000 for a in archs)
    assert shapes <= {(d, l, h, kv) for d, h in ((32, 2), (64, 4)) for l in (1, 2) for kv in (h, 2)}
    assert [a.ordinal for a in archs] == list(range(len(archs)))
    assert len(trials) == len(archs)  # only shapes varied: one trial per architecture


def test_sample_and_equal_effort_across_budgets(engine):
    cfg = experiment_config({"strategy": "sample", "n_samples": 5, "space": {"dropout": {"low": 0.0, "high": 0.3}}}, budgets=["20k", "60k"])
    exp = register(engine, cfg)
    a = create_study(engine, exp, cfg, "20k", 1, base_spec())
    b = create_study(engine, exp, cfg, "60k", 1, base_spec())
    assert (a.n_trials, a.max_epochs) == (b.n_trials, b.max_epochs) == (5, 3)
    assert len(trials_of(engine, a.study_id)) == 5 and study_config(a).effort.equal_effort


def test_ablation_labels_and_baseline(engine):
    cfg = experiment_config(
        {"strategy": "ablation", "baseline": {"dropout": 0.1}, "space": {"dropout": [0.0, 0.1, 0.2], "weight_decay": [0.0, 0.01]}},
        budgets=["60k"],
    )
    study = create_study(engine, register(engine, cfg), cfg, "60k", 1, base_spec())
    trials = trials_of(engine, study.study_id)
    labels = [t.label for t in trials]
    n_arch = len(study_config(study).context.architectures)
    assert labels[0] == "baseline" and len(trials) == 1 + 2 + 1 + (n_arch - 1) and n_arch > 1
    assert {"dropout=0", "dropout=0.2", "weight_decay=0.01"} <= set(labels)
    assert sum(label.startswith("architecture=d") for label in labels) == n_arch - 1
    assert trials[0].params["dropout"] == 0.1 and TrialConfig.model_validate(trials[0].config).label == "baseline"


def test_study_bad_inputs(engine):
    cfg = experiment_config({}, budgets=["20k", "5"])
    exp = register(engine, cfg)
    with pytest.raises(ConfigError, match=r"budget 5: no architecture within ±25% of 5 parameters; nearest achievable"):
        create_study(engine, exp, cfg, "5", 1, base_spec())
    with pytest.raises(ConfigError, match="budget 2M is not a budget of experiment exp; allowed: 20k, 5"):
        create_study(engine, exp, cfg, "2M", 1, base_spec())
    with pytest.raises(ConfigError, match="horizon 9 is not a horizon"):
        create_study(engine, exp, cfg, "20k", 9, base_spec())
    columns = {"log_return": "real", "weekday": "categorical"}
    with pytest.raises(ConfigError, match="search.space.input_columns.0: column 'nope' is not in data.columns"):
        check_space_columns(SearchSpace(input_columns=[["nope"]]), columns)
    with pytest.raises(ConfigError, match="search.space.embedding_dim.log_return: 'log_return' is not a categorical column"):
        check_space_columns(SearchSpace(embedding_dim={"log_return": [2]}), columns)
    with pytest.raises(ConfigError, match=r"search.space.column_types.0.weekday: 'real' but data.columns says 'categorical'"):
        check_space_columns(SearchSpace(input_columns=[["weekday"]], column_types=[{"weekday": "real"}]), columns)
    with session_scope(engine, write=False) as s:  # nothing half-written
        assert s.execute(sa.select(sa.func.count()).select_from(Study)).scalar_one() == 0
        assert s.execute(sa.select(sa.func.count()).select_from(Budget)).scalar_one() == 0


def _create_worker(url, barrier, out):
    engine = create_engine_for(url)
    from seqdb.db.models import Experiment

    with session_scope(engine, write=False) as s:
        exp = s.execute(sa.select(Experiment)).scalars().one()
    cfg = experiment_config(GRID, budgets=["60k"])
    barrier.wait()
    out.put(create_study(engine, exp, cfg, "60k", 1, base_spec()).study_id)
    engine.dispose()


def test_concurrent_creation_gives_one_study(db_url, engine):
    register(engine, experiment_config(GRID, budgets=["60k"]))
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_create_worker, args=(db_url, barrier, out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    ids = {out.get(timeout=5) for _ in procs}
    assert len(ids) == 1
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Study)).scalar_one() == 1
        n = s.execute(sa.select(sa.func.count()).select_from(Trial)).scalar_one()
        hashes = s.execute(sa.select(sa.func.count(sa.distinct(Trial.config_hash))).select_from(Trial)).scalar_one()
    assert n == hashes > 0


def test_pruning_pareto_importance_and_objectives(engine):
    search = {"pruner": {"name": "median", "n_startup_trials": 2}, "objectives": ["val_loss", "param_count"],
              "space": {"dropout": [0.0, 0.1, 0.2], "learning_rate": [1e-3, 3e-4]}}  # fmt: skip
    cfg = experiment_config(search, budgets=["60k"])
    study = create_study(engine, register(engine, cfg), cfg, "60k", 1, base_spec())
    trials = trials_of(engine, study.study_id)
    finals = [0.50, 0.40, 0.60, 0.45]
    sizes = [1000, 3000, 500, 2000]
    with session_scope(engine) as s:
        for t, final in zip(trials[:4], finals):
            for step in (1, 2, 3):
                s.add(Metric(trial_id=t.trial_id, step=step, name="val_loss", value=final + (3 - step) * 0.1, time=time.time()))
    for t, final, size in zip(trials[:4], finals, sizes):
        tell(engine, t.trial_id, values=objective_values({"val_loss": final, "param_count": size}, study))
    me = trials[4].trial_id
    assert not should_prune(engine, study.study_id, me, 1, 0.6)  # better than the median at step 1
    assert should_prune(engine, study.study_id, me, 2, 5.0)  # far worse at step 2
    front = view_front(engine, study.study_id)
    assert front == [[0.40, 3000.0], [0.45, 2000.0], [0.50, 1000.0], [0.60, 500.0]]
    tell(engine, trials[5].trial_id, values=[0.70, 4000.0])  # dominated by everything
    assert len(view_front(engine, study.study_id)) == 4
    imp = importance(engine, study.study_id)
    assert set(imp) == {"dropout", "learning_rate"} and abs(sum(imp.values()) - 1) < 1e-6
    assert not study_complete(engine, study.study_id)
    with pytest.raises(ConfigError, match="objective 'param_count' was not measured"):
        objective_values({"val_loss": 0.1}, study)
    assert objective_values({"val_loss": 0.1}, study, trial=trials[0]) == [0.1, float(trials[0].param_count)]
    for t in trials[4:]:
        tell(engine, t.trial_id, state="pruned")
    assert study_complete(engine, study.study_id)


def view_front(engine, study_id: int) -> list[list[float]]:
    """The study's Pareto front as the `pareto_front` view gives it, by the first objective."""
    from seqdb.views import connect, sql

    with connect(engine.url.render_as_string(hide_password=False)) as vc:
        rows = sql(vc, "SELECT objective_values FROM pareto_front WHERE study_id = ? ORDER BY objective_values[1]", [study_id])
    return [list(r["objective_values"]) for r in rows.to_pylist()]


def test_hyperband_and_none_pruners(engine):
    cfg = experiment_config({"pruner": "none", "space": {"dropout": [0.0, 0.1]}}, budgets=["60k"])
    study = create_study(engine, register(engine, cfg), cfg, "60k", 1, base_spec())
    t = trials_of(engine, study.study_id)[0]
    assert not should_prune(engine, study.study_id, t.trial_id, 1, 1e9)
    cfg = experiment_config({"pruner": {"name": "hyperband", "min_resource": 1, "reduction_factor": 2},
                             "space": {"dropout": [0.0, 0.05, 0.1, 0.15, 0.2, 0.25]}}, budgets=["60k"], name="hb")  # fmt: skip
    study = create_study(engine, register(engine, cfg), cfg, "60k", 1, base_spec())
    trials = trials_of(engine, study.study_id)
    decisions = []
    with session_scope(engine) as s:
        for i, tr in enumerate(trials[:-1]):
            for step in range(1, 9):
                s.add(Metric(trial_id=tr.trial_id, step=step, name="val_loss", value=0.1 * (i + 1) / step, time=time.time()))
    for tr in trials[:-1]:
        tell(engine, tr.trial_id, values=[0.1])
    for step in range(1, 9):
        decisions.append(should_prune(engine, study.study_id, trials[-1].trial_id, step, 100.0))
    assert any(decisions)  # a hopeless curve is stopped at some rung
