"""Real `seqdb run` processes on a tiny experiment (the S&P 500 demo data, a ~10k-parameter
model): the project, the processes, and the database invariants the cluster tests check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from seqdb.app.demo import demo_experiment, setup_project
from tests.runner.harness import ROOT


def tiny_experiment(name: str, *, trials: int = 1, max_steps: int = 40) -> dict:
    exp = demo_experiment(quick=True)
    exp["name"], exp["budgets"] = name, ["10k"]
    exp["search"].update(n_samples=trials, space={"learning_rate": [1e-3, 3e-3, 1e-2][:trials] or [3e-3], "dropout": [0.0]})
    exp["training"].update(max_epochs=50, max_steps=max_steps, checkpoint_every_steps=10, eval_every_steps=10,
                           max_eval_batches=1, early_stopping={"patience": 100, "min_delta": 0.0})
    return exp


def make_project(path: Path, url: str, exp: dict):  # noqa: ANN201
    """The project with `exp` registered and its study planned; returns (project, engine)."""
    from seqdb.search.plan import plan_studies

    project, engine, _ = setup_project(path, True, database_url=url, experiment=exp)
    plan_studies(engine, project, exp["name"], exp["budgets"], exp["horizons"])
    return project, engine


def seqdb_cmd(path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "seqdb", "--project", str(path), *args]


def start_run(path: Path, url: str, *extra: str, log: Path) -> subprocess.Popen:
    args = seqdb_cmd(path, "run", "--budget", "10k", "--horizon", "1", "--lease-seconds", "5", *extra)
    env = {**os.environ, "SEQDB_DATABASE_URL": url, "COLUMNS": "200", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(args, cwd=ROOT, stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env)


def wait_until(engine, sql: str, timeout: float, proc: subprocess.Popen | None = None) -> bool:  # noqa: ANN001
    """Poll `sql` (one scalar) until it is truthy; False on timeout or when `proc` exits."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with engine.connect() as c:
            if c.execute(sa.text(sql)).scalar():
                return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def trials(engine) -> list:  # noqa: ANN001
    with engine.connect() as c:
        return c.execute(sa.text("SELECT trial_id, state, attempt, step, lease_expires_at FROM trial ORDER BY trial_id")).all()


def workers(engine) -> list[dict]:  # noqa: ANN001
    with engine.connect() as c:
        rows = c.execute(sa.text("SELECT worker_id, state, device, info FROM worker ORDER BY worker_id")).mappings().all()
    return [{**r, "info": json.loads(r["info"]) if isinstance(r["info"], str) else (r["info"] or {})} for r in rows]


def registered_steps(engine, trial_id: int) -> list[int]:  # noqa: ANN001
    with engine.connect() as c:
        return [r[0] for r in c.execute(sa.text("SELECT step FROM checkpoint WHERE trial_id = :t ORDER BY step"), {"t": trial_id})]


def metric_steps(engine, trial_id: int) -> tuple:  # noqa: ANN001
    with engine.connect() as c:
        return tuple(c.execute(sa.text("SELECT COUNT(*), MIN(step), MAX(step) FROM metric WHERE trial_id = :t AND name = 'train_loss'"),
                               {"t": trial_id}).one())


__all__ = ["ROOT", "make_project", "metric_steps", "registered_steps", "seqdb_cmd", "start_run", "tiny_experiment", "trials",
           "wait_until", "workers"]
