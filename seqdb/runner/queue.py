"""The trial queue: claim, lease renewal, reaping, results, workers and stop requests.

Every worker, on any host, talks to the queue only through the database:

- **claim**: one pending (or stopped, resumable) trial becomes `running`, leased to one
  worker until `lease_expires_at`. Postgres: `UPDATE … WHERE trial_id = (SELECT … FOR UPDATE
  SKIP LOCKED LIMIT 1) RETURNING …` (claimers never wait on each other's rows). SQLite: the
  same UPDATE inside `BEGIN IMMEDIATE` (one writer at a time) with the state test as a
  compare-and-set.
- **renew**: the heartbeat pushes the lease forward, but only while this worker still owns
  this attempt (`lease_owner` + `attempt`); zero rows updated means the lease is lost.
- **reap**: a running trial whose lease expired goes back to `pending` with `attempt + 1`
  (the next worker resumes it from its last checkpoint), or to `failed` after `max_attempts`.
- **finish**: the result is written only if this worker still owns the attempt, so a worker
  that lost its lease never overwrites the new owner's results.

Lease clocks: on Postgres every lease time comes from the server's clock (`now()`), so hosts
with skewed clocks still agree; on SQLite (one host) from this process's UTC clock.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterator, Optional, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from seqdb.db.engine import is_sqlite, session_scope
from seqdb.db.models import (
    StopRequest,
    Trial,
    TrialState,
    UTCDateTime,
    Worker,
    utcnow,
)
from seqdb.errors import NotFoundError

log = logging.getLogger("seqdb.runner")
RUNNABLE = (TrialState.pending.value, TrialState.stopped.value)
DEFAULT_LEASE_S = 60.0


@dataclass(frozen=True)
class Lease:
    """A claimed trial: this worker owns `attempt` of `trial_id` until the lease expires."""

    trial_id: int
    study_id: int
    worker_id: int
    attempt: int
    step: int  # optimizer steps already done (from the last checkpoint of earlier attempts)
    config: dict


@dataclass(frozen=True)
class TrialOutcome:
    """What a worker records when it is done with a trial (see `finish_trial`)."""

    state: str  # completed | pruned | failed | stopped
    best_val_loss: Optional[float] = None
    best_step: Optional[int] = None
    step: Optional[int] = None
    epochs_done: Optional[int] = None
    batch_config: Optional[dict] = None
    values: Optional[list] = None
    error: Optional[str] = None
    tokens: Optional[int] = None  # training tokens at finish (trial.tokens)
    flops: Optional[float] = None  # training FLOPs at finish (trial.flops)


def _ts_params(engine: Engine, lease_s: float) -> dict[str, Any]:
    """`now` / `expires` binds for SQLite statements (Postgres uses the server clock)."""
    if not is_sqlite(engine):
        return {"lease_s": float(lease_s)}
    now = utcnow()
    return {"now": now, "expires": now + timedelta(seconds=lease_s)}


def _sqlite_times(stmt: sa.TextClause, *names: str) -> sa.TextClause:
    return stmt.bindparams(*(sa.bindparam(n, type_=UTCDateTime) for n in names))


def _config(value: Any) -> dict:
    return json.loads(value) if isinstance(value, str) else (value or {})


# --------------------------------------------------------------------------------------
# claim
# --------------------------------------------------------------------------------------
# Postgres: the inner SELECT locks the oldest runnable row that no other transaction holds
# (SKIP LOCKED: concurrent claimers each get a different row, none waits); the outer UPDATE
# leases it. The state test is re-checked on the locked row version (READ COMMITTED), so a
# row finished or claimed in between is never taken.
PG_CLAIM_TRIAL = """
    UPDATE trial
       SET state = 'running',
           lease_owner = :worker_id,
           lease_expires_at = now() + make_interval(secs => :lease_s),
           heartbeat_at = now(),
           started_at = COALESCE(started_at, now())
     WHERE trial_id = (
             SELECT trial_id FROM trial
              WHERE state IN ('pending', 'stopped') AND study_id = ANY(:study_ids)
              ORDER BY trial_id
              FOR UPDATE SKIP LOCKED
              LIMIT 1)
       AND state IN ('pending', 'stopped')
    RETURNING trial_id, study_id, attempt, step, config
