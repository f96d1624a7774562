"""A synthetic executor and study: the queue's fault-injection harness (tests, benchmarks).

The executor does what the trainer does to the database, without a model: a metric row per
step, a small checkpoint file every few steps (written atomically, registered with its
sha256), resume from the latest registered checkpoint, stop between steps when asked.

    python -m seqdb.testing.synthetic --db URL --studies 1,2 --artifacts DIR --lease 2 --steps 40
runs one such worker (the kill soak starts and SIGKILLs these).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sqlalchemy.engine import Engine

from seqdb.db.engine import session_scope
from seqdb.db.models import Budget, Experiment, Study, Trial
from seqdb.errors import TrainingError
from seqdb.runner.executor import TrialRun, no_events
from seqdb.runner.queue import Lease, TrialOutcome
from seqdb.runner.worker import WorkerSettings, run_worker
from seqdb.testing.events import EventLog
from seqdb.hashing import file_sha256
from seqdb.train.reporter import CheckpointInfo


@dataclass
class SyntheticExecutor:
    steps: int = 20
    step_s: float = 0.0
    checkpoint_every: int = 5

    def pruner(self, engine: Engine, lease: Lease):  # noqa: ANN201
        return None

    def __call__(self, run: TrialRun) -> TrialOutcome:
        step = self._resume_step(run)
        run.progress.total_steps = self.steps
        while step < self.steps:
            step += 1
            if self.step_s:
                time.sleep(self.step_s)
            decision = run.reporter.report(step, 0, {"train_loss": 1.0 / step, "attempt": float(run.lease.attempt)})
            stopping = decision == "stop" or run.reporter.should_stop()
            if step % self.checkpoint_every == 0 or step == self.steps or stopping:
                self._checkpoint(run, step)
            if stopping:
                return TrialOutcome("stopped", step=step)
        return TrialOutcome("completed", best_val_loss=1.0 / self.steps, best_step=self.steps, step=self.steps, epochs_done=1)

    def _resume_step(self, run: TrialRun) -> int:
        if run.resume is None:
            return 0
        saved = json.loads(Path(run.resume.path).read_text())
        if saved["trial_id"] != run.lease.trial_id or saved["step"] != run.resume.step:
            raise TrainingError(f"{run.resume.path}: checkpoint does not match trial {run.lease.trial_id} step {run.resume.step}")
        return int(saved["step"])

    def _checkpoint(self, run: TrialRun, step: int) -> None:
        run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        path = run.checkpoint_dir / f"step-{step:08d}.json"
        tmp = path.with_suffix(f".tmp-{uuid.uuid4().hex[:6]}")
        tmp.write_text(json.dumps({"trial_id": run.lease.trial_id, "step": step, "attempt": run.lease.attempt}))
        os.replace(tmp, path)
        run.reporter.on_checkpoint(CheckpointInfo(path=path, bytes=path.stat().st_size, sha256=file_sha256(path), step=step,
                                                  epoch=0, val_loss=None, is_best=False))


def create_synthetic_study(engine: Engine, n_trials: int, *, max_attempts: int = 3, name: Optional[str] = None) -> int:
    """An experiment, a budget and a study with `n_trials` pending trials; returns study_id."""
    name = name or f"synthetic-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as s:
        exp = Experiment(name=name, yaml_text="synthetic: true\n", content_hash=name, config={})
        s.add(exp)
        s.flush()
        budget = Budget(experiment_id=exp.experiment_id, label="1k", n_params=1000)
        s.add(budget)
        s.flush()
        study = Study(experiment_id=exp.experiment_id, budget_id=budget.budget_id, horizon=1, name=name, strategy="grid",
                      n_trials=n_trials, max_epochs=1, objectives=[{"name": "val_loss", "direction": "minimize"}],
                      config={"search": {"strategy": "grid"}})
        s.add(study)
        s.flush()
        s.add_all(Trial(study_id=study.study_id, number=i, config_hash=f"{i:064x}", config={"i": i}, max_attempts=max_attempts)
                  for i in range(n_trials))
        return study.study_id


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description="one synthetic worker (queue tests and benchmarks)")
    p.add_argument("--db", required=True)
    p.add_argument("--studies", required=True, help="comma-separated study ids")
    p.add_argument("--artifacts", required=True)
    p.add_argument("--lease", type=float, default=2.0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--step-s", type=float, default=0.0)
    p.add_argument("--checkpoint-every", type=int, default=5)
    p.add_argument("--events", default=None)
    p.add_argument("--label", default="w0")
    p.add_argument("--max-trials", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    settings = WorkerSettings(
        database_url=a.db, study_ids=[int(x) for x in a.studies.split(",")], artifacts_root=a.artifacts, lease_s=a.lease,
        poll_s=min(0.2, a.lease / 4), reap_every_s=min(1.0, a.lease / 2), max_trials=a.max_trials, label=a.label,
        progress=not a.quiet,
    )
    executor = SyntheticExecutor(steps=a.steps, step_s=a.step_s, checkpoint_every=a.checkpoint_every)
    summary = run_worker(settings, executor, EventLog(a.events) if a.events else no_events)
    return 0 if summary.stop_reason is None or summary.stop_reason.startswith(("signal", "stop request")) else 1


if __name__ == "__main__":
    raise SystemExit(main())
