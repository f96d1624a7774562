"""The database-backed Reporter the trainer is given (see seqdb/train/reporter.py).

report()        -> metric rows into the buffered writer; pruning decision on val_loss
on_checkpoint() -> flush metrics, then register the checkpoint (path, bytes, sha256, step)
                   and the trial's durable progress, in one lease-guarded transaction
should_stop()   -> a signal, a stop request, or a lost lease
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.db.engine import session_scope
from seqdb.db.models import Checkpoint, Trial
from seqdb.runner.metrics import MetricWriter
from seqdb.runner.queue import Lease, _owned, owns_lease
from seqdb.runner.retry import with_retry
from seqdb.train.reporter import CheckpointInfo, Decision
from seqdb.hashing import file_sha256

Pruner = Callable[[int, float], bool]  # (step, val_loss) -> prune?


@dataclass
class ResumePoint:
    """The latest registered checkpoint of a trial whose file is intact."""

    path: Path
    step: int
    epoch: int


class StopFlag:
    """Why this worker must stop (first reason wins); shared by signal handlers, the heartbeat
    thread (stop requests) and the loop."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: Optional[str] = None

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


class DbReporter:
    """Reporter over the database for one lease."""

    def __init__(self, engine: Engine, lease: Lease, writer: MetricWriter, stop: StopFlag, lost: threading.Event,
                 pruner: Optional[Pruner] = None, on_report: Optional[Callable[[int, int, dict], None]] = None):
        self.engine, self.lease, self.writer = engine, lease, writer
        self.stop, self.lost, self.pruner, self.on_report = stop, lost, pruner, on_report
        self.checkpoints: list[CheckpointInfo] = []
        self.best: tuple[Optional[float], Optional[int]] = (None, None)

    def report(self, step: int, epoch: int, metrics: dict[str, float]) -> Decision:
        self.writer.add(step, epoch, metrics)
        if self.on_report is not None:
            self.on_report(step, epoch, metrics)
        val = metrics.get("val_loss")
        if val is not None and (self.best[0] is None or val < self.best[0]):
            self.best = (float(val), int(step))
        if self.should_stop():
            return "stop"
        if val is not None and self.pruner is not None and self.pruner(step, float(val)):
            return "prune"
        return None

    def on_checkpoint(self, info: CheckpointInfo) -> bool:
        """Flush metrics, register the checkpoint; False (and the lease marked lost) when
        another worker owns the trial now: the trainer must not prune then."""
        self.writer.flush()  # the metrics up to this step become durable with the checkpoint
        if self.lease_lost() or not with_retry(lambda: register_checkpoint(self.engine, self.lease, info), what="register checkpoint"):
            self.lost.set()
            return False
        self.checkpoints.append(info)
        return True

    def should_stop(self) -> bool:
        return self.stop.is_set() or self.lease_lost()

    def lease_lost(self) -> bool:
        return self.lost.is_set() or self.writer.lost.is_set()


def register_checkpoint(engine: Engine, lease: Lease, info: CheckpointInfo) -> bool:
    """Insert the checkpoint row and the trial's progress (step, epochs, best so far) if this
    worker still owns the lease. Idempotent: a retried call after a lost answer adds nothing."""
    with session_scope(engine) as s:
        if not owns_lease(s, lease):
            return False
        exists = s.execute(
            sa.select(Checkpoint.checkpoint_id).where(
                Checkpoint.trial_id == lease.trial_id, Checkpoint.step == info.step,
                Checkpoint.attempt == lease.attempt, Checkpoint.path == str(info.path), Checkpoint.sha256 == info.sha256)
        ).first()
        if exists is None:
            s.add(Checkpoint(trial_id=lease.trial_id, path=str(info.path), bytes=info.bytes, sha256=info.sha256, step=info.step,
                             epoch=info.epoch, val_loss=info.val_loss, is_best=info.is_best, attempt=lease.attempt))
        values = {"step": info.step, "epochs_done": info.epoch}
        if info.is_best and info.val_loss is not None:
            values.update(best_val_loss=info.val_loss, best_step=info.step)
        s.execute(sa.update(Trial).where(_owned(lease)).values(**values))
    return True



def resume_point(engine: Engine, trial_id: int) -> Optional[ResumePoint]:
    """The newest registered checkpoint of `trial_id` whose file exists with its recorded
    sha256 (a missing or corrupt file falls back to the one before)."""
    with session_scope(engine, write=False) as s:
        rows = s.execute(
            sa.select(Checkpoint.path, Checkpoint.step, Checkpoint.epoch, Checkpoint.sha256)
            .where(Checkpoint.trial_id == trial_id)
            .order_by(Checkpoint.step.desc(), Checkpoint.checkpoint_id.desc())
        ).all()
    for row in rows:
        path = Path(row.path)
        if path.is_file() and file_sha256(path) == row.sha256:
            return ResumePoint(path, row.step, row.epoch)
    return None
