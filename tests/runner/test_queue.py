"""The queue's SQL on real SQLite and Postgres: claim, renew, reap, takeover, results,
metric flushes and stop requests (single process, direct API)."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from seqdb.db.engine import session_scope
from seqdb.db.models import Checkpoint, Metric, Trial, Worker
from seqdb.runner import queue as q
from seqdb.runner.metrics import MetricWriter
from seqdb.runner.reporter import register_checkpoint, resume_point
from seqdb.testing.synthetic import create_synthetic_study
from seqdb.train.reporter import CheckpointInfo


def _trial(engine, trial_id) -> Trial:
    with session_scope(engine, write=False) as s:
        return s.get(Trial, trial_id)


def test_claim_leases_oldest_trial_once(engine):
    sid = create_synthetic_study(engine, 3)
    w1, w2 = q.register_worker(engine), q.register_worker(engine)
    a = q.claim_trial(engine, w1.worker_id, [sid], lease_s=30)
    b = q.claim_trial(engine, w2.worker_id, [sid], lease_s=30)
    c = q.claim_trial(engine, w1.worker_id, [sid], lease_s=30)
    assert [a.trial_id, b.trial_id] == sorted({a.trial_id, b.trial_id}) and c.trial_id not in (a.trial_id, b.trial_id)
    assert q.claim_trial(engine, w2.worker_id, [sid]) is None
    row = _trial(engine, a.trial_id)
    assert (row.state, row.lease_owner, row.attempt) == ("running", w1.worker_id, 0)
    assert row.lease_expires_at is not None and row.started_at is not None and a.config == {"i": 0}
    with session_scope(engine, write=False) as s:
        assert s.get(Worker, w2.worker_id).current_trial_id == b.trial_id
    assert q.claim_trial(engine, w1.worker_id, [sid + 999]) is None


def test_concurrent_claims_from_threads_never_share_a_trial(engine):
    sid = create_synthetic_study(engine, 60)
    workers = [q.register_worker(engine) for _ in range(4)]
    got: list[list[int]] = [[] for _ in workers]

    def drain(i):
        while (lease := q.claim_trial(engine, workers[i].worker_id, [sid])) is not None:
            got[i].append(lease.trial_id)
            assert q.finish_trial(engine, lease, q.TrialOutcome("completed", step=1))

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [t for g in got for t in g]
    assert len(flat) == 60 and len(set(flat)) == 60


def test_expired_lease_is_reaped_and_taken_over(engine, tmp_path):
    sid = create_synthetic_study(engine, 1)
    old, new = q.register_worker(engine), q.register_worker(engine)
    lease = q.claim_trial(engine, old.worker_id, [sid], lease_s=0.3)
    assert q.renew_lease(engine, lease, lease_s=0.3)
    ckpt = tmp_path / "c.bin"
    ckpt.write_bytes(b"state at step 7")
    from seqdb.hashing import file_sha256

    info = CheckpointInfo(path=ckpt, bytes=ckpt.stat().st_size, sha256=file_sha256(ckpt), step=7, epoch=1, val_loss=0.5, is_best=True)
    assert register_checkpoint(engine, lease, info)
    writer = MetricWriter(engine, lease, max_age_s=60)
    writer.add(7, 1, {"train_loss": 0.9})
    assert writer.flush()
    time.sleep(0.5)
    assert q.reap_expired(engine) == [(lease.trial_id, "pending")]
    assert q.reap_expired(engine) == []  # reaped once
    row = _trial(engine, lease.trial_id)
    assert (row.state, row.attempt, row.step, row.best_val_loss) == ("pending", 1, 7, 0.5)

    taken = q.claim_trial(engine, new.worker_id, [sid], lease_s=30)
    assert (taken.trial_id, taken.attempt, taken.step) == (lease.trial_id, 1, 7)
    assert resume_point(engine, taken.trial_id).step == 7
    # the old owner is fenced off: no renew, no metrics, no checkpoint, no result
    assert not q.renew_lease(engine, lease)
    writer.add(8, 1, {"train_loss": 123.0})
    assert not writer.flush() and writer.lost.is_set()
    writer.close()
    assert not register_checkpoint(engine, lease, info)
    assert not q.finish_trial(engine, lease, q.TrialOutcome("completed", best_val_loss=123.0))
    assert q.finish_trial(engine, taken, q.TrialOutcome("completed", best_val_loss=0.4, step=10))
    row = _trial(engine, lease.trial_id)
    assert (row.state, row.best_val_loss, row.lease_owner) == ("completed", 0.4, new.worker_id)
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Metric).where(Metric.value == 123.0)).scalar_one() == 0


def test_reap_fails_after_max_attempts_with_reason(engine):
    sid = create_synthetic_study(engine, 1, max_attempts=2)
    w = q.register_worker(engine)
    for attempt in range(2):
        lease = q.claim_trial(engine, w.worker_id, [sid], lease_s=0.05)
        assert lease.attempt == attempt
        time.sleep(0.1)
        q.reap_expired(engine)
    row = _trial(engine, lease.trial_id)
    assert (row.state, row.attempt) == ("failed", 2)
    assert "lease expired 2 times" in row.error and "max_attempts 2" in row.error and row.finished_at is not None
    assert q.claim_trial(engine, w.worker_id, [sid]) is None


def test_stopped_trial_is_resumable_with_same_attempt(engine):
    sid = create_synthetic_study(engine, 1)
    w = q.register_worker(engine)
    lease = q.claim_trial(engine, w.worker_id, [sid])
    assert q.finish_trial(engine, lease, q.TrialOutcome("stopped", step=4))
    assert _trial(engine, lease.trial_id).state == "stopped"
    again = q.claim_trial(engine, w.worker_id, [sid])
    assert (again.trial_id, again.attempt, again.step) == (lease.trial_id, 0, 4)
    assert q.finish_trial(engine, again, q.TrialOutcome("completed"))
    assert q.finish_trial(engine, again, q.TrialOutcome("completed"))  # a retried finish is idempotent


def test_metric_reflush_is_idempotent_and_last_value_wins(engine):
    sid = create_synthetic_study(engine, 1)
    w = q.register_worker(engine)
    lease = q.claim_trial(engine, w.worker_id, [sid])
    writer = MetricWriter(engine, lease, max_rows=10_000, max_age_s=60)
    for step in range(1, 501):
        writer.add(step, 0, {"train_loss": 1.0 / step, "lr": 0.1})
    assert writer.flush() and writer.rows_written == 1000
    for step in range(1, 501):  # the same batch again (a re-flush after a lost answer)
        writer.add(step, 0, {"train_loss": 2.0, "lr": 0.1})
    assert writer.close()
    with session_scope(engine, write=False) as s:
        n = s.execute(sa.select(sa.func.count()).select_from(Metric).where(Metric.trial_id == lease.trial_id)).scalar_one()
        vals = set(s.execute(sa.select(Metric.value).where(Metric.name == "train_loss")).scalars())
    assert n == 1000 and vals == {2.0}


def test_metric_writer_flushes_by_count_and_by_time(engine):
    sid = create_synthetic_study(engine, 1)
    lease = q.claim_trial(engine, q.register_worker(engine).worker_id, [sid])
    writer = MetricWriter(engine, lease, max_rows=50, max_age_s=0.3)
    for step in range(1, 26):
        writer.add(step, 0, {"a": 1.0, "b": 2.0})  # 50 rows: a count flush
    deadline = time.monotonic() + 5
    while writer.rows_written < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer.rows_written == 50
    writer.add(26, 0, {"a": 1.0})  # one row: flushed by age
    time.sleep(0.8)
    assert writer.rows_written == 51 and writer.pending() == 0
    writer.close()


def test_stop_requests_address_one_or_all_workers(engine):
    a, b = q.register_worker(engine), q.register_worker(engine)
    assert q.pending_stop(engine, a) is None
    q.request_stop(engine, b.worker_id, reason="drain host 2")
    assert q.pending_stop(engine, a) is None and q.pending_stop(engine, b) == "drain host 2"
    q.request_stop(engine, None, reason="all")
    assert q.pending_stop(engine, a) == "all"
    later = q.register_worker(engine)
    assert q.pending_stop(engine, later) is None  # an old request does not stop a new worker
    import pytest

    from seqdb.errors import NotFoundError

    with pytest.raises(NotFoundError, match="worker 9999"):
        q.request_stop(engine, 9999)


def test_checkpoint_registration_is_idempotent_and_resume_skips_corrupt_files(engine, tmp_path):
    from seqdb.hashing import file_sha256

    sid = create_synthetic_study(engine, 1)
    lease = q.claim_trial(engine, q.register_worker(engine).worker_id, [sid])
    infos = []
    for step in (5, 10):
        p = tmp_path / f"{step}.bin"
        p.write_bytes(f"step {step}".encode())
        infos.append(CheckpointInfo(path=p, bytes=p.stat().st_size, sha256=file_sha256(p), step=step, epoch=0, val_loss=None, is_best=False))
        assert register_checkpoint(engine, lease, infos[-1])
        assert register_checkpoint(engine, lease, infos[-1])
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Checkpoint)).scalar_one() == 2
    assert resume_point(engine, lease.trial_id).step == 10
    infos[1].path.write_bytes(b"torn")
    assert resume_point(engine, lease.trial_id).step == 5
