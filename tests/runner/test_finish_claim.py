"""Finishing a trial and claiming the next in one transaction (`queue.finish_and_claim`), on
real SQLite and Postgres: the outcome, the next lease and the worker row move together."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from seqdb.db.engine import session_scope
from seqdb.db.models import Trial, Worker
from seqdb.runner import queue as q
from seqdb.testing.synthetic import create_synthetic_study


def _trial(engine, trial_id) -> Trial:
    with session_scope(engine, write=False) as s:
        return s.get(Trial, trial_id)


def _current(engine, worker_id):
    with session_scope(engine, write=False) as s:
        return s.get(Worker, worker_id).current_trial_id


def test_finish_and_claim_records_everything_and_moves_on(engine):
    sid = create_synthetic_study(engine, 2)
    w = q.register_worker(engine)
    first = q.claim_trial(engine, w.worker_id, [sid])
    outcome = q.TrialOutcome("completed", best_val_loss=0.25, best_step=7, step=9, epochs_done=2,
                             batch_config={"micro": 8, "accum": 2}, values=[0.25, 3.5], error=None, tokens=12_345_678_901,
                             flops=1.5e15)
    recorded, nxt = q.finish_and_claim(engine, first, outcome, [sid], lease_s=30)
    assert recorded and nxt is not None and nxt.trial_id != first.trial_id and nxt.config == {"i": 1}
    row = _trial(engine, first.trial_id)
    assert (row.state, row.best_val_loss, row.best_step, row.step, row.epochs_done) == ("completed", 0.25, 7, 9, 2)
    assert row.batch_config == {"micro": 8, "accum": 2} and row.values == [0.25, 3.5] and row.finished_at is not None
    assert (row.tokens, row.flops) == (12_345_678_901, 1.5e15)
    assert row.lease_expires_at is None and _trial(engine, nxt.trial_id).state == "running"
    assert _current(engine, w.worker_id) == nxt.trial_id
    recorded, none = q.finish_and_claim(engine, nxt, q.TrialOutcome("pruned", step=3), [sid])
    assert recorded and none is None and _current(engine, w.worker_id) is None
    assert _trial(engine, nxt.trial_id).state == "pruned"


def test_null_fields_keep_stored_progress_and_stopped_stays_resumable(engine):
    sid = create_synthetic_study(engine, 1)
    w = q.register_worker(engine)
    lease = q.claim_trial(engine, w.worker_id, [sid])
    assert q.update_progress(engine, lease, step=5, epoch=1, best_val_loss=0.9, best_step=5, batch_config={"micro": 4})
    recorded, nxt = q.finish_and_claim(engine, lease, q.TrialOutcome("stopped"), [sid])
    assert recorded and nxt is None  # its own stopped trial is not re-claimed by the same statement
    row = _trial(engine, lease.trial_id)
    assert (row.state, row.step, row.best_val_loss, row.batch_config, row.finished_at) == ("stopped", 5, 0.9, {"micro": 4}, None)
    again = q.claim_trial(engine, w.worker_id, [sid])
    assert again.trial_id == lease.trial_id and again.attempt == lease.attempt and again.step == 5


def test_a_lost_lease_writes_nothing_but_the_next_claim_still_happens(engine):
    sid = create_synthetic_study(engine, 2)
    old, new = q.register_worker(engine), q.register_worker(engine)
    lease = q.claim_trial(engine, old.worker_id, [sid], lease_s=30)
    with session_scope(engine) as s:  # the reaper gave the trial to another attempt
        s.execute(sa.update(Trial).where(Trial.trial_id == lease.trial_id).values(attempt=1, lease_owner=new.worker_id))
    recorded, nxt = q.finish_and_claim(engine, lease, q.TrialOutcome("completed", best_val_loss=123.0), [sid])
    assert not recorded and nxt is not None and nxt.trial_id != lease.trial_id
    row = _trial(engine, lease.trial_id)
    assert (row.state, row.best_val_loss, row.lease_owner) == ("running", None, new.worker_id)


def test_a_retried_finish_and_claim_is_idempotent_for_the_finish(engine):
    sid = create_synthetic_study(engine, 3)
    w = q.register_worker(engine)
    lease = q.claim_trial(engine, w.worker_id, [sid])
    outcome = q.TrialOutcome("completed", best_val_loss=0.5, step=1)
    first = q.finish_and_claim(engine, lease, outcome, [sid])
    again = q.finish_and_claim(engine, lease, outcome, [sid])  # the answer of the first was "lost"
    assert first[0] and again[0] and first[1].trial_id != again[1].trial_id
    assert q.adopt_orphan(engine, w.worker_id, [sid]).trial_id == first[1].trial_id  # what the worker's retry takes up


def test_workers_draining_with_finish_and_claim_take_each_trial_once(engine):
    n, sid = 80, create_synthetic_study(engine, 80)
    workers = [q.register_worker(engine) for _ in range(4)]
    got: list[list[int]] = [[] for _ in workers]

    def drain(i):
        lease = q.claim_trial(engine, workers[i].worker_id, [sid])
        while lease is not None:
            got[i].append(lease.trial_id)
            recorded, lease = q.finish_and_claim(engine, lease, q.TrialOutcome("completed", step=1), [sid])
            assert recorded

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [t for g in got for t in g]
    assert len(flat) == n and len(set(flat)) == n
    with session_scope(engine, write=False) as s:
        states = dict(s.execute(sa.select(Trial.state, sa.func.count()).where(Trial.study_id == sid).group_by(Trial.state)).all())
        currents = s.execute(sa.select(Worker.current_trial_id).where(Worker.worker_id.in_([w.worker_id for w in workers]))).scalars().all()
    assert states == {"completed": n} and currents == [None] * 4


def test_a_worker_that_stops_releases_the_trial_it_claimed_ahead(engine, db_url, tmp_path):
    from seqdb.runner.reporter import StopFlag
    from seqdb.runner.worker import WorkerLoop, WorkerSettings

    sid = create_synthetic_study(engine, 2)
    loop = WorkerLoop(WorkerSettings(database_url=db_url, study_ids=[sid], artifacts_root=str(tmp_path), progress=False),
                      executor=None, stop=StopFlag(), ask_next=lambda *_: None)
    w = q.register_worker(engine)
    first = q.claim_trial(engine, w.worker_id, [sid])
    _, loop._prefetched = q.finish_and_claim(engine, first, q.TrialOutcome("completed"), [sid])
    ahead = loop._prefetched.trial_id
    loop._release_prefetched()  # what the loop's exit does after a stop came between claim and start
    row = _trial(engine, ahead)
    assert (row.state, row.attempt, row.finished_at) == ("stopped", 0, None) and loop._prefetched is None
    assert q.claim_trial(engine, w.worker_id, [sid]).trial_id == ahead
    loop.engine.dispose()
