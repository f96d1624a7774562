"""The worker's fault taxonomy on real SQLite and Postgres: an error of the trial fails that
trial and the worker goes on; an error of the environment leaves the trial resumable (no
attempt used) and stops the worker with one line; `seqdb run`'s check then exits non-zero.
Faults are injected into the executor (a real OSError / exception), never into the queue."""

from __future__ import annotations

import errno
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from seqdb.db.engine import session_scope
from seqdb.db.models import Checkpoint, Metric, Trial
from seqdb.errors import DatabaseError, TrainingError
from seqdb.runner import queue as q
from seqdb.runner import worker as worker_mod
from seqdb.runner.executor import TrialRun
from seqdb.runner.requeue import retry_trials
from seqdb.runner.retry import with_retry
from seqdb.runner.worker import EnvironmentFault, WorkerLoop, WorkerSettings, check_summaries, classify
from seqdb.testing.synthetic import SyntheticExecutor, create_synthetic_study


@dataclass
class FaultyExecutor(SyntheticExecutor):
    """The synthetic executor, raising `fault` (an exception) at the first checkpoint of the
    trials whose number is in `on`."""

    fault: BaseException = None
    on: tuple = (0,)

    def _checkpoint(self, run: TrialRun, step: int) -> None:
        if run.lease.config["i"] in self.on:
            raise self.fault
        super()._checkpoint(run, step)


def _settings(url: str, sid: int, tmp_path: Path, **kw) -> WorkerSettings:
    (tmp_path / "artifacts").mkdir(exist_ok=True)
    return WorkerSettings(database_url=url, study_ids=[sid], artifacts_root=str(tmp_path / "artifacts"), lease_s=5.0,
                          poll_s=0.05, reap_every_s=0.5, progress=False, **kw)


def _trials(engine, sid: int) -> list:
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(Trial.number, Trial.state, Trial.attempt, Trial.error).where(Trial.study_id == sid).order_by(Trial.number)).all()


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENOSPC, errno.EROFS])
def test_disk_fault_leaves_trial_resumable_and_stops_worker(engine, db_url, tmp_path, code):
    sid = create_synthetic_study(engine, 3)
    fault = OSError(code, "injected", str(tmp_path / "artifacts" / "trials" / "1" / "step-00000005.json"))
    summary = WorkerLoop(_settings(db_url, sid, tmp_path), FaultyExecutor(steps=10, fault=fault), ask_next=lambda e, s: None).run()
    rows = _trials(engine, sid)
    assert [(r.state, r.attempt) for r in rows] == [("stopped", 0), ("pending", 0), ("pending", 0)]  # no trial burnt
    assert summary.fault and "step-00000005.json" in summary.fault and summary.stop_reason.startswith("environment fault")
    with pytest.raises(EnvironmentFault, match="left resumable"):
        check_summaries([summary])
    # fixed: the next worker resumes it and finishes everything
    done = WorkerLoop(_settings(db_url, sid, tmp_path), SyntheticExecutor(steps=10), ask_next=lambda e, s: None).run()
    assert done.fault is None and [r.state for r in _trials(engine, sid)] == ["completed"] * 3
    check_summaries([done])


def test_trial_error_fails_only_that_trial(engine, db_url, tmp_path):
    sid = create_synthetic_study(engine, 3)
    executor = FaultyExecutor(steps=10, fault=ValueError("config says d_model 7"), on=(1,))
    summary = WorkerLoop(_settings(db_url, sid, tmp_path), executor, ask_next=lambda e, s: None).run()
    rows = _trials(engine, sid)
    assert [r.state for r in rows] == ["completed", "failed", "completed"] and "d_model 7" in rows[1].error
    assert summary.fault is None and summary.failed == 1
    with pytest.raises(TrainingError, match="1 trial"):
        check_summaries([summary])


def test_retry_puts_failed_trial_back_with_history(engine, db_url, tmp_path):
    sid = create_synthetic_study(engine, 2)
    WorkerLoop(_settings(db_url, sid, tmp_path), FaultyExecutor(steps=10, fault=ValueError("boom"), on=(0,)), ask_next=lambda e, s: None).run()
    with session_scope(engine, write=False) as s:
        failed = s.execute(sa.select(Trial).where(Trial.study_id == sid, Trial.number == 0)).scalar_one()
        metrics_before = s.scalar(sa.select(sa.func.count()).select_from(Metric).where(Metric.trial_id == failed.trial_id))
    assert failed.state == "failed" and metrics_before > 0
    with pytest.raises(Exception, match="completed"):  # the other trial is not failed: refused, nothing changes
        retry_trials(engine, [failed.trial_id, failed.trial_id + 1])
    assert _trials(engine, sid)[0].state == "failed"
    assert retry_trials(engine, study_id=sid) == [failed.trial_id]
    with session_scope(engine, write=False) as s:
        row = s.get(Trial, failed.trial_id)
        assert (row.state, row.attempt, row.max_attempts) == ("pending", failed.attempt + 1, failed.attempt + 1 + 3)
        assert row.error.startswith("retried after: ValueError: boom") and row.finished_at is None
        assert s.scalar(sa.select(sa.func.count()).select_from(Metric).where(Metric.trial_id == row.trial_id)) == metrics_before
    assert retry_trials(engine, study_id=sid) == []  # nothing failed any more
    WorkerLoop(_settings(db_url, sid, tmp_path), SyntheticExecutor(steps=10), ask_next=lambda e, s: None).run()
    assert [r.state for r in _trials(engine, sid)] == ["completed", "completed"]


