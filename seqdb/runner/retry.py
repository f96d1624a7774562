"""Riding out a lost database connection (server restart, `pg_terminate_backend`, a locked
SQLite file): retry the whole transaction with backoff until a deadline.

Every queue operation is safe to retry: claims are adopted back (`adopt_orphan`), renewals
and results are compare-and-set, metric flushes are upserts on (trial_id, name, step).
"""

from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from seqdb.db.engine import first_line
from seqdb.errors import DatabaseError

T = TypeVar("T")
log = logging.getLogger("seqdb.runner")
RETRY_DEADLINE_S = 120.0


def is_transient(exc: BaseException) -> bool:
    """Connection-level failures worth a retry (not constraint violations or bad SQL)."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def with_retry(fn: Callable[[], T], *, what: str, deadline_s: float = RETRY_DEADLINE_S) -> T:
    """Run `fn` (one whole transaction); on a transient error wait and run it again."""
    start, delay = time.monotonic(), 0.05
    while True:
        try:
            return fn()
        except DBAPIError as exc:
            if not is_transient(exc) or time.monotonic() - start > deadline_s:
                if is_transient(exc):
                    raise DatabaseError(f"{what}: database unreachable for {deadline_s:.0f}s: {first_line(exc)}") from None
                raise
            log.warning("%s: %s; retrying in %.2fs", what, first_line(exc), delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
