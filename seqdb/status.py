"""`seqdb status`: counts of studies and trials by state, and live workers.

Plain SQL over one read transaction (no ORM models): the command must answer in well under a
second, and the table definitions alone cost ~0.1-0.2 s to import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.db.engine import session_scope
from seqdb.db.states import TrialState

STATES = [s.value for s in TrialState]
LIVE_WORKER_WINDOW = timedelta(minutes=2)

STUDIES_SQL = sa.text(
    """
    SELECT s.study_id, s.name, b.label, s.horizon, s.strategy
      FROM study s JOIN budget b ON b.budget_id = s.budget_id
     ORDER BY s.study_id
    """
)
COUNTS_SQL = sa.text("SELECT study_id, state, count(*) FROM trial GROUP BY study_id, state")
LIVE_SQL = sa.text("SELECT host, pid FROM worker WHERE state = 'running' AND last_seen_at >= :since").bindparams(
    sa.bindparam("since", type_=sa.DateTime(timezone=True))
)


@dataclass
class StudyCounts:
    study_id: int
    name: str
    budget: str
    horizon: int
    strategy: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class StatusReport:
    studies: list[StudyCounts]
    totals: dict[str, int]
    live_workers: int
    states: list[str] = field(default_factory=lambda: list(STATES))


def _alive(host: str, pid: int) -> bool:
    """A worker row of THIS host whose process is gone (SIGKILL, OOM kill) is not live, even
    before its heartbeat goes stale; rows of other hosts are judged by the heartbeat alone."""
    import os
    import socket

    if host != socket.gethostname()[:255]:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def collect_status(engine: Engine) -> StatusReport:
    since = datetime.now(timezone.utc) - LIVE_WORKER_WINDOW
    with session_scope(engine, write=False) as s:
        studies = s.execute(STUDIES_SQL).all()
        counts = s.execute(COUNTS_SQL).all()
        live = sum(_alive(host, pid) for host, pid in s.execute(LIVE_SQL, {"since": since}).all())
    by_study = {row[0]: StudyCounts(*row) for row in studies}
    totals: dict[str, int] = {}
    for study_id, st, n in counts:
        if study_id in by_study:
            by_study[study_id].counts[st] = n
        totals[st] = totals.get(st, 0) + n
    return StatusReport(studies=list(by_study.values()), totals=totals, live_workers=live)