def test_expiry_after_clean_stop_uses_no_attempt(engine):
    sid = create_synthetic_study(engine, 2, max_attempts=1)
    clean, killed = q.register_worker(engine), q.register_worker(engine)
    a = q.claim_trial(engine, clean.worker_id, [sid], lease_s=0.2)
    b = q.claim_trial(engine, killed.worker_id, [sid], lease_s=0.2)
    q.mark_stopping(engine, clean.worker_id)  # a SIGTERM arrived; then a SIGKILL before the release
    time.sleep(0.5)
    reaped = dict(q.reap_expired(engine))
    assert reaped == {a.trial_id: "stopped", b.trial_id: "failed"}  # max_attempts 1: the killed one is used up
    with session_scope(engine, write=False) as s:
        assert s.get(Trial, a.trial_id).attempt == 0 and s.get(Trial, b.trial_id).attempt == 1
    again = q.claim_trial(engine, q.register_worker(engine).worker_id, [sid], lease_s=30)
    assert again.trial_id == a.trial_id and again.attempt == 0
    assert not q.finish_trial(engine, a, q.TrialOutcome("completed"))  # the old owner is fenced off


def test_project_deleted_mid_run_fails_clearly(tmp_path, monkeypatch):
    from seqdb.db.engine import create_engine_for
    from seqdb.db.migrate import upgrade

    db = tmp_path / "proj" / "seqdb.db"
    db.parent.mkdir()
    url = f"sqlite:///{db}"
    engine = create_engine_for(url)
    upgrade(engine)
    sid = create_synthetic_study(engine, 1)
    engine.dispose()
    monkeypatch.setattr(worker_mod, "ENV_CHECK_EVERY_S", 0.1)
    loop = WorkerLoop(_settings(url, sid, tmp_path), SyntheticExecutor(steps=400, step_s=0.01), ask_next=lambda e, s: None)
    threading.Timer(1.0, lambda: [db.unlink(), *(Path(f"{db}{x}").unlink(missing_ok=True) for x in ("-wal", "-shm"))]).start()
    summary = loop.run()
    assert summary.fault and "seqdb.db was deleted" in summary.fault
    assert not db.exists()  # no empty database made in its place


def test_schema_errors_are_not_retried(tmp_path):
    from seqdb.db.engine import create_engine_for

    engine = create_engine_for(f"sqlite:///{tmp_path / 'x.db'}")
    start = time.monotonic()
    with pytest.raises(DatabaseError, match="no seqdb schema"):
        with_retry(lambda: q.open_counts(engine, [1]), what="queue state", deadline_s=30)
    assert time.monotonic() - start < 5
    engine.dispose()


def test_classify():
    assert classify(ValueError("x")) is None and classify(RuntimeError("CUDA error")) is None
    assert classify(OSError(errno.ENOSPC, "full")) is not None and classify(PermissionError(errno.EACCES, "no")) is not None
    assert classify(DatabaseError("record result: database unreachable for 120s: x")).outage


@dataclass
class FlakySetupExecutor(SyntheticExecutor):
    """The first `failures` trial setups hit a dropped database connection."""

    failures: int = 2
    seen: int = 0

    def __call__(self, run: TrialRun):  # noqa: ANN204
        from sqlalchemy.exc import OperationalError

        from seqdb.runner.executor import SetupError

        self.seen += 1
        if self.seen <= self.failures:
            raise SetupError(OperationalError("SELECT dataset", {}, ConnectionError("server closed the connection unexpectedly")))
        return super().__call__(run)


def test_database_outage_during_setup_backs_off_and_goes_on(engine, db_url, tmp_path):
    sid = create_synthetic_study(engine, 2)
    summary = WorkerLoop(_settings(db_url, sid, tmp_path, outage_backoff_s=0.05), FlakySetupExecutor(steps=5),
                         ask_next=lambda e, s: None).run()
    assert summary.fault is None and [r.state for r in _trials(engine, sid)] == ["completed", "completed"]
    assert [r.attempt for r in _trials(engine, sid)] == [0, 0]  # the outage used no attempt
    gave_up = WorkerLoop(_settings(db_url, create_synthetic_study(engine, 1), tmp_path, outage_backoff_s=0.01, max_outages=2),
                         FlakySetupExecutor(steps=5, failures=99), ask_next=lambda e, s: None).run()
    assert gave_up.fault and "server closed the connection" in gave_up.fault


def test_seqdb_run_exits_non_zero_on_an_environment_fault(tmp_path):
    """End to end with the real trainer: the checkpoint folder cannot be made (a file is in
    the way); `seqdb run` stops with one line and exit 8, the trial stays resumable."""
    from seqdb.app.demo import demo_experiment, setup_project
    from tests.helpers import assert_one_line_error, run_cli

    exp = demo_experiment(quick=True)
    exp["name"], exp["budgets"] = "env-fault", ["10k"]
    project, engine, _ = setup_project(tmp_path / "proj", True, experiment=exp)
    (project.artifacts_root / "trials").write_text("a file where the checkpoint folders go")
    res = run_cli("--project", str(project.root), "run", "--budget", "10k", "--horizon", "1", "--no-live")
    assert res.code == 8, res.out[-2000:] + res.err[-2000:]
    assert_one_line_error(res, "left resumable", "trials")
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT state, attempt FROM trial")).all() == [("stopped", 0)]
    engine.dispose()
