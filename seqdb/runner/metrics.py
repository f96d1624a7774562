"""Buffered metric rows: the training loop appends to a list; a background thread writes
batches (when `max_rows` are waiting, or every `max_age_s`), so logging costs the loop
almost nothing.

A batch is one upsert on the unique (trial_id, name, step) index, inside a transaction that
first checks this worker still owns the trial's lease. So a batch re-sent after a lost
connection is idempotent, a resumed attempt that redoes steps overwrites the values of the
attempt that died, and a worker that lost its lease writes nothing more.
"""

from __future__ import annotations

import threading
import time
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from seqdb.db.engine import is_sqlite, session_scope
from seqdb.db.models import Metric
from seqdb.runner.queue import Lease, owns_lease
from seqdb.runner.retry import is_transient, log


# Postgres: a whole batch is one statement over six arrays (one round trip, no per-row
# parameters); a conflict on (trial_id, name, step) keeps the newest value.
PG_METRIC_UPSERT = sa.text(
    """
    INSERT INTO metric (trial_id, step, epoch, name, value, time)
    SELECT * FROM unnest(CAST(:trial_id AS bigint[]), CAST(:step AS integer[]), CAST(:epoch AS integer[]),
                         CAST(:name AS varchar[]), CAST(:value AS double precision[]), CAST(:time AS double precision[]))
    ON CONFLICT (trial_id, name, step)
    DO UPDATE SET value = EXCLUDED.value, epoch = EXCLUDED.epoch, time = EXCLUDED.time
    """
)
COLUMNS = ("trial_id", "step", "epoch", "name", "value", "time")


def execute_upsert(session, stmt, rows: list[dict]) -> None:  # noqa: ANN001
    """Run the dialect's upsert for `rows` (arrays on Postgres, executemany on SQLite)."""
    if stmt is PG_METRIC_UPSERT:
        session.execute(stmt, {c: [r[c] for r in rows] for c in COLUMNS})
    else:
        session.execute(stmt, rows)


def metric_upsert(engine: Engine):
    """INSERT … ON CONFLICT (trial_id, name, step) DO UPDATE: the last writer's value wins."""
    if not is_sqlite(engine):
        return PG_METRIC_UPSERT
    table = Metric.__table__
    stmt = sqlite_insert(table)
    return stmt.on_conflict_do_update(
        index_elements=["trial_id", "name", "step"],
        set_={"value": stmt.excluded.value, "epoch": stmt.excluded.epoch, "time": stmt.excluded.time},
    )


class MetricWriter:
    """Metric rows of one lease, buffered and flushed in batches by a background thread."""

    def __init__(self, engine: Engine, lease: Lease, *, max_rows: int = 2000, max_age_s: float = 2.0):
        self.engine, self.lease = engine, lease
        self.max_rows, self.max_age_s = max_rows, max_age_s
        self.stmt = metric_upsert(engine)
        self.rows_written = 0
        self.lost = threading.Event()  # set when a flush found the lease gone
        self._rows: list[dict] = []
        self._lock = threading.Lock()  # guards _rows
        self._flush_lock = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"metrics-{lease.trial_id}", daemon=True)
        self._thread.start()

    def add(self, step: int, epoch: int, metrics: dict[str, float]) -> None:
        now = time.time()
        rows = [
            {"trial_id": self.lease.trial_id, "step": int(step), "epoch": int(epoch), "name": str(k)[:64], "value": float(v), "time": now}
            for k, v in metrics.items()
            if v is not None
        ]
        with self._lock:
            self._rows.extend(rows)
            full = len(self._rows) >= self.max_rows
        if full:
            self._wake.set()

    def flush(self) -> bool:
        """Write everything buffered now. False when the lease is lost (the rows are dropped).
        On a transient database error the rows go back to the buffer for the next flush."""
        with self._flush_lock:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows or self.lost.is_set():
                return not self.lost.is_set()
            try:
                with session_scope(self.engine) as s:
                    if not owns_lease(s, self.lease):
                        self.lost.set()
                        return False
                    execute_upsert(s, self.stmt, _dedupe(rows))
            except DBAPIError as exc:
                if not is_transient(exc):
                    raise
                with self._lock:
                    self._rows[:0] = rows
                log.warning("metric flush of trial %s failed (%s); will retry", self.lease.trial_id, type(exc).__name__)
                return True
            self.rows_written += len(rows)
            return True

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def close(self, *, flush: bool = True, deadline_s: float = 60.0) -> bool:
        """Stop the thread; with `flush`, keep flushing until the buffer is empty (retrying
        through a lost connection for up to `deadline_s`)."""
        self._closed = True
        self._wake.set()
        self._thread.join()
        end = time.monotonic() + deadline_s
        while flush and self.pending() and not self.lost.is_set() and time.monotonic() < end:
            if self.flush() and self.pending():
                time.sleep(0.2)
        return not self.lost.is_set() and self.pending() == 0

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.max_age_s)
            self._wake.clear()
            if self._closed:
                return
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - the main thread's final flush reports it
                log.warning("metric flush of trial %s: %s", self.lease.trial_id, exc)


def _dedupe(rows: list[dict]) -> list[dict]:
    """Within one batch the last value of a (name, step) wins (an upsert batch may not touch
    the same row twice on Postgres)."""
    last: dict[tuple, dict] = {}
    for row in rows:
        last[(row["name"], row["step"])] = row
    return list(last.values()) if len(last) != len(rows) else rows


def write_metrics_once(engine: Engine, rows: list[dict], stmt: Optional[sa.Insert] = None) -> int:
    """Insert a batch without a lease check (benchmarks, imports)."""
    with session_scope(engine) as s:
        execute_upsert(s, stmt if stmt is not None else metric_upsert(engine), rows)
    return len(rows)