"""
# ...and the worker row points at what it claimed, in the same statement: one round trip.
PG_CLAIM = sa.text(
    f"""
    WITH claimed AS ({PG_CLAIM_TRIAL}),
         moved AS (UPDATE worker SET current_trial_id = claimed.trial_id FROM claimed WHERE worker.worker_id = :worker_id)
    SELECT * FROM claimed
    """
)

# SQLite: runs inside BEGIN IMMEDIATE, so no other writer exists until commit; the outer
# `state IN (…)` is the compare-and-set that makes the claim safe even without that lock.
SQLITE_CLAIM = _sqlite_times(
    sa.text(
        """
        UPDATE trial
           SET state = 'running',
               lease_owner = :worker_id,
               lease_expires_at = :expires,
               heartbeat_at = :now,
               started_at = COALESCE(started_at, :now)
         WHERE trial_id = (
                 SELECT trial_id FROM trial
                  WHERE state IN ('pending', 'stopped') AND study_id IN :study_ids
                  ORDER BY trial_id
                  LIMIT 1)
           AND state IN ('pending', 'stopped')
        RETURNING trial_id, study_id, attempt, step, config
        """
    ).bindparams(sa.bindparam("study_ids", expanding=True)),
    "now",
    "expires",
)
SQLITE_WORKER_CURRENT = sa.text("UPDATE worker SET current_trial_id = :trial_id WHERE worker_id = :worker_id")


def _begin(engine: Engine):  # noqa: ANN202
    """A Core write transaction for the hot path (no ORM session): BEGIN IMMEDIATE on SQLite."""
    if is_sqlite(engine):
        return engine.execution_options(sqlite_begin="IMMEDIATE").begin()
    return engine.begin()


# Postgres hot path: claim and finish are each ONE statement, so they run in autocommit on a
# connection this thread keeps (no pool checkout, no ping, no BEGIN / COMMIT): one round trip.
# Any error drops the connection; the caller's retry then gets a fresh one from the pool.
# Its commits do not wait for the WAL flush (`synchronous_commit = off`, like SQLite's WAL with
# synchronous=NORMAL): a server crash can lose the last few claims or finishes (never half of
# one), and the lease fencing makes that safe: a lost claim is a pending trial again (the
# worker's later writes fail the compare-and-set), a lost finish a running trial whose lease
# expires and is reaped. Nothing is recorded twice. Metrics and checkpoints stay synchronous.
_held = threading.local()


def _hot_connection(engine: Engine) -> Connection:
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    conn.exec_driver_sql("SET synchronous_commit = off")
    return conn


@contextmanager
def _one_statement(engine: Engine) -> Iterator[Connection]:
    held = getattr(_held, "conns", None)
    if held is None:
        held = _held.conns = {}
    engine_conn = held.get(id(engine))
    if engine_conn is None or engine_conn[0] is not engine or engine_conn[1].invalidated or engine_conn[1].closed:
        engine_conn = held[id(engine)] = (engine, _hot_connection(engine))
    try:
        yield engine_conn[1]
    except BaseException:
        release_connection(engine)
        raise


def release_connection(engine: Engine) -> None:
    """Close the connection this thread holds for the queue's hot path (worker exit)."""
    engine_conn = getattr(_held, "conns", {}).pop(id(engine), None)
    if engine_conn is not None:
        try:
            engine_conn[1].close()
        except Exception as exc:  # noqa: BLE001 - a dead connection needs no closing
            log.debug("closing the queue connection: %s", exc)


