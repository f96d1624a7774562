"""Riding out a lost database connection (server restart, `pg_terminate_backend`, a locked
SQLite file): retry the whole transaction with backoff until a deadline.

Every queue operation is safe to retry: claims are adopted back (`adopt_orphan`), renewals
and results are compare-and-set, metric flushes are upserts on (trial_id, name, step).

Not transient, so never retried: a missing table or column, a file that is not a database
(the schema is gone: the database was replaced or deleted): those raise a one-line
DatabaseError at once instead of being reported as "unreachable" after the deadline.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from seqdb.db.engine import first_line
from seqdb.errors import DatabaseError, redact

T = TypeVar("T")
RETRY_DEADLINE_S = 120.0
# OperationalErrors that no wait will cure: the schema or the file itself is wrong
SCHEMA_ERRORS = ("no such table", "no such column", "file is not a database", "database disk image is malformed",
                 "undefinedtable", "does not exist", "readonly database", "attempt to write a readonly")


class RedactingFilter(logging.Filter):
    """Every seqdb.runner log record passes `redact` (no password reaches a log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        return True


log = logging.getLogger("seqdb.runner")
log.addFilter(RedactingFilter())


def is_schema_error(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", None) or exc).lower()
    return any(marker in text for marker in SCHEMA_ERRORS)


def is_transient(exc: BaseException) -> bool:
    """Connection-level failures worth a retry (not constraint violations, bad SQL or a
    database without its schema)."""
    if isinstance(exc, DBAPIError) and is_schema_error(exc):
        return False
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
            if is_schema_error(exc):
                raise DatabaseError(f"{what}: the database has no seqdb schema or cannot be written ({first_line(exc)}); "
                                    "was it replaced or deleted? allowed: a database made by `seqdb init`") from None
            if not is_transient(exc) or time.monotonic() - start > deadline_s:
                if is_transient(exc):
                    raise DatabaseError(f"{what}: database unreachable for {deadline_s:.0f}s: {first_line(exc)}") from None
                raise
            log.warning("%s: %s; retrying in %.2fs", what, first_line(exc), delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
