"""The real-trainer kill soak: `seqdb run` processes SIGKILLed at random points of real
training, then one run to the end; the invariants the queue and the checkpoints must keep.

    result = kill_soak(project_root, "10k", 1, kills=5)
    problems = check_soak(engine, result)   # [] when every invariant held

Used by tests/hardening/test_kill_soak.py (a few kills, both backends) and
benchmarks/bench_soak.py (the long soak).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.hashing import file_sha256


@dataclass
class SoakResult:
    kills: int = 0  # SIGKILLs that landed while the run was training
    runs: int = 0
    resumes: int = 0  # "resuming at step N" lines seen
    final_code: int | None = None
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)


def _start(root: Path, budget: str, horizon: int, lease_s: float) -> subprocess.Popen:
    args = [sys.executable, "-m", "seqdb", "--project", str(root), "run", "--budget", budget, "--horizon", str(horizon),
            "--lease-seconds", str(lease_s), "--no-live"]
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)


def _checkpoints(engine: Engine) -> int:
    with engine.connect() as c:
        return c.execute(sa.text("SELECT count(*) FROM checkpoint")).scalar_one()


def _kill_one(proc: subprocess.Popen, engine: Engine, rng: random.Random, timeout_s: float) -> bool:
    """Wait for the run to register a new checkpoint, then a random extra delay, then
    SIGKILL it; False when it finished on its own first."""
    start_ckpts, deadline = _checkpoints(engine), time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None and _checkpoints(engine) == start_ckpts:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.6))  # anywhere: mid-step, mid-save, mid-registration, mid-prune
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def kill_soak(root: Path, engine: Engine, budget: str, horizon: int, *, kills: int, lease_s: float = 2.0,
              seed: int = 0, timeout_s: float = 600.0, say=lambda _msg: None) -> SoakResult:  # noqa: ANN001
    """SIGKILL `kills` runs at random points, then run to the end; returns what happened."""
    rng, result, t0 = random.Random(seed), SoakResult(), time.monotonic()
    while result.kills < kills:
        proc = _start(root, budget, horizon, lease_s)
        result.runs += 1
        killed = _kill_one(proc, engine, rng, timeout_s)
        result.outputs.append(proc.stdout.read())
        if not killed:
            result.final_code = proc.returncode
            break
        result.kills += 1
        say(f"kill {result.kills}/{kills} ({time.monotonic() - t0:.0f}s)")
    if result.final_code is None:
        proc = _start(root, budget, horizon, lease_s)
        result.runs += 1
        out, _ = proc.communicate(timeout=timeout_s)
        result.outputs.append(out)
        result.final_code = proc.returncode
    result.resumes = sum(out.count("resuming at step") for out in result.outputs)
    result.seconds = time.monotonic() - t0
    return result


def check_soak(engine: Engine, result: SoakResult, artifacts_root: Path) -> list[str]:
    """Every invariant of a finished soak; returns the violations (empty: all held)."""
    problems = [] if result.final_code == 0 else [f"the last run exited {result.final_code}: {result.outputs[-1][-1500:]}"]
    with engine.connect() as c:
        trials = c.execute(sa.text("SELECT trial_id, state, step, attempt, config FROM trial ORDER BY trial_id")).all()
        metrics = dict(c.execute(sa.text(
            "SELECT trial_id, count(*) FROM metric WHERE name = 'train_loss' GROUP BY trial_id")).all())
        dup = c.execute(sa.text(
            "SELECT count(*) FROM (SELECT trial_id, step FROM metric WHERE name = 'train_loss' GROUP BY trial_id, step HAVING count(*) > 1) d")).scalar_one()
        ckpts = c.execute(sa.text("SELECT trial_id, path, sha256, step FROM checkpoint ORDER BY trial_id, step")).all()
    problems += [f"trial {t.trial_id} is {t.state}" for t in trials if t.state != "completed"]
    problems += [f"trial {t.trial_id}: {metrics.get(t.trial_id, 0)} train_loss rows for {t.step} steps"
                 for t in trials if metrics.get(t.trial_id, 0) != t.step]
    problems += [f"{dup} (trial, step) metric rows written twice"] if dup else []
    problems += _check_files(trials, ckpts, artifacts_root)
    return problems


def _check_files(trials, ckpts, artifacts_root: Path) -> list[str]:  # noqa: ANN001
    """The newest registered checkpoint of each trial is on disk and intact; pruning left at
    most best + latest complete checkpoints per trial."""
    problems, newest = [], {}
    for row in ckpts:
        newest[row.trial_id] = row
    for t in trials:
        row = newest.get(t.trial_id)
        if row is None or not Path(row.path).is_file() or file_sha256(Path(row.path)) != row.sha256:
            problems.append(f"trial {t.trial_id}: newest registered checkpoint missing or corrupt ({row.path if row else '-'})")
        folder = artifacts_root / "trials" / str(t.trial_id)
        kept = [p for p in folder.glob("step-*.pt")] if folder.is_dir() else []
        if len(kept) > 2:
            problems.append(f"trial {t.trial_id}: {len(kept)} checkpoints kept (pruning: best + latest)")
    return problems
