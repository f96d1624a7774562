"""`seqdb launch slurm --dry-run`: the job-array script, checked as text and by bash itself;
the database URL is read from the environment and never written into it."""

from __future__ import annotations

import os
import subprocess

import pytest

from seqdb.cluster.slurm import SlurmJob, render_script, time_limit_s, worker_command
from tests.cluster.real import ROOT, make_project, seqdb_cmd, tiny_experiment
from tests.helpers import CliResult, assert_one_line_error, run_cli_inprocess


def _launch(path, url, *args, env_url: str | None = None):  # noqa: ANN001, ANN202
    env = {k: v for k, v in os.environ.items() if k != "SEQDB_DATABASE_URL"}
    if env_url is not None:
        env["SEQDB_DATABASE_URL"] = env_url
    proc = subprocess.run(seqdb_cmd(path, "launch", "slurm", *args), cwd=ROOT, env={**env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=120)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def project(pg_url, tmp_path):  # noqa: ANN201
    path = tmp_path / "proj"
    _, engine = make_project(path, pg_url, tiny_experiment("launch"))
    engine.dispose()
    return path


def test_dry_run_writes_a_script_without_the_url(project, pg_url):
    result = _launch(project, pg_url, "--experiment", "launch", "--budget", "10k", "--horizon", "1", "--workers", "3",
                     "--time", "0:30:00", "--partition", "debug", "--grace", "90", "--dry-run", env_url=pg_url)
    assert result.code == 0, result.err
    (script,) = (project / "artifacts" / "slurm").glob("*.sbatch")
    text = script.read_text()
    for line in ("#SBATCH --array=0-2", "#SBATCH --signal=B:USR1@90", "#SBATCH --time=0:30:00", "#SBATCH --partition=debug",
                 "trap 'forward TERM' TERM", "trap 'forward USR1' USR1", "srun --ntasks=1",
                 'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"'):
        assert line in text, line
    assert "--experiment launch --lease-seconds 60 --budget 10k --horizon 1" in text
    assert pg_url not in text and pg_url not in script.read_text() and "postgresql" not in text
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0  # valid bash
    assert "not submitted (--dry-run)" in result.out


def test_script_refuses_to_run_without_the_url_in_the_environment(project, pg_url, tmp_path):
    assert _launch(project, pg_url, "--workers", "1", "--dry-run", env_url=pg_url).code == 0
    (script,) = (project / "artifacts" / "slurm").glob("*.sbatch")
    env = {k: v for k, v in os.environ.items() if k != "SEQDB_DATABASE_URL"}
    run = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "SEQDB_DATABASE_URL is not set" in run.stderr


@pytest.mark.parametrize("args, env, needles", [
    (["--workers", "2", "--dry-run"], None, ("SEQDB_DATABASE_URL", "postgresql://")),
    (["--workers", "2", "--dry-run"], "sqlite:///x.db", ("SEQDB_DATABASE_URL is sqlite", "Postgres")),
    (["--workers", "2", "--time", "soon", "--dry-run"], "PG", ("--time 'soon'", "HH:MM:SS")),
    (["--workers", "2", "--time", "1", "--dry-run"], "PG", ("--grace 120s", "--time 1")),
    (["--workers", "2", "--ddp", "--dry-run"], "PG", ("--ddp needs --gpus-per-worker 2",)),
    (["--workers", "2", "--budget", "7M", "--dry-run"], "PG", ("budget 7M", "allowed: 10k")),
])
def test_bad_launches_fail_in_one_line(project, pg_url, args, env, needles, monkeypatch):
    monkeypatch.delenv("SEQDB_DATABASE_URL", raising=False)
    if env is not None:
        monkeypatch.setenv("SEQDB_DATABASE_URL", pg_url if env == "PG" else env)
    result = run_cli_inprocess("--project", str(project), "launch", "slurm", *args)
    assert_one_line_error(result, *needles)
    assert not list(project.glob("artifacts/slurm/*.sbatch"))  # nothing written


def test_gpu_tasks_pin_or_ddp():
    base = SlurmJob(experiment="e", project_root=ROOT, workers=2)
    assert "--device" not in worker_command(base)
    assert worker_command(SlurmJob(**{**base.__dict__, "gpus_per_worker": 1}))[-2:] == ["--device", "cuda"]
    assert worker_command(SlurmJob(**{**base.__dict__, "gpus_per_worker": 4}))[-4:] == ["--device", "cuda", "--workers", "4"]
    ddp = SlurmJob(**{**base.__dict__, "gpus_per_worker": 4, "ddp": True})
    assert worker_command(ddp)[-4:] == ["--device", "cuda", "--ddp", "4"]
    assert "#SBATCH --gres=gpu:4" in render_script(ddp, ROOT)
    assert [time_limit_s(t) for t in ("30", "5:00", "1:00:00", "2-3", "1-0:30", "1-00:00:10")] == [1800, 300, 3600, 183600, 88200, 86410]


def test_without_sbatch_nothing_is_left_behind(project, pg_url, monkeypatch, tmp_path):
    monkeypatch.setenv("SEQDB_DATABASE_URL", pg_url)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no sbatch here
    result = run_cli_inprocess("--project", str(project), "launch", "slurm", "--workers", "2")
    assert_one_line_error(result, "sbatch not found on PATH", "--dry-run")
    assert not list(project.glob("artifacts/slurm/*.sbatch"))
