"""The real trainer under SIGKILL, on SQLite and Postgres, checkpoint pruning on: a few
`seqdb run` processes killed at random points of training, then one run to the end. No
trial lost, none failed, every step's metrics exactly once, each trial's newest registered
checkpoint intact, at most best + latest kept. (The long soak: benchmarks/bench_soak.py.)"""

from __future__ import annotations

from seqdb.app.demo import demo_experiment, setup_project
from seqdb.testing.soak import check_soak, kill_soak

KILLS = 2  # each kill costs a `seqdb run` start (torch import): the long soak is the benchmark's


def soak_experiment() -> dict:
    exp = demo_experiment(quick=True)
    exp["name"], exp["budgets"], exp["max_attempts"] = "kill-soak", ["10k"], 100
    exp["search"].update(n_samples=1, space={"learning_rate": [3.0e-3], "dropout": [0.0]})
    exp["training"].update(max_epochs=2, max_steps=20, checkpoint_every_steps=2, eval_every_steps=4, max_eval_batches=2,
                           early_stopping={"patience": 100, "min_delta": 0.0})
    return exp


def test_real_trainer_kill_soak(db_url, tmp_path):
    root = tmp_path / "proj"
    project, engine, _ = setup_project(root, True, database_url=None if db_url.startswith("sqlite") else db_url,
                                       experiment=soak_experiment())
    result = kill_soak(root, engine, "10k", 1, kills=KILLS, lease_s=2.0, seed=1)
    assert result.kills == KILLS and result.resumes >= 1, result.outputs[-1][-2000:]
    assert check_soak(engine, result, project.artifacts_root) == []
    engine.dispose()
