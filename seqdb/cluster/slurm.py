"""`seqdb launch slurm`: an sbatch job array whose every task is one `seqdb run`.

    #SBATCH --array=0-(N-1)        N workers, each an array task
    #SBATCH --signal=B:USR1@GRACE  the batch shell gets USR1 GRACE seconds before the time limit
    srun seqdb run ... &           the worker is a job step, so `scancel --signal=TERM` reaches it
    trap: TERM / USR1 / INT        forwarded to the step (srun passes them on to the worker)

A worker told to stop finishes its step, registers a checkpoint, hands its trial back to the
queue without using an attempt and exits 0; the next task to claim it resumes it. The
database URL comes from SEQDB_DATABASE_URL in the environment sbatch passes on: it is never
written into the script.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from seqdb.errors import ConfigError, SeqdbError

ENV_URL = "SEQDB_DATABASE_URL"
TIME_RE = re.compile(r"\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+|\d+-\d+:\d{2}|\d+-\d+:\d{2}:\d{2}")
NAME_RE = re.compile(r"[A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class SlurmJob:
    """What one `seqdb launch slurm` asks for."""

    experiment: str
    project_root: Path
    workers: int
    budgets: list[str] = field(default_factory=list)  # empty: every budget of the experiment
    horizons: list[int] = field(default_factory=list)
    gpus_per_worker: int = 0
    ddp: bool = False  # with G > 1 GPUs: one DDP trial over them (else G pinned workers)
    cpus_per_worker: int = 1
    time: Optional[str] = None  # Slurm time limit: minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]
    partition: Optional[str] = None
    grace_s: int = 120
    lease_s: float = 60.0
    python: str = sys.executable


def check_job(job: SlurmJob) -> None:
    """One-line errors for options Slurm would reject later, in a queue, out of sight."""
    if job.workers < 1:
        raise ConfigError(f"--workers {job.workers}: give at least 1")
    if job.gpus_per_worker < 0 or job.cpus_per_worker < 1:
        raise ConfigError(f"--gpus-per-worker {job.gpus_per_worker} / --cpus-per-worker {job.cpus_per_worker}: allowed are G >= 0, C >= 1")
    if job.ddp and job.gpus_per_worker < 2:
        raise ConfigError(f"--ddp needs --gpus-per-worker 2 or more (got {job.gpus_per_worker})")
    if job.time is not None and not TIME_RE.fullmatch(job.time):
        raise ConfigError(f"--time {job.time!r} is not a Slurm time; allowed: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS")
    if job.partition is not None and not NAME_RE.fullmatch(job.partition):
        raise ConfigError(f"--partition {job.partition!r}: allowed are letters, digits, '_', '.', '-'")
    if job.time is not None and job.grace_s >= time_limit_s(job.time):
        raise ConfigError(f"--grace {job.grace_s}s is not shorter than --time {job.time}; the worker would be warned before it starts")
    if not 10 <= job.grace_s <= 65535:
        raise ConfigError(f"--grace {job.grace_s}: allowed are 10 to 65535 seconds")


def time_limit_s(value: str) -> int:
    """Seconds of a Slurm time limit (`TIME_RE` forms)."""
    days, _, rest = value.rpartition("-") if "-" in value else ("0", "", value)
    parts = [int(p) for p in rest.split(":")]
    if "-" in value:  # D-HH[:MM[:SS]]
        h, m, s = (parts + [0, 0])[:3]
    else:  # minutes | MM:SS | HH:MM:SS
        h, m, s = {1: (0, parts[0], 0), 2: (0, *parts), 3: tuple(parts)}[len(parts)]
    return int(days) * 86400 + h * 3600 + m * 60 + s


def worker_command(job: SlurmJob) -> list[str]:
    """The `seqdb run` every array task starts (no database URL: it comes from the environment)."""
    cmd = [job.python, "-m", "seqdb", "--project", str(job.project_root), "run", "--experiment", job.experiment,
           "--lease-seconds", f"{job.lease_s:g}"]
    for b in job.budgets:
        cmd += ["--budget", b]
    for h in job.horizons:
        cmd += ["--horizon", str(h)]
    g = job.gpus_per_worker
    if g == 1 or (g > 1 and not job.ddp):
        cmd += ["--device", "cuda"] + (["--workers", str(g)] if g > 1 else [])
    elif g > 1:
        cmd += ["--device", "cuda", "--ddp", str(g)]
    return cmd


def job_name(experiment: str) -> str:
    return "seqdb-" + re.sub(r"[^A-Za-z0-9_.\-]+", "-", experiment)[:40]


def sbatch_directives(job: SlurmJob, log_dir: Path) -> list[str]:
    lines = [f"--job-name={job_name(job.experiment)}", f"--array=0-{job.workers - 1}", "--ntasks=1",
             f"--cpus-per-task={job.cpus_per_worker}", f"--output={log_dir}/%x-%A_%a.out", f"--signal=B:USR1@{job.grace_s}"]
    if job.gpus_per_worker:
        lines.append(f"--gres=gpu:{job.gpus_per_worker}")
    if job.time:
        lines.append(f"--time={job.time}")
    if job.partition:
        lines.append(f"--partition={job.partition}")
    return [f"#SBATCH {d}" for d in lines]


# The body: check the URL is in the environment, start the worker as a job step in the
# background (a shell waiting on a foreground command runs no trap until it ends), forward the
# stop signals to it, and exit with its status once it is gone.
BODY = """\
set -u
if [ -z "${{{env}:-}}" ]; then
  echo "error: {env} is not set in this job's environment; export the shared Postgres URL before sbatch" >&2
  exit 2
