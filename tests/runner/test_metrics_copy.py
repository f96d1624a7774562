"""Metric batches through COPY + staging table (Postgres) and executemany (SQLite): awkward
names and non-finite values survive, nothing staged leaks into another trial or batch."""

from __future__ import annotations

import math

import sqlalchemy as sa

from seqdb.db.engine import session_scope
from seqdb.db.models import Metric, Trial
from seqdb.runner import queue as q
from seqdb.runner.metrics import MetricWriter, write_metrics_once
from seqdb.testing.synthetic import create_synthetic_study


def _metrics(engine, trial_id) -> dict:
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Metric.name, Metric.step, Metric.epoch, Metric.value).where(Metric.trial_id == trial_id)).all()
    return {(r.name, r.step): (r.epoch, r.value) for r in rows}


def test_awkward_names_and_non_finite_values_round_trip(engine):
    sid = create_synthetic_study(engine, 1)
    lease = q.claim_trial(engine, q.register_worker(engine).worker_id, [sid])
    writer = MetricWriter(engine, lease, max_age_s=60)
    names = {"tab\tname": 1.5, "back\\slash": -2.0, "new\nline": float("inf"), "quote'\"": float("-inf"), "nan": float("nan"),
             "ünï": 1e-300}
    writer.add(3, 1, names)
    assert writer.close()
    got = _metrics(engine, lease.trial_id)
    kept = {n: v for n, v in names.items() if not math.isnan(v)}  # SQLite has no NaN: neither backend stores one
    assert got == {(n, 3): (1, v) for n, v in kept.items()}


def test_batches_of_two_trials_on_one_connection_stay_apart(engine):
    sid = create_synthetic_study(engine, 2)
    w = q.register_worker(engine)
    a, b = q.claim_trial(engine, w.worker_id, [sid]), q.claim_trial(engine, w.worker_id, [sid])
    for lease, value in ((a, 1.0), (b, 2.0), (a, 3.0)):  # the same pooled connection, one batch after another
        writer = MetricWriter(engine, lease, max_age_s=60)
        writer.add(1, 0, {"loss": value})
        writer.add(2, 0, {"loss": value})
        assert writer.close()
    assert _metrics(engine, a.trial_id) == {("loss", 1): (0, 3.0), ("loss", 2): (0, 3.0)}
    assert _metrics(engine, b.trial_id) == {("loss", 1): (0, 2.0), ("loss", 2): (0, 2.0)}
    assert write_metrics_once(engine, b.trial_id, [(5, 1, "loss", 0.5, 0.0), (5, 1, "loss", 0.25, 0.0)]) == 2
    assert _metrics(engine, b.trial_id)[("loss", 5)] == (1, 0.25)  # last value of a batch wins


def test_a_writer_that_lost_its_lease_writes_nothing(engine):
    sid = create_synthetic_study(engine, 1)
    lease = q.claim_trial(engine, q.register_worker(engine).worker_id, [sid])
    with session_scope(engine) as s:
        s.execute(sa.update(Trial).where(Trial.trial_id == lease.trial_id).values(attempt=lease.attempt + 1))
    writer = MetricWriter(engine, lease, max_age_s=60)
    writer.add(1, 0, {"loss": 1.0})
    assert not writer.close() and writer.lost.is_set()
    assert _metrics(engine, lease.trial_id) == {}


def test_a_resumed_attempt_redoing_steps_overwrites_them(engine):
    """Steps at or below the stored ones go through the upsert; later ones straight in."""
    sid = create_synthetic_study(engine, 1)
    lease = q.claim_trial(engine, q.register_worker(engine).worker_id, [sid])
    first = MetricWriter(engine, lease, max_age_s=60)
    for step in range(1, 11):
        first.add(step, 0, {"loss": 1.0, "lr": 0.1})
    assert first.close()
    second = MetricWriter(engine, lease, max_age_s=60)  # the next attempt resumed from step 6
    for step in range(6, 9):
        second.add(step, 1, {"loss": 2.0})
    assert second.flush()
    for step in range(9, 16):
        second.add(step, 1, {"loss": 3.0})
    assert second.close()
    got = _metrics(engine, lease.trial_id)
    assert [got[("loss", s)] for s in (5, 6, 8, 9, 15)] == [(0, 1.0), (1, 2.0), (1, 2.0), (1, 3.0), (1, 3.0)]
    assert len(got) == 15 + 10


def test_a_batch_wrongly_taken_for_new_is_redone_as_an_upsert(engine):
    sid = create_synthetic_study(engine, 1)
    lease = q.claim_trial(engine, q.register_worker(engine).worker_id, [sid])
    writer = MetricWriter(engine, lease, max_age_s=60)
    writer.add(1, 0, {"loss": 1.0})
    assert writer.flush()
    writer._high = {}  # fault: the writer forgets what is stored, so the COPY meets the existing row
    writer.add(1, 0, {"loss": 4.0})
    writer.add(2, 0, {"loss": 5.0})
    assert writer.close() and writer.rows_written == 3
    assert _metrics(engine, lease.trial_id) == {("loss", 1): (0, 4.0), ("loss", 2): (0, 5.0)}