def _claim_in(conn, worker_id: int, study_ids: Sequence[int], lease_s: float) -> Optional[Lease]:  # noqa: ANN001
    """The claim, inside the caller's write transaction."""
    params = {"worker_id": worker_id, "study_ids": list(study_ids), **_ts_params(conn.engine, lease_s)}
    if not is_sqlite(conn.engine):
        row = conn.execute(PG_CLAIM, params).first()
    else:
        row = conn.execute(SQLITE_CLAIM, params).first()
        if row is not None:
            conn.execute(SQLITE_WORKER_CURRENT, {"trial_id": row.trial_id, "worker_id": worker_id})
    return None if row is None else Lease(row.trial_id, row.study_id, worker_id, row.attempt, row.step or 0, _config(row.config))


def claim_trial(engine: Engine, worker_id: int, study_ids: Sequence[int], lease_s: float = DEFAULT_LEASE_S) -> Optional[Lease]:
    """Atomically lease the oldest runnable trial of `study_ids` to `worker_id` (or None)."""
    if not study_ids:
        return None
    with _one_statement(engine) if not is_sqlite(engine) else _begin(engine) as conn:
        return _claim_in(conn, worker_id, study_ids, lease_s)


def adopt_orphan(engine: Engine, worker_id: int, study_ids: Sequence[int]) -> Optional[Lease]:
    """A trial leased to this worker that it is not running: a claim whose commit reached the
    server but whose answer was lost with the connection. The worker takes it up again."""
    with session_scope(engine, write=False) as s:
        row = s.execute(
            sa.select(Trial.trial_id, Trial.study_id, Trial.attempt, Trial.step, Trial.config)
            .where(Trial.lease_owner == worker_id, Trial.state == TrialState.running.value, Trial.study_id.in_(list(study_ids)))
            .order_by(Trial.trial_id)
            .limit(1)
        ).first()
    return None if row is None else Lease(row.trial_id, row.study_id, worker_id, row.attempt, row.step or 0, _config(row.config))


# --------------------------------------------------------------------------------------
# renew (heartbeat)
# --------------------------------------------------------------------------------------
# Push the lease forward only while this worker still owns this attempt of a running trial.
# Zero rows: the lease was reaped (and maybe re-claimed): the worker must stop the trial.
PG_RENEW = sa.text(
    """
    UPDATE trial
       SET lease_expires_at = now() + make_interval(secs => :lease_s), heartbeat_at = now()
     WHERE trial_id = :trial_id AND lease_owner = :worker_id AND attempt = :attempt
       AND state = 'running'
    """
)
SQLITE_RENEW = _sqlite_times(
    sa.text(
        """
        UPDATE trial
           SET lease_expires_at = :expires, heartbeat_at = :now
         WHERE trial_id = :trial_id AND lease_owner = :worker_id AND attempt = :attempt
           AND state = 'running'
        """
    ),
    "now",
    "expires",
)


def renew_lease(engine: Engine, lease: Lease, lease_s: float = DEFAULT_LEASE_S) -> bool:
    """Extend `lease`; False when this worker no longer owns it."""
    stmt = SQLITE_RENEW if is_sqlite(engine) else PG_RENEW
    params = {"trial_id": lease.trial_id, "worker_id": lease.worker_id, "attempt": lease.attempt, **_ts_params(engine, lease_s)}
    with session_scope(engine) as s:
        return s.execute(stmt, params).rowcount == 1


def owns_lease(session, lease: Lease, *, lock: bool = True) -> bool:
    """Inside a write transaction (an ORM session or a Core connection): does this worker
    still own the lease? On Postgres the row is share-locked until commit, so a concurrent
    reap waits for this transaction."""
    stmt = sa.select(Trial.trial_id).where(
        Trial.trial_id == lease.trial_id,
        Trial.lease_owner == lease.worker_id,
        Trial.attempt == lease.attempt,
        Trial.state == TrialState.running.value,
    )
    bind = session.get_bind() if hasattr(session, "get_bind") else session
    if lock and bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=True)
    return session.execute(stmt).first() is not None


