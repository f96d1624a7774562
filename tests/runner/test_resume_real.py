"""The real trainer under `seqdb run`: SIGKILL a worker mid-trial on Postgres; the next
`seqdb run` reaps the expired lease and resumes from the last registered checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import sqlalchemy as sa

from seqdb.db.engine import create_engine_for
from seqdb.app.demo import demo_experiment, setup_project
from tests.runner.harness import ROOT


def _experiment() -> dict:
    exp = demo_experiment(quick=True)
    exp["name"], exp["budgets"] = "resume-real", ["10k"]
    exp["training"].update(max_epochs=3, max_steps=24, checkpoint_every_steps=4, eval_every_steps=8, max_eval_batches=2,
                           early_stopping={"patience": 100, "min_delta": 0.0})
    return exp


def _run(path, *extra) -> subprocess.Popen:  # noqa: ANN001
    args = [sys.executable, "-m", "seqdb", "--project", str(path), "run", "--budget", "10k", "--horizon", "1", "--lease-seconds", "2", *extra]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})


def test_sigkilled_real_training_resumes_from_checkpoint_on_postgres(pg_url, tmp_path):
    path = tmp_path / "proj"
    _, engine, _ = setup_project(path, True, database_url=pg_url, experiment=_experiment())
    first = _run(path)
    try:
        deadline = time.monotonic() + 120
        with engine.connect() as c:
            while time.monotonic() < deadline and first.poll() is None:
                if c.execute(sa.text("SELECT COUNT(*) FROM checkpoint")).scalar_one() >= 2:
                    break
                c.rollback()
                time.sleep(0.1)
        assert first.poll() is None, first.stdout.read()
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    with engine.connect() as c:
        killed = c.execute(sa.text("SELECT state, attempt, step FROM trial")).one()
        ckpt_step = c.execute(sa.text("SELECT MAX(step) FROM checkpoint")).scalar_one()
    assert killed.state == "running" and 0 < ckpt_step < 24 and killed.step == ckpt_step

    second = _run(path)
    out, _ = second.communicate(timeout=240)
    assert second.returncode == 0, out[-3000:]
    assert f"resuming at step {ckpt_step}" in out, out[-3000:]
    with engine.connect() as c:
        row = c.execute(sa.text("SELECT state, attempt, step, best_val_loss FROM trial")).one()
        assert (row.state, row.attempt, row.step) == ("completed", 1, 24) and row.best_val_loss > 0
        ck = c.execute(sa.text("SELECT attempt, step FROM checkpoint ORDER BY checkpoint_id")).all()
        assert [r.step for r in ck] == sorted({r.step for r in ck}), f"step counter restarted: {ck}"
        assert min(r.step for r in ck if r.attempt == 1) > ckpt_step
        steps = c.execute(sa.text("SELECT COUNT(*), MIN(step), MAX(step) FROM metric WHERE name = 'train_loss'")).one()
        assert tuple(steps) == (24, 1, 24)
    engine.dispose()