fi
cd {root}
export OMP_NUM_THREADS="${{SLURM_CPUS_PER_TASK:-{cpus}}}"  # torch threads: this task's CPUs, not the whole node's
echo "seqdb worker: array task ${{SLURM_ARRAY_TASK_ID:-0}} of job ${{SLURM_ARRAY_JOB_ID:-${{SLURM_JOB_ID:-?}}}} on $(hostname)"
srun --ntasks=1 --cpus-per-task={cpus} {command} &
worker=$!
forward() {{ kill -s "$1" "$worker" 2>/dev/null || true; }}
trap 'forward TERM' TERM
trap 'forward USR1' USR1
trap 'forward INT' INT
while :; do
  wait "$worker"; status=$?
  kill -0 "$worker" 2>/dev/null || break
done
exit "$status"
"""


def render_script(job: SlurmJob, log_dir: Path) -> str:
    """The whole sbatch script (pure: same job, same text)."""
    check_job(job)
    what = f"experiment {job.experiment}" + (f", budgets {' '.join(job.budgets)}" if job.budgets else "") + \
        (f", horizons {' '.join(map(str, job.horizons))}" if job.horizons else "")
    head = ["#!/bin/bash", f"# seqdb launch slurm: {what}; {job.workers} worker(s) as one job array.",
            f"# Each task runs `seqdb run` against ${ENV_URL} (passed on by sbatch, never stored here).",
            *sbatch_directives(job, log_dir), ""]
    command = " ".join(shlex.quote(part) for part in worker_command(job))
    return "\n".join(head) + BODY.format(env=ENV_URL, root=shlex.quote(str(job.project_root)), cpus=job.cpus_per_worker, command=command)


def write_script(job: SlurmJob, folder: Path) -> Path:
    """Write the script under `folder` (temp + rename); its logs go to the same folder."""
    folder.mkdir(parents=True, exist_ok=True)
    text = render_script(job, folder)
    path = folder / f"{job_name(job.experiment)}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}.sbatch"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def submit(script: Path, sbatch: str = "sbatch") -> str:
    """`sbatch --parsable SCRIPT`; returns the job id. The environment (with the database
    URL) is passed on to the job by sbatch's default `--export=ALL`."""
    exe = shutil.which(sbatch)
    if exe is None:
        raise SeqdbError(f"{sbatch} not found on PATH: submit from a Slurm login node, or use --dry-run to write {script} only")
    proc = subprocess.run([exe, "--parsable", str(script)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1].removeprefix("sbatch: error: ")
        raise SeqdbError(f"sbatch refused {script}: {why}; check --partition, --time, --gpus-per-worker against `sinfo`")
    return proc.stdout.strip().split(";")[0]


def database_url_from_env(cli_db: Optional[str]) -> str:
    """The shared database every task reaches: SEQDB_DATABASE_URL, Postgres, never --db."""
    url = os.environ.get(ENV_URL)
    if cli_db is not None and cli_db != url:
        raise ConfigError(f"seqdb launch slurm takes the database from {ENV_URL}, not --db (the script must not hold the URL); export it instead")
    if not url:
        raise ConfigError(f"seqdb launch slurm: set {ENV_URL} to the shared Postgres URL (postgresql://user@host:5432/db); every task reads it from there")
    if not url.startswith(("postgresql", "postgres://")):
        raise ConfigError(f"{ENV_URL} is {url.split(':')[0]}: Slurm workers on many nodes need a shared Postgres database (postgresql://...)")
    return url


__all__ = ["SlurmJob", "check_job", "database_url_from_env", "render_script", "submit", "time_limit_s", "worker_command", "write_script"]
