"""The heartbeat thread: renews the current lease, marks the worker alive, and watches for
stop requests. It only ever sets flags; the training loop acts on them between steps."""

from __future__ import annotations

import threading
from typing import Optional

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from seqdb.runner.queue import Lease, WorkerHandle, pending_stop, renew_lease, touch_worker
from seqdb.runner.reporter import StopFlag
from seqdb.runner.retry import is_transient, log


class Heartbeat(threading.Thread):
    def __init__(self, engine: Engine, worker: WorkerHandle, stop: StopFlag, *, lease_s: float, interval_s: float):
        super().__init__(name="seqdb-heartbeat", daemon=True)
        self.engine, self.worker, self.stop_flag = engine, worker, stop
        self.lease_s, self.interval_s = lease_s, interval_s
        self.tokens_per_s: Optional[float] = None
        self._lease: Optional[Lease] = None
        self._lost = threading.Event()
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def watch(self, lease: Optional[Lease]) -> threading.Event:
        """Renew `lease` from now on (None: nothing to renew); returns its lost-lease flag."""
        with self._lock:
            self._lease, self._lost = lease, threading.Event()
            return self._lost

    def halt(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def beat(self) -> None:
        """One heartbeat: renew the lease, mark the worker seen, check for stop requests."""
        with self._lock:
            lease, lost = self._lease, self._lost
        if lease is not None and not lost.is_set() and not renew_lease(self.engine, lease, self.lease_s):
            log.warning("worker %s lost the lease on trial %s", self.worker.worker_id, lease.trial_id)
            lost.set()
        touch_worker(self.engine, self.worker.worker_id, tokens_per_s=self.tokens_per_s)
        reason = pending_stop(self.engine, self.worker)
        if reason is not None:
            self.stop_flag.set(f"stop request: {reason}")

    def run(self) -> None:
        while not self._halt.wait(self.interval_s):
            try:
                self.beat()
            except DBAPIError as exc:  # connection lost: the next beat reconnects
                if not is_transient(exc):
                    log.error("heartbeat: %s", exc)
            except Exception as exc:  # noqa: BLE001 - never let the heartbeat die silently
                log.error("heartbeat: %s", exc)
