"""Registering experiments in the database (SQLite and Postgres): idempotent add, refusal of
other content under the same name, --replace only without studies, lookups."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from seqdb.db.engine import session_scope
from seqdb.db.models import Budget, Experiment, Study
from seqdb.errors import ConfigError, NotFoundError
from seqdb.experiment.registry import get_experiment, list_experiments, register_experiment
from tests.experiment.conftest import base_config
from tests.helpers import assert_one_line_error, run_cli_inprocess


def _count(engine) -> int:
    with session_scope(engine, write=False) as s:
        return s.scalar(select(func.count()).select_from(Experiment))


def test_add_is_idempotent_and_refuses_other_content(engine, write_yaml):
    path = write_yaml(base_config())
    row, created = register_experiment(engine, path)
    assert created and row.config["budgets"] == ["10k", "30k"] and "name: exp-a" in row.yaml_text
    # the same content (even reformatted, with a comment) is a no-op
    again = write_yaml("# a comment\n" + path.read_text(), name="same.yaml")
    row2, created2 = register_experiment(engine, again)
    assert not created2 and row2.experiment_id == row.experiment_id and row2.content_hash == row.content_hash
    # other content under the same name: refused, nothing changes
    other = write_yaml(base_config(context_length=16), name="other.yaml")
    with pytest.raises(ConfigError, match="already registered with different content.*--replace"):
        register_experiment(engine, other)
    exp, cfg = get_experiment(engine, "exp-a")
    assert cfg.context_length == 8 and _count(engine) == 1
    # --replace works while no study exists, and drops the derived budgets
    with session_scope(engine) as s:
        s.add(Budget(experiment_id=exp.experiment_id, label="10k", n_params=10_000))
    row3, created3 = register_experiment(engine, other, replace=True)
    assert created3 and row3.experiment_id == exp.experiment_id
    assert get_experiment(engine, "exp-a")[1].context_length == 16
    with session_scope(engine, write=False) as s:
        assert s.scalar(select(func.count()).select_from(Budget)) == 0


def test_replace_refused_once_a_study_exists(engine, write_yaml):
    row, _ = register_experiment(engine, write_yaml(base_config()))
    with session_scope(engine) as s:
        b = Budget(experiment_id=row.experiment_id, label="10k", n_params=10_000)
        s.add(b)
        s.flush()
        s.add(Study(experiment_id=row.experiment_id, budget_id=b.budget_id, horizon=1, name="exp-a/10k/h1", strategy="grid", n_trials=1, max_epochs=1, objectives=[], config={}))
    other = write_yaml(base_config(seed=1), name="other.yaml")
    with pytest.raises(ConfigError, match="already has 1 studies and cannot be replaced"):
        register_experiment(engine, other, replace=True)
    assert get_experiment(engine, "exp-a")[1].seed == 7


def test_lookup_and_list(engine, write_yaml):
    register_experiment(engine, write_yaml(base_config()))
    register_experiment(engine, write_yaml(base_config(name="exp-b"), name="b.yaml"))
    assert [e.name for e in list_experiments(engine)] == ["exp-a", "exp-b"]
    with pytest.raises(NotFoundError, match="'nope' is not registered; known: exp-a, exp-b"):
        get_experiment(engine, "nope")


def test_cli_add_list_show_and_bad_input_registers_nothing(engine, db_url, write_yaml):
    bad = write_yaml(base_config(budgets=["10k", "ten"]), name="bad.yaml")
    assert_one_line_error(run_cli_inprocess("--db", db_url, "experiment", "add", str(bad)), "bad.yaml: budgets.1: found 'ten'")
    assert _count(engine) == 0
    good = write_yaml(base_config())
    res = run_cli_inprocess("--db", db_url, "experiment", "add", str(good))
    assert res.code == 0 and "registered" in res.out, res.err
    res = run_cli_inprocess("--db", db_url, "experiment", "add", str(good))
    assert res.code == 0 and "already registered (same content)" in res.out
    changed = write_yaml(base_config(horizons=[1, 3]), name="changed.yaml")
    assert_one_line_error(run_cli_inprocess("--db", db_url, "experiment", "add", str(changed)), "exp-a", "--replace")
    res = run_cli_inprocess("--db", db_url, "experiment", "list")
    assert res.code == 0 and "exp-a" in res.out and "1 experiment(s)" in res.out
    res = run_cli_inprocess("--db", db_url, "experiment", "show", "exp-a")
    assert res.code == 0 and "name: exp-a" in res.out and "10k = 10,000 parameters" in res.out
    res = run_cli_inprocess("--db", db_url, "experiment", "show", "exp-a", "--json")
    assert res.code == 0 and '"context_length": 8' in res.out
    assert_one_line_error(run_cli_inprocess("--db", db_url, "experiment", "show", "zzz"), "'zzz' is not registered; known: exp-a")
