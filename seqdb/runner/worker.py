"""The worker loop: claim → execute → record → next, until the studies are done or a stop.

    register worker, start heartbeat (lease renewal, liveness, stop requests)
    loop:
        reap expired leases (every few seconds)
        claim the oldest runnable trial of my studies
        none?  ask the sampler for a new one (TPE / multi-objective), or wait for running
               trials of others (they may die and come back), or exit when nothing is open
        execute it (the trainer, or a synthetic executor in tests) with the DB reporter
        flush metrics, record the outcome if I still own the lease
    end worker

Faults (`classify`): an error of the trial (bad config, NaN, OOM after retries, any other
exception of the training code) fails that trial and the worker goes on. An error of the
environment (disk full, permission denied, read-only file system, the project deleted, the
database without its schema) leaves the trial resumable (released as `stopped`, no attempt
used) and stops the worker with one line (`WorkerSummary.fault`; `seqdb run` exits non-zero).
A database outage (a connection error after the retries) also leaves the trial resumable; the
worker backs off and claims again, up to `max_outages` times in a row.

The step that trains is an `Executor` object the worker is given (`seqdb.runner.executor`),
so the queue is tested with real processes and real databases without a model; the real one
is `seqdb.runner.execute.TrainExecutor`.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from seqdb.db.engine import create_engine_for, first_line, normalize_url
from seqdb.db.models import TrialState
from seqdb.errors import DatabaseError, SeqdbError, TrainingError, redact
from seqdb.runner import queue as q
from seqdb.runner.gpus import physical_device
from seqdb.runner.heartbeat import Heartbeat
from seqdb.runner.metrics import MetricWriter
from seqdb.runner.progress import Progress
from seqdb.runner.executor import EventSink, Executor, SetupError, TrialRun, no_events
from seqdb.runner.reporter import DbReporter, StopFlag, resume_point
from seqdb.runner.retry import is_transient, log, with_retry


@dataclass
class WorkerSettings:
    """Everything a worker process needs (picklable: `--workers N` sends it to children)."""

    database_url: str
    study_ids: list[int]
    artifacts_root: str
    device: str = "cpu"
    lease_s: float = q.DEFAULT_LEASE_S
    heartbeat_s: Optional[float] = None  # default: lease_s / 4
    poll_s: float = 1.0  # wait between claims when nothing is runnable but trials are running
    reap_every_s: float = 2.0
    max_trials: Optional[int] = None
    once: bool = False
    label: str = "w0"
    progress: bool = True
    progress_every_s: float = 5.0
    threads: Optional[int] = None  # torch CPU threads of this worker (None: torch's default)
    max_outages: int = 5  # database outages in a row (each after the retries) before the worker stops
    outage_backoff_s: float = 5.0  # first wait after an outage; doubles each time


@dataclass
class WorkerSummary:
    worker_id: int
    trials_done: int = 0
    by_state: dict = field(default_factory=dict)
    lost_leases: int = 0
    stop_reason: Optional[str] = None
    fault: Optional[str] = None  # the environment fault that stopped this worker (None: none)

    @property
    def failed(self) -> int:
        return self.by_state.get(TrialState.failed.value, 0)


# --------------------------------------------------------------------------------------
# faults: the trial's, or the environment's
# --------------------------------------------------------------------------------------
# errno values of the machine, not of the trial: no other config would do better
ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO, errno.ENOENT,
                      errno.EMFILE, errno.ENFILE, errno.ESTALE, errno.ENOTDIR, errno.EISDIR}


class EnvironmentFault(SeqdbError):
    """The environment, not the trial, failed: the trial is left resumable, the worker stops."""

    exit_code = 8

    def __init__(self, message: str, *, outage: bool = False):
        super().__init__(message)
        self.outage = outage  # a database outage: back off and claim again instead of stopping


def classify(exc: BaseException) -> Optional[EnvironmentFault]:
    """None for an error of the trial; an EnvironmentFault for one of the environment."""
    if isinstance(exc, EnvironmentFault):
        return exc
    if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
        where = f" ({exc.filename})" if exc.filename else ""
        return EnvironmentFault(f"{os.strerror(exc.errno)}{where}: fix the disk or permissions, then run again")
    if isinstance(exc, DBAPIError):
        return EnvironmentFault(f"database error: {first_line(exc)}", outage=is_transient(exc))
    if isinstance(exc, DatabaseError):
        return EnvironmentFault(exc.message, outage="unreachable" in exc.message)
    return None


def project_gone(settings: WorkerSettings, *, artifacts: bool = True) -> Optional[str]:
    """What of the project has disappeared (the SQLite file, the artifacts root), or None."""
    url = normalize_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database).is_file():
        return f"the database file {url.database} was deleted or moved"
    if artifacts and not Path(settings.artifacts_root).is_dir():
        return f"the artifacts folder {settings.artifacts_root} was deleted or moved"
    return None


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


def install_signal_handlers(stop: StopFlag) -> None:
    """SIGINT / SIGTERM / SIGUSR1 (a scheduler's preemption warning): finish the current step,
    write and register a checkpoint, return the trial to the queue without using an attempt,
    mark the worker stopped and exit 0. A third signal kills the process the default way."""
    if threading.current_thread() is not threading.main_thread():
        return
    count = {"n": 0, "last": 0.0}

    def handler(signum, _frame):  # noqa: ANN001
        now = time.monotonic()
        if now - count["last"] > 1.0:  # a signal sent both to the group and forwarded counts once
            count["n"] += 1
        count["last"] = now
        stop.set(f"signal {signal.Signals(signum).name}")
        if count["n"] >= 3:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)


class WorkerLoop:
    def __init__(self, settings: WorkerSettings, executor: Executor, stop: Optional[StopFlag] = None,
                 ask_next: Optional[Callable[[Engine, int], Optional[int]]] = None, events: EventSink = no_events):
        self.s = settings
        self.engine = create_engine_for(settings.database_url, create=False)  # a deleted file is an error, not a new database
        self.executor = executor
        self.stop = stop or StopFlag()
        if ask_next is None:
            from seqdb.search.sampler import ask_next  # TPE / multi-objective studies ask here
        self.ask_next = ask_next
        self.event = events
        self.progress = Progress(settings.label, enabled=settings.progress, every_s=settings.progress_every_s)
        self._last_reap = 0.0
        self._last_env_check = time.monotonic()
        self._ended = threading.Event()
        self._watch_artifacts = Path(settings.artifacts_root).is_dir()  # watched only if it existed at the start
        self._outages = 0
        self._prefetched: Optional[q.Lease] = None  # claimed together with the last finish (queue.finish_and_claim)

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> WorkerSummary:
        s = self.s
        warm_up = getattr(self.executor, "warm_up", None)  # executor start-up, overlapped with registration
        ready = warm_up(s.device) if warm_up is not None else (lambda: None)
        handle = with_retry(lambda: q.register_worker(self.engine, device=physical_device(s.device), study_id=s.study_ids[0] if len(s.study_ids) == 1 else None,
                                                       info={"label": s.label, "studies": s.study_ids}), what="register worker")
        summary = WorkerSummary(handle.worker_id)
        self.progress.say(f"worker {handle.worker_id} ({handle.name}) on {s.device}, studies {s.study_ids}")
        hb = Heartbeat(self.engine, handle, self.stop, lease_s=s.lease_s, interval_s=s.heartbeat_s or s.lease_s / 4)
        self.heartbeat = hb
        hb.start()
        announcer = threading.Thread(target=self._announce_stop, args=(handle.worker_id,), name="seqdb-stopping", daemon=True)
        announcer.start()
        try:
            ready()  # before the first claim: no lease is held while the executor starts up
            while not self.stop.is_set() and not self._enough(summary):
                lease = self._next_lease(handle.worker_id)
                if lease is None:
                    if self._queue_drained():
                        break
                    self.stop.wait(s.poll_s)
                    continue
                try:
                    state = self._run_one(lease, summary)
                except EnvironmentFault as fault:
                    if self._back_off(fault, lease):
                        continue
                    summary.fault = f"trial {lease.trial_id} left resumable: {fault.message}"
                    self.stop.set(f"environment fault: {fault.message}")
                    break
                self._outages = 0
                summary.by_state[state] = summary.by_state.get(state, 0) + 1
        finally:
            self._ended.set()
            hb.halt()
            self._release_prefetched()
            self._end_worker(handle.worker_id)
            summary.stop_reason = self.stop.reason
            self.event(kind="exit", worker=handle.worker_id, reason=self.stop.reason)
            self.engine.dispose()
        self.progress.say(f"worker {handle.worker_id} done: {summary.trials_done} trials {summary.by_state}"
                          + (f"; stopped ({self.stop.reason})" if self.stop.reason else ""))
        return summary

    def _announce_stop(self, worker_id: int) -> None:
        """Once a stop is asked (signal, preemption, stop request), mark this worker
        `stopping` at once: if it dies before releasing its trial (SIGKILL after the grace
        period), the lease's expiry then uses no attempt (queue.CLEAN_STOP_RELEASE)."""
        while not self.stop.wait(0.5):
            if self._ended.is_set():
                return
        try:
            with_retry(lambda: q.mark_stopping(self.engine, worker_id), what="mark stopping", deadline_s=10.0)
        except (SeqdbError, DBAPIError) as exc:
            log.warning("worker %s: not marked stopping: %s", worker_id, exc)

    def _back_off(self, fault: EnvironmentFault, lease: q.Lease) -> bool:
        """A database outage: wait (doubling) and claim again; False when the worker must stop."""
        self._outages += 1
        if not fault.outage or self._outages > self.s.max_outages:
            return False
        wait = self.s.outage_backoff_s * 2 ** (self._outages - 1)
        self.progress.say(f"trial {lease.trial_id} left resumable: {fault.message}; retrying in {wait:.0f}s")
        return not self.stop.wait(wait)

    def _end_worker(self, worker_id: int) -> None:
        try:
            with_retry(lambda: q.end_worker(self.engine, worker_id), what="end worker")
        except (SeqdbError, DBAPIError) as exc:  # the database is gone: its lease expires, nothing to undo
            log.warning("end worker %s: %s", worker_id, exc)

    def _enough(self, summary: WorkerSummary) -> bool:
        if self.s.once and summary.trials_done >= 1:
            return True
        return self.s.max_trials is not None and summary.trials_done >= self.s.max_trials

    def _next_lease(self, worker_id: int) -> Optional[q.Lease]:
        if self._prefetched is not None:  # claimed in the transaction that finished the last trial
            lease, self._prefetched = self._prefetched, None
            return lease
        now = time.monotonic()
        if now - self._last_reap >= self.s.reap_every_s:
            self._last_reap = now
            for trial_id, state in with_retry(lambda: q.reap_expired(self.engine), what="reap"):
                self.event(kind="reap", trial=trial_id, state=state)
                self.progress.say(f"trial {trial_id}: lease expired, now {state}")
            with_retry(lambda: q.mark_dead_workers(self.engine, silent_for_s=max(3 * self.s.lease_s, 30.0)), what="mark dead workers")
        tries = {"n": 0}

        def claim() -> Optional[q.Lease]:
            tries["n"] += 1
            if tries["n"] > 1:  # an earlier try may have committed before the connection died
                orphan = q.adopt_orphan(self.engine, worker_id, self.s.study_ids)
                if orphan is not None:
                    return orphan
            return q.claim_trial(self.engine, worker_id, self.s.study_ids, self.s.lease_s)

        return with_retry(claim, what="claim")

    def _queue_drained(self) -> bool:
        """Nothing runnable: ask the sampler for more; True when nothing is open at all."""
        for study_id in self.s.study_ids:
            if self.ask_next is not None and with_retry(lambda: self.ask_next(self.engine, study_id), what="ask_next") is not None:
                return False
        counts = with_retry(lambda: q.open_counts(self.engine, self.s.study_ids), what="queue state")
        return not counts

    # -- one trial ------------------------------------------------------------------------
    def _run_one(self, lease: q.Lease, summary: WorkerSummary) -> str:
        resume = with_retry(lambda: resume_point(self.engine, lease.trial_id), what="find checkpoint")
        self.event(kind="claim", trial=lease.trial_id, worker=lease.worker_id, attempt=lease.attempt,
                          resume_step=resume.step if resume else 0)
        lost = self.heartbeat.watch(lease)
        writer = MetricWriter(self.engine, lease)
        reporter = DbReporter(self.engine, lease, writer, self.stop, lost, pruner=self.executor.pruner(self.engine, lease),
                              on_report=self._on_report)
        run = TrialRun(self.engine, lease, reporter, Path(self.s.artifacts_root) / "trials" / str(lease.trial_id), resume,
                       self.s.device, self.progress)
        self.progress.start_trial(lease, resume.step if resume else 0)
        outcome = self._execute(run)
        flushed = writer.close()
        owned = flushed and not reporter.lease_lost()
        more = not self.stop.is_set() and not self._enough(replace(summary, trials_done=summary.trials_done + 1))
        recorded = owned and self._record(lease, outcome, claim_next=more)
        self.heartbeat.watch(None)
        summary.trials_done += 1
        if not recorded:
            summary.lost_leases += 1
            self.event(kind="lost", trial=lease.trial_id, worker=lease.worker_id, attempt=lease.attempt)
            self.progress.say(f"trial {lease.trial_id}: lease lost to another worker; its result is not recorded")
            return "lost"
        self.event(kind="finish", trial=lease.trial_id, worker=lease.worker_id, attempt=lease.attempt,
                          state=outcome.state, step=outcome.step)
        self.progress.end_trial(lease, outcome)
        return outcome.state

    def _record(self, lease: q.Lease, outcome: q.TrialOutcome, *, claim_next: bool) -> bool:
        """Record the outcome; when the loop goes on, claim the next trial in the same
        transaction (kept in `_prefetched`). A retry finishes alone (idempotent) and adopts the
        claim an earlier try may have committed."""
        tries = {"n": 0}

        def record() -> bool:
            tries["n"] += 1
            if claim_next and tries["n"] == 1:
                done, self._prefetched = q.finish_and_claim(self.engine, lease, outcome, self.s.study_ids, self.s.lease_s)
                return done
            done = q.finish_trial(self.engine, lease, outcome)
            if claim_next:
                self._prefetched = q.adopt_orphan(self.engine, lease.worker_id, self.s.study_ids)
            return done

        return with_retry(record, what="record result")

    def _release_prefetched(self) -> None:
        """The loop ended with a trial claimed but not started: leave it resumable at once."""
        lease, self._prefetched = self._prefetched, None
        q.release_connection(self.engine)
        if lease is None:
            return
        try:
            with_retry(lambda: q.finish_trial(self.engine, lease, q.TrialOutcome(TrialState.stopped.value)), what="release trial",
                       deadline_s=RELEASE_DEADLINE_S)
        except (SeqdbError, DBAPIError) as exc:
            log.warning("trial %s: not released (%s); its lease will expire", lease.trial_id, exc)

    def _on_report(self, step: int, epoch: int, metrics: dict) -> None:
        self.progress.update(step, epoch, metrics)
        self.heartbeat.tokens_per_s = self.progress.tokens_per_s
        now = time.monotonic()
        if now - self._last_env_check >= ENV_CHECK_EVERY_S:  # a stat or two, every few seconds
            self._last_env_check = now
            gone = project_gone(self.s, artifacts=self._watch_artifacts)
            if gone is not None:  # raise through the trainer: no checkpoint into a deleted folder
                raise EnvironmentFault(f"{gone}; the run cannot go on: restore the project or start again")

    def _execute(self, run: TrialRun) -> q.TrialOutcome:
        """The executor's outcome; an error of the trial fails it, one of the environment
        releases the trial (resumable) and raises EnvironmentFault."""
        try:
            return self.executor(run)
        except SetupError as exc:  # not the trial's fault: resumable; the cause ends this worker
            self._release(run)
            raise (classify(exc.cause) or exc.cause) from None
        except Exception as exc:  # noqa: BLE001 - a failing trial must not kill the worker
            fault = classify(exc)
            if fault is not None:
                log.debug("trial %s: environment fault", run.lease.trial_id, exc_info=True)
                self._release(run)
                raise fault from None
            log.debug("trial %s failed", run.lease.trial_id, exc_info=True)
            text = " ".join(redact(f"{type(exc).__name__}: {exc}").split())[:2000]
            return q.TrialOutcome(TrialState.failed.value, error=text)

    def _release(self, run: TrialRun) -> None:
        """Leave the trial resumable: `stopped`, same attempt (best effort: if the database is
        down too, the lease expires and the reaper requeues it)."""
        self.heartbeat.watch(None)
        try:
            run.reporter.writer.close()
            with_retry(lambda: q.finish_trial(self.engine, run.lease, q.TrialOutcome(TrialState.stopped.value)),
                       what="release trial", deadline_s=RELEASE_DEADLINE_S)
        except (SeqdbError, DBAPIError, OSError) as exc:
            log.warning("trial %s: not released (%s); its lease will expire", run.lease.trial_id, exc)


def check_summaries(summaries: list[WorkerSummary]) -> None:
    """After `seqdb run`: an EnvironmentFault if a worker stopped on one, a TrainingError if
    trials failed (the command then exits non-zero); nothing when all went well."""
    faults = [s.fault for s in summaries if s.fault]
    if faults:
        more = f" (and {len(faults) - 1} more worker(s))" if len(faults) > 1 else ""
        raise EnvironmentFault(f"a worker stopped on an environment fault: {faults[0]}{more}; run `seqdb run` again once it is fixed")
    failed = sum(s.failed for s in summaries)
    if failed:
        raise TrainingError(f"{failed} trial(s) failed; see `seqdb trial list --study S --state failed`, "
                            "put them back with `seqdb trial retry --failed`")


ENV_CHECK_EVERY_S = 5.0  # how often a running trial checks that the project still exists
RELEASE_DEADLINE_S = 30.0  # how long a worker with an environment fault tries to release its trial


def run_worker(settings: WorkerSettings, executor: Executor, events: EventSink = no_events) -> WorkerSummary:
    """Run one worker in this process until done or stopped (signals handled)."""
    stop = StopFlag()
    install_signal_handlers(stop)
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    return WorkerLoop(settings, executor, stop, events=events).run()
