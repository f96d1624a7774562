"""Buffered metric rows: the training loop appends tuples to a list; one background thread per
process writes each open writer's batch (when `max_rows` are waiting, or once its oldest row
is `max_age_s` old), so logging costs the loop almost nothing and a new trial starts no thread.

A batch is one transaction that first checks this worker still owns the trial's lease, then
upserts on the unique (trial_id, name, step) index: a batch re-sent after a lost connection
is idempotent, a resumed attempt that redoes steps overwrites the values of the attempt that
died, and a worker that lost its lease writes nothing more.

    Postgres: a batch of new steps (the common case: every step above the highest one the
              trial already has, per name) is COPYed straight into `metric` (text format,
              built in one string); any other batch (a resumed attempt redoing steps, a
              re-flush after a lost answer) is COPYed into a temporary staging table and
              moved with one INSERT … SELECT … ON CONFLICT. A COPY that meets an existing row
              after all is rolled back and redone the second way.
    SQLite:   one executemany of plain tuples (an upsert) through the driver.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from seqdb.db.engine import is_sqlite
from seqdb.runner.queue import Lease, owns_lease
from seqdb.runner.retry import is_transient, log

Row = tuple  # (step, epoch, name, value, time): the trial is the writer's

# Postgres: a per-connection staging table, emptied at every commit. COPY fills it (no
# per-row parameters, no array encoding), the upsert moves it into `metric`. Only batches that
# may meet stored rows take this way; new steps are COPYed straight into `metric`.
PG_STAGE = """
    CREATE TEMPORARY TABLE IF NOT EXISTS seqdb_metric_stage (
        step integer, epoch integer, name varchar(64), value double precision, time double precision
    ) ON COMMIT DELETE ROWS
"""
PG_COPY = "COPY seqdb_metric_stage (step, epoch, name, value, time) FROM STDIN"
PG_COPY_DIRECT = "COPY metric (trial_id, step, epoch, name, value, time) FROM STDIN"
# The highest stored step per metric name of one trial (read once per writer).
HIGH_STEPS = sa.text("SELECT name, max(step) AS step FROM metric WHERE trial_id = :trial_id GROUP BY name")
# A conflict on (trial_id, name, step) keeps the newest value.
PG_MERGE = sa.text(
    """
    INSERT INTO metric (trial_id, step, epoch, name, value, time)
    SELECT :trial_id, step, epoch, name, value, time FROM seqdb_metric_stage
    ON CONFLICT (trial_id, name, step)
    DO UPDATE SET value = EXCLUDED.value, epoch = EXCLUDED.epoch, time = EXCLUDED.time
    """
)
# SQLite: the same upsert, row by row inside one executemany.
SQLITE_UPSERT = """
    INSERT INTO metric (trial_id, step, epoch, name, value, time) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (trial_id, name, step) DO UPDATE SET value = excluded.value, epoch = excluded.epoch, time = excluded.time
"""


def _copy_text(value: object) -> str:
    """One field of COPY's text format (tab-separated; backslash escapes)."""
    text = str(value)
    if any(c in text for c in "\\\t\n\r"):
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_float(value: float) -> str:
    if math.isfinite(value):
        return repr(value)
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")  # write_metrics_once may pass NaN


def _copy_lines(rows: list[Row], prefix: str = "") -> str:
    names: dict[str, str] = {}
    return "".join([f"{prefix}{s}\t{e}\t{names.get(n) or names.setdefault(n, _copy_text(n))}\t{_copy_float(v)}\t{t!r}\n"
                    for s, e, n, v, t in rows])


def _copy(conn: Connection, statement: str, text: str) -> None:
    """COPY … FROM STDIN through the driver; its errors become SQLAlchemy's (IntegrityError,
    OperationalError, …) so that callers and the retry logic see one kind."""
    import psycopg

    try:
        with conn.connection.driver_connection.cursor().copy(statement) as copy:
            copy.write(text)
    except psycopg.Error as exc:
        raise DBAPIError.instance(statement, None, exc, psycopg.Error, dialect=conn.dialect) from exc


def _pg_write(conn: Connection, trial_id: int, rows: list[Row], *, new: bool) -> None:
    """`new`: COPY straight into `metric`; else COPY into the staging table and upsert from it
    (caller's transaction)."""
    if new:
        _copy(conn, PG_COPY_DIRECT, _copy_lines(rows, f"{int(trial_id)}\t"))
        return
    conn.exec_driver_sql(PG_STAGE)  # every time: a rolled-back transaction takes a new temp table with it
    _copy(conn, PG_COPY, _copy_lines(rows))
    conn.execute(PG_MERGE, {"trial_id": trial_id})


def _sqlite_write(conn: Connection, trial_id: int, rows: list[Row]) -> None:
    conn.exec_driver_sql(SQLITE_UPSERT, [(trial_id, *row) for row in rows])


def write_rows(conn: Connection, trial_id: int, rows: list[Row], *, new: bool = False) -> None:
    """Upsert `rows` of one trial inside the caller's write transaction (no lease check).
    `new` promises that no row exists yet (Postgres then COPYs them straight in)."""
    if conn.dialect.name == "sqlite":
        _sqlite_write(conn, trial_id, _dedupe(rows))
    else:
        _pg_write(conn, trial_id, _dedupe(rows), new=new)


def _above(high: dict[str, int], rows: list[Row]) -> bool:
    """Every row's step is above the highest stored step of its name."""
    return all(step > high.get(name, -1) for step, _, name, _, _ in rows)


def _begin(engine: Engine):  # noqa: ANN202
    return engine.execution_options(sqlite_begin="IMMEDIATE").begin() if is_sqlite(engine) else engine.begin()


