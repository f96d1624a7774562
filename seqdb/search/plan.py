"""What `seqdb run` does before its workers start: pick the experiment, prepare its data
(a cache hit when done before) and make sure the studies exist (creating them, and their
pending trials, from the experiment when needed)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.db.engine import session_scope
from seqdb.db.models import Experiment
from seqdb.errors import ConfigError, NotFoundError
from seqdb.project import Project


@dataclass(frozen=True)
class PlannedStudy:
    study_id: int
    name: str
    budget: str
    horizon: int


def pick_experiment(engine: Engine, name: str | None) -> str:
    """`name`, or the only registered experiment when none is given."""
    with session_scope(engine, write=False) as s:
        names = list(s.execute(sa.select(Experiment.name).order_by(Experiment.experiment_id)).scalars())
    if name is not None:
        if name not in names:
            allowed = ", ".join(names) or "none registered; run `seqdb experiment add FILE`"
            raise NotFoundError(f"experiment {name!r} does not exist; registered: {allowed}")
        return name
    if len(names) == 1:
        return names[0]
    if not names:
        raise NotFoundError("no experiment registered; run `seqdb experiment add FILE` first")
    raise ConfigError(f"--experiment is required: {len(names)} experiments are registered ({', '.join(names)})")


def plan_studies(engine: Engine, project: Project, experiment: str, budgets: list[str], horizons: list[int]) -> list[PlannedStudy]:
    """Check every (budget, horizon) against the experiment, prepare its data once, then
    ensure one study per pair."""
    from seqdb.data.prepare import prepare_dataset
    from seqdb.experiment.registry import get_experiment
    from seqdb.search.study import ensure_study_for, study_key

    row, cfg = get_experiment(engine, experiment)
    keys = [(budget, study_key(cfg, budget, horizon)) for budget in budgets for horizon in horizons]
    dataset = prepare_dataset(engine, project, experiment)
    planned = []
    for budget, key in keys:
        study = ensure_study_for(engine, project, row, cfg, key, dataset=dataset)
        planned.append(PlannedStudy(study.study_id, study.name, budget, key.horizon))
    return planned
