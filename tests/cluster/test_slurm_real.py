"""`seqdb launch slurm` against a real single-node Slurm (slurmctld + slurmd on localhost):
a job array of 3 workers runs a small experiment to completion on Postgres; one task,
cancelled mid-trial with `scancel --signal=TERM`, hands its trial back without using an
attempt, and another array task resumes it from its checkpoint."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.cluster.real import ROOT, make_project, metric_steps, seqdb_cmd, tiny_experiment, trials, wait_until, workers
from tests.cluster.slurm_local import local_slurm, missing

MAX_STEPS = 60  # long enough that the cancel lands mid-trial on an idle machine too
why_not = missing()
pytestmark = pytest.mark.skipif(why_not is not None and os.environ.get("CI") != "true", reason=why_not or "")


def _task_of(pid: int) -> str:
    """`JOBID_TASK` of the array task a worker process belongs to (read from its environment)."""
    env = dict(e.split("=", 1) for e in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in e)
    return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"


def _running_worker(engine) -> tuple[int, int, int]:  # noqa: ANN001
    """(worker_id, pid, trial_id) of a worker whose trial has a registered checkpoint."""
    with engine.connect() as c:
        return c.execute(sa.text(
            "SELECT w.worker_id, w.pid, t.trial_id FROM worker w JOIN trial t ON t.trial_id = w.current_trial_id "
            "WHERE w.state = 'running' AND t.state = 'running' AND t.step > 0 ORDER BY t.trial_id LIMIT 1")).one()


def _wait_array_done(env: dict, job: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%i %T"], env=env, capture_output=True, text=True)
        if out.returncode == 0 and not out.stdout.strip():
            return
        time.sleep(0.5)
    raise AssertionError(f"job array {job} still queued after {timeout:.0f}s: {out.stdout}")


@pytest.mark.timeout(300)
def test_job_array_runs_the_experiment_and_survives_a_cancelled_task(pg_url, tmp_path):
    path = tmp_path / "proj"
    _, engine = make_project(path, pg_url, tiny_experiment("slurm", trials=3, max_steps=MAX_STEPS))
    with local_slurm(tmp_path / "slurm") as env:
        env = {**env, "SEQDB_DATABASE_URL": pg_url, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
        out = subprocess.run(seqdb_cmd(path, "launch", "slurm", "--experiment", "slurm", "--workers", "3", "--grace", "30",
                                       "--lease-seconds", "10"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        job = out.stdout.split("submitted job array ")[1].split(":")[0]
        refused = subprocess.run(seqdb_cmd(path, "launch", "slurm", "--workers", "1", "--partition", "nosuch"), cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0 and refused.stderr.startswith("error: sbatch refused ") and "Invalid partition" in refused.stderr, refused.stderr
        assert len(list((path / "artifacts" / "slurm").glob("*.sbatch"))) == 1  # the refused script is gone
        assert wait_until(engine, "SELECT COUNT(*) FROM trial t JOIN worker w ON w.current_trial_id = t.trial_id "
                                  "WHERE t.state = 'running' AND t.step > 0 AND w.state = 'running'", 150), _logs(path)
        worker_id, pid, trial_id = _running_worker(engine)
        subprocess.run(["scancel", "--signal=TERM", _task_of(pid)], env=env, check=True, timeout=30)
        _wait_array_done(env, job, 200)
    rows = {t.trial_id: t for t in trials(engine)}
    assert {(t.state, t.attempt, t.step) for t in rows.values()} == {("completed", 0, MAX_STEPS)}, (rows, _logs(path))
    assert all(metric_steps(engine, t) == (MAX_STEPS, 1, MAX_STEPS) for t in rows)
    by_id = {w["worker_id"]: w for w in workers(engine)}
    assert by_id[worker_id]["state"] == "stopped" and {w["state"] for w in by_id.values()} == {"stopped"}
    logs = _logs(path)
    assert "stopped: signal SIGTERM" in logs and "resuming at step" in logs, logs
    with engine.connect() as c:
        finisher = c.execute(sa.text("SELECT lease_owner FROM trial WHERE trial_id = :t"), {"t": trial_id}).scalar_one()
    assert finisher != worker_id  # another array task finished the cancelled task's trial
    engine.dispose()


def _logs(path: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted((path / "artifacts" / "slurm").glob("*.out")))