class _Flusher:
    """The process's one flushing thread: every open writer whose batch is due gets flushed."""

    def __init__(self) -> None:
        self._writers: set = set()
        self._lock = threading.Lock()
        self.wake = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def add(self, writer: "MetricWriter") -> None:
        with self._lock:
            self._writers.add(writer)
            if self._thread is None or not self._thread.is_alive():  # first use, or a forked child
                self._thread = threading.Thread(target=self._loop, name="seqdb-metrics", daemon=True)
                self._thread.start()

    def remove(self, writer: "MetricWriter") -> None:
        with self._lock:
            self._writers.discard(writer)

    def _loop(self) -> None:
        while True:
            with self._lock:
                writers = list(self._writers)
            # no wake-up per new writer (a GIL hand-off would cost the new trial up to 5 ms):
            # a new writer's age is looked at within 0.5 s
            self.wake.wait(min([w.max_age_s / 2 for w in writers] + [0.5]))
            self.wake.clear()
            for writer in writers:
                if writer.due():
                    try:
                        writer.flush()
                    except Exception as exc:  # noqa: BLE001 - the writer's final flush in close() reports it
                        log.warning("metric flush of trial %s: %s", writer.lease.trial_id, exc)


_FLUSHER = _Flusher()


class MetricWriter:
    """Metric rows of one lease, buffered and flushed in batches by the process's flusher."""

    def __init__(self, engine: Engine, lease: Lease, *, max_rows: int = 2000, max_age_s: float = 2.0):
        self.engine, self.lease = engine, lease
        self.max_rows, self.max_age_s = max_rows, max_age_s
        self.rows_written = 0
        self.lost = threading.Event()  # set when a flush found the lease gone
        self._rows: list[Row] = []
        self._oldest = 0.0  # monotonic time of the oldest buffered row
        self._lock = threading.Lock()  # guards _rows, _oldest
        self._flush_lock = threading.Lock()  # one flush at a time
        self._high: Optional[dict[str, int]] = None  # per name, the highest step stored (Postgres; read at the first flush)
        _FLUSHER.add(self)

    def add(self, step: int, epoch: int, metrics: dict[str, float]) -> None:
        """Buffer one step's metrics. None and NaN are skipped: SQLite has no NaN (it would be
        NULL), so neither backend stores one; ±inf is kept."""
        now, step, epoch = time.time(), int(step), int(epoch)
        rows = [(step, epoch, str(k)[:64], float(v), now) for k, v in metrics.items() if v is not None and v == v]
        with self._lock:
            if not self._rows:
                self._oldest = time.monotonic()
            self._rows.extend(rows)
            full = len(self._rows) >= self.max_rows
        if full:
            _FLUSHER.wake.set()

    def due(self) -> bool:
        """A batch is due: `max_rows` waiting, or the oldest row `max_age_s` old."""
        with self._lock:
            n, oldest = len(self._rows), self._oldest
        return n >= self.max_rows or (n > 0 and time.monotonic() - oldest >= self.max_age_s)

    def flush(self) -> bool:
        """Write everything buffered now. False when the lease is lost (the rows are dropped).
        On a transient database error the rows go back to the buffer for the next flush."""
        with self._flush_lock:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows or self.lost.is_set():
                return not self.lost.is_set()
            try:
                try:
                    written = self._write(rows, trust_high=True)
                except IntegrityError:  # a row thought new was there after all: upsert the batch
                    written = self._write(rows, trust_high=False)
            except DBAPIError as exc:
                if not is_transient(exc):
                    raise
                with self._lock:
                    self._rows[:0] = rows
                self._high = None  # the failed commit may have landed: read the stored steps again
                log.warning("metric flush of trial %s failed (%s); will retry", self.lease.trial_id, type(exc).__name__)
                return True
            if written:
                self.rows_written += len(rows)
            return written

    def _write(self, rows: list[Row], *, trust_high: bool) -> bool:
        """One lease-guarded transaction; False (nothing written) when the lease is lost."""
        with _begin(self.engine) as conn:
            if not owns_lease(conn, self.lease):
                self.lost.set()
                return False
            sqlite = conn.dialect.name == "sqlite"
            if not sqlite and self._high is None:
                self._high = {r.name: r.step for r in conn.execute(HIGH_STEPS, {"trial_id": self.lease.trial_id})}
            new = trust_high and not sqlite and _above(self._high, rows)
            write_rows(conn, self.lease.trial_id, rows, new=new)
        if self._high is not None:
            for step, _, name, _, _ in rows:
                if step > self._high.get(name, -1):
                    self._high[name] = step
        return True

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def close(self, *, flush: bool = True, deadline_s: float = 60.0) -> bool:
        """Leave the flusher; with `flush`, keep flushing until the buffer is empty (retrying
        through a lost connection for up to `deadline_s`)."""
        _FLUSHER.remove(self)
        end = time.monotonic() + deadline_s
        while flush and self.pending() and not self.lost.is_set() and time.monotonic() < end:
            if self.flush() and self.pending():
                time.sleep(0.2)
        return not self.lost.is_set() and self.pending() == 0


def _dedupe(rows: list[Row]) -> list[Row]:
    """Within one batch the last value of a (name, step) wins (an upsert batch may not touch
    the same row twice on Postgres)."""
    last: dict[tuple, Row] = {}
    for row in rows:
        last[(row[2], row[0])] = row
    return list(last.values()) if len(last) != len(rows) else rows


def write_metrics_once(engine: Engine, trial_id: int, rows: list[Row]) -> int:
    """Upsert a batch of (step, epoch, name, value, time) rows without a lease check
    (benchmarks, imports)."""
    with _begin(engine) as conn:
        write_rows(conn, trial_id, rows)
    return len(rows)
