"""`seqdb status`: counts of studies and trials by state, and live workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.db.engine import session_scope
from seqdb.db.models import Budget, Study, Trial, TrialState, Worker, utcnow

STATES = [s.value for s in TrialState]
LIVE_WORKER_WINDOW = timedelta(minutes=2)


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


def collect_status(engine: Engine) -> StatusReport:
    with session_scope(engine, write=False) as s:
        studies = s.execute(
            sa.select(Study.study_id, Study.name, Budget.label, Study.horizon, Study.strategy)
            .join(Budget, Budget.budget_id == Study.budget_id)
            .order_by(Study.study_id)
        ).all()
        counts = s.execute(sa.select(Trial.study_id, Trial.state, sa.func.count()).group_by(Trial.study_id, Trial.state)).all()
        live = s.execute(
            sa.select(sa.func.count())
            .select_from(Worker)
            .where(Worker.state == "running", Worker.last_seen_at >= utcnow() - LIVE_WORKER_WINDOW)
        ).scalar_one()
    by_study = {row[0]: StudyCounts(*row) for row in studies}
    totals: dict[str, int] = {}
    for study_id, st, n in counts:
        if study_id in by_study:
            by_study[study_id].counts[st] = n
        totals[st] = totals.get(st, 0) + n
    return StatusReport(studies=list(by_study.values()), totals=totals, live_workers=live)