# --------------------------------------------------------------------------------------
# reap
# --------------------------------------------------------------------------------------
# A running trial whose lease expired lost its worker. Back to `pending` with attempt + 1
# (resumed from its last checkpoint by the next claimer), or `failed` once max_attempts is
# used up. Two reapers racing on Postgres: the second waits on the row lock, then re-checks
# `state = 'running'` on the new row version and skips it, so attempt is bumped once.
PG_REAP = sa.text(
    """
    UPDATE trial
       SET attempt = attempt + 1,
           state = CASE WHEN attempt + 1 >= max_attempts THEN 'failed' ELSE 'pending' END,
           error = CASE WHEN attempt + 1 >= max_attempts
                        THEN 'lease expired ' || (attempt + 1) || ' times (max_attempts '
                             || max_attempts || '); last worker ' || COALESCE(lease_owner::text, '?')
                        ELSE error END,
           finished_at = CASE WHEN attempt + 1 >= max_attempts THEN now() ELSE NULL END,
           lease_expires_at = NULL
     WHERE state = 'running' AND lease_expires_at < now()
    RETURNING trial_id, state
    """
)
SQLITE_REAP = _sqlite_times(
    sa.text(
        """
        UPDATE trial
           SET attempt = attempt + 1,
               state = CASE WHEN attempt + 1 >= max_attempts THEN 'failed' ELSE 'pending' END,
               error = CASE WHEN attempt + 1 >= max_attempts
                            THEN 'lease expired ' || (attempt + 1) || ' times (max_attempts '
                                 || max_attempts || '); last worker ' || COALESCE(lease_owner, '?')
                            ELSE error END,
               finished_at = CASE WHEN attempt + 1 >= max_attempts THEN :now ELSE NULL END,
               lease_expires_at = NULL
         WHERE state = 'running' AND lease_expires_at < :now
        RETURNING trial_id, state
        """
    ),
    "now",
)


# A worker that announced a clean stop (signal, preemption, stop request: worker.state
# 'stopping' or 'stopped') but died before it released its trial: the expiry is not the
# trial's fault, so the trial goes back to `stopped` (resumable) with the SAME attempt. Runs
# just before the reap above, in its transaction. Fencing still holds: the old owner's
# writes need state = 'running', and the next claim sets a new lease_owner.
CLEAN_STOP_RELEASE = """
    UPDATE trial
       SET state = 'stopped', lease_expires_at = NULL
     WHERE state = 'running' AND lease_expires_at < {now}
       AND lease_owner IN (SELECT worker_id FROM worker WHERE state IN ('stopping', 'stopped'))
    RETURNING trial_id, state
"""
PG_CLEAN_STOP_RELEASE = sa.text(CLEAN_STOP_RELEASE.format(now="now()"))
SQLITE_CLEAN_STOP_RELEASE = _sqlite_times(sa.text(CLEAN_STOP_RELEASE.format(now=":now")), "now")


def reap_expired(engine: Engine) -> list[tuple[int, str]]:
    """Requeue (or fail) every trial whose lease expired; returns (trial_id, new state). An
    expiry after the owner's clean stop uses no attempt (CLEAN_STOP_RELEASE)."""
    sqlite = is_sqlite(engine)
    params = {"now": utcnow()} if sqlite else {}
    with session_scope(engine) as s:
        released = [(r.trial_id, r.state) for r in s.execute(SQLITE_CLEAN_STOP_RELEASE if sqlite else PG_CLEAN_STOP_RELEASE, params)]
        return released + [(r.trial_id, r.state) for r in s.execute(SQLITE_REAP if sqlite else PG_REAP, params)]


def mark_stopping(engine: Engine, worker_id: int) -> None:
    """This worker is stopping cleanly: an expiry of its lease from now on uses no attempt."""
    with session_scope(engine) as s:
        s.execute(sa.update(Worker).where(Worker.worker_id == worker_id, Worker.state == "running").values(state="stopping"))


# --------------------------------------------------------------------------------------
# finish / release
# --------------------------------------------------------------------------------------
def _owned(lease: Lease):
    """The compare-and-set guard of every write a leaseholder makes to its trial."""
    return sa.and_(
        Trial.trial_id == lease.trial_id,
        Trial.lease_owner == lease.worker_id,
        Trial.attempt == lease.attempt,
        Trial.state == TrialState.running.value,
    )


# Record the outcome only while this worker still owns this attempt of a running trial (the
# compare-and-set of every leaseholder write). A NULL bind keeps the stored value; `stopped`
# leaves the trial resumable (claimable again, same attempt, no finished_at).
FINISH = """
    UPDATE trial
       SET state = CAST(:state AS varchar),
           lease_expires_at = NULL,
           finished_at = CASE WHEN CAST(:state AS varchar) = 'stopped' THEN finished_at ELSE {now} END,
           best_val_loss = COALESCE(:best_val_loss, best_val_loss),
           best_step = COALESCE(:best_step, best_step),
           step = COALESCE(:step, step),
           epochs_done = COALESCE(:epochs_done, epochs_done),
           batch_config = COALESCE({batch_config}, batch_config),
           "values" = COALESCE({values}, "values"),
           error = COALESCE(:error, error),
           tokens = COALESCE(:tokens, tokens),
           flops = COALESCE(:flops, flops)
     WHERE trial_id = :trial_id AND lease_owner = :worker_id AND attempt = :attempt AND state = 'running'
    RETURNING trial_id
"""
PG_FINISH_TRIAL = FINISH.format(now="now()", batch_config="CAST(:batch_config AS jsonb)", values="CAST(:values AS jsonb)")
SQLITE_FINISH = _sqlite_times(sa.text(FINISH.format(now=":now", batch_config=":batch_config", values=":values")), "now")
PG_FINISH = sa.text(
    f"""
    WITH finished AS ({PG_FINISH_TRIAL}),
         moved AS (UPDATE worker SET current_trial_id = NULL WHERE worker_id = :worker_id AND EXISTS (SELECT 1 FROM finished))
    SELECT count(*) AS finished FROM finished
    """
)
# Finish one trial and claim the next in ONE statement (one round trip, one commit). The two
# UPDATEs touch different rows (a running one; a pending or stopped one): both CTEs see the
# same snapshot, so the trial being finished is never the one claimed.
PG_FINISH_CLAIM = sa.text(
    f"""
    WITH finished AS ({PG_FINISH_TRIAL}),
         claimed AS ({PG_CLAIM_TRIAL}),
         moved AS (UPDATE worker SET current_trial_id = (SELECT trial_id FROM claimed)
                    WHERE worker_id = :worker_id AND (EXISTS (SELECT 1 FROM finished) OR EXISTS (SELECT 1 FROM claimed)))
    SELECT (SELECT count(*) FROM finished) AS finished, claimed.*
      FROM (VALUES (1)) AS one (x) LEFT JOIN claimed ON true
    """
)


def _finish_params(engine: Engine, lease: Lease, outcome: TrialOutcome) -> dict[str, Any]:
    def as_json(value: Any) -> Optional[str]:
        return None if value is None else json.dumps(value)

    params = {"trial_id": lease.trial_id, "worker_id": lease.worker_id, "attempt": lease.attempt, "state": outcome.state,
              "best_val_loss": outcome.best_val_loss, "best_step": outcome.best_step, "step": outcome.step,
              "epochs_done": outcome.epochs_done, "batch_config": as_json(outcome.batch_config),
              "values": as_json(outcome.values), "error": outcome.error, "tokens": outcome.tokens, "flops": outcome.flops}
    return {**params, "now": utcnow()} if is_sqlite(engine) else params


def _already_recorded(conn, lease: Lease, outcome: TrialOutcome) -> bool:  # noqa: ANN001
    """The commit of an earlier try may have reached the server before the connection
    dropped: then the row already holds exactly this outcome, owned by us."""
    row = conn.execute(sa.select(Trial.state, Trial.lease_owner, Trial.attempt).where(Trial.trial_id == lease.trial_id)).first()
    return row is not None and (row.state, row.lease_owner, row.attempt) == (outcome.state, lease.worker_id, lease.attempt)


def finish_trial(engine: Engine, lease: Lease, outcome: TrialOutcome) -> bool:
    """Record the outcome if this worker still owns the lease (FINISH). Returns False when
    the lease was lost (nothing written); a retried call after a lost answer returns True."""
    params = _finish_params(engine, lease, outcome)
    with _one_statement(engine) if not is_sqlite(engine) else _begin(engine) as conn:
        if is_sqlite(engine):
            done = conn.execute(SQLITE_FINISH, params).first() is not None
            if done:
                conn.execute(SQLITE_WORKER_CURRENT, {"trial_id": None, "worker_id": lease.worker_id})
        else:
            done = conn.execute(PG_FINISH, params).scalar_one() == 1
        return done or _already_recorded(conn, lease, outcome)


def finish_and_claim(engine: Engine, lease: Lease, outcome: TrialOutcome, study_ids: Sequence[int],
                     lease_s: float = DEFAULT_LEASE_S) -> tuple[bool, Optional[Lease]]:
    """`finish_trial` and `claim_trial` in one transaction (on Postgres one statement):
    (recorded, the next lease or None). The next trial is claimed even when the lease was lost."""
    params = _finish_params(engine, lease, outcome)
    with _one_statement(engine) if not is_sqlite(engine) else _begin(engine) as conn:
        if is_sqlite(engine):
            nxt = _claim_in(conn, lease.worker_id, study_ids, lease_s)  # first: as on Postgres, never the trial finished here
            done = conn.execute(SQLITE_FINISH, params).first() is not None
            if done and nxt is None:
                conn.execute(SQLITE_WORKER_CURRENT, {"trial_id": None, "worker_id": lease.worker_id})
        else:
            row = conn.execute(PG_FINISH_CLAIM, {**params, "study_ids": list(study_ids), "lease_s": float(lease_s)}).first()
            done = row.finished == 1
            nxt = None if row.trial_id is None else Lease(row.trial_id, row.study_id, lease.worker_id, row.attempt, row.step or 0,
                                                          _config(row.config))
        return done or _already_recorded(conn, lease, outcome), nxt


def update_progress(engine: Engine, lease: Lease, *, step: int, epoch: int, best_val_loss=None, best_step=None, batch_config=None) -> bool:
    """Store progress that must survive a crash (called at each checkpoint); lease-guarded."""
    values: dict[str, Any] = {"step": step, "epochs_done": epoch}
    if best_val_loss is not None:
        values.update(best_val_loss=best_val_loss, best_step=best_step)
    if batch_config is not None:
        values["batch_config"] = batch_config
    with session_scope(engine) as s:
        return s.execute(sa.update(Trial).where(_owned(lease)).values(**values)).rowcount == 1


# --------------------------------------------------------------------------------------
# workers and stop requests
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerHandle:
    worker_id: int
    name: str
    started_at: datetime


def register_worker(engine: Engine, *, device: str = "cpu", study_id: Optional[int] = None, info: Optional[dict] = None) -> WorkerHandle:
    """Insert this process's worker row (name `host:pid:uuid`)."""
    host, pid = socket.gethostname(), os.getpid()
    name = f"{host}:{pid}:{uuid.uuid4().hex[:8]}"
    now = utcnow()
    with session_scope(engine) as s:
        worker = Worker(name=name, host=host[:255], pid=pid, device=device, study_id=study_id, state="running",
                        started_at=now, last_seen_at=now, info=info)
        s.add(worker)
        s.flush()
        return WorkerHandle(worker.worker_id, name, now)


def touch_worker(engine: Engine, worker_id: int, *, tokens_per_s: Optional[float] = None) -> None:
    values: dict[str, Any] = {"last_seen_at": utcnow() if is_sqlite(engine) else sa.func.now()}
    if tokens_per_s is not None:
        values["tokens_per_s"] = tokens_per_s
    with session_scope(engine) as s:
        s.execute(sa.update(Worker).where(Worker.worker_id == worker_id).values(**values))


def end_worker(engine: Engine, worker_id: int, state: str = "stopped") -> None:
    with session_scope(engine) as s:
        s.execute(sa.update(Worker).where(Worker.worker_id == worker_id).values(state=state, current_trial_id=None, last_seen_at=utcnow()))


def mark_dead_workers(engine: Engine, silent_for_s: float) -> int:
    """Workers not seen for `silent_for_s` (killed, host lost) are marked `dead`."""
    cutoff = utcnow() - timedelta(seconds=silent_for_s)
    with session_scope(engine) as s:
        return s.execute(
            sa.update(Worker).where(Worker.state == "running", Worker.last_seen_at < cutoff).values(state="dead")
        ).rowcount


def request_stop(engine: Engine, worker_id: Optional[int] = None, reason: str = "seqdb stop") -> int:
    """Ask one worker (or, with None, every worker running now) to stop after its current step."""
    with session_scope(engine) as s:
        if worker_id is not None and s.get(Worker, worker_id) is None:
            raise NotFoundError(f"worker {worker_id} does not exist; see `seqdb worker list`")
        req = StopRequest(worker_id=worker_id, reason=reason[:500], created_at=utcnow())
        s.add(req)
        s.flush()
        return req.stop_request_id


def pending_stop(engine: Engine, worker: WorkerHandle) -> Optional[str]:
    """The reason of a stop request addressed to this worker (or to all workers) made after it
    started, else None."""
    with session_scope(engine, write=False) as s:
        row = s.execute(
            sa.select(StopRequest.reason)
            .where(
                sa.or_(StopRequest.worker_id == worker.worker_id, StopRequest.worker_id.is_(None)),
                StopRequest.created_at >= worker.started_at,
            )
            .limit(1)
        ).first()
    return None if row is None else (row.reason or "stop request")


def list_workers(engine: Engine, *, include_ended: bool = False) -> list[Worker]:
    with session_scope(engine, write=False) as s:
        stmt = sa.select(Worker).order_by(Worker.worker_id)
        if not include_ended:
            stmt = stmt.where(Worker.state == "running")
        return list(s.execute(stmt).scalars())


# --------------------------------------------------------------------------------------
# queue state
# --------------------------------------------------------------------------------------
def open_counts(engine: Engine, study_ids: Sequence[int]) -> dict[str, int]:
    """Trials of `study_ids` that are not finished, by state (pending, stopped, running)."""
    with session_scope(engine, write=False) as s:
        rows = s.execute(
            sa.select(Trial.state, sa.func.count())
            .where(Trial.study_id.in_(list(study_ids)), Trial.state.in_([*RUNNABLE, TrialState.running.value]))
            .group_by(Trial.state)
        ).all()
    return {state: n for state, n in rows}


__all__ = [
    "DEFAULT_LEASE_S",
    "Lease",
    "TrialOutcome",
    "WorkerHandle",
    "adopt_orphan",
    "claim_trial",
    "end_worker",
    "finish_and_claim",
    "finish_trial",
    "list_workers",
    "mark_dead_workers",
    "mark_stopping",
    "open_counts",
    "owns_lease",
    "pending_stop",
    "reap_expired",
    "register_worker",
    "release_connection",
    "renew_lease",
    "request_stop",
    "touch_worker",
    "update_progress",
]
