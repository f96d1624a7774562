"""What `seqdb study list|show` and `seqdb trial list|export` print, as plain functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from seqdb.config.study import Effort, study_config
from seqdb.db.engine import session_scope
from seqdb.db.lookup import find_or_raise
from seqdb.db.models import Budget, Experiment, Study, Trial, TrialState
from seqdb.search.study import get_study

STATES = [s.value for s in TrialState]


@dataclass
class StudySummary:
    study_id: int
    name: str
    experiment: str
    budget: str
    horizon: int
    strategy: str
    n_trials: int
    max_epochs: int
    pruner: str
    state: str
    objectives: list
    counts: dict[str, int] = field(default_factory=dict)
    best: Optional[dict] = None  # trial_id, number, value (first objective), params, label
    epochs_done: int = 0
    effort: Effort = field(default_factory=Effort)
    stats: dict = field(default_factory=dict)
    siblings: list[dict] = field(default_factory=list)  # other budgets of the experiment: budget, horizon, n_trials, max_epochs


def _best(s: Any, study: Study) -> Optional[dict]:
    direction = study.objectives[0]["direction"]
    key = Trial.best_val_loss if study.objectives[0]["name"] == "val_loss" else None
    rows = s.execute(
        sa.select(Trial.trial_id, Trial.number, Trial.values, Trial.best_val_loss, Trial.params, Trial.label)
        .where(Trial.study_id == study.study_id, Trial.state == "completed")
    ).all()  # fmt: skip
    scored = []
    for r in rows:
        value = (r.values or [None])[0] if r.values else (r.best_val_loss if key is not None else None)
        if value is not None:
            scored.append((float(value), r))
    if not scored:
        return None
    value, r = (min if direction == "minimize" else max)(scored, key=lambda x: x[0])
    return {"trial_id": r.trial_id, "number": r.number, "value": value, "params": r.params, "label": r.label}


def summarize(engine: Engine, study_id_or_name: int | str) -> StudySummary:
    study = get_study(engine, study_id_or_name)
    config = study_config(study)
    with session_scope(engine, write=False) as s:
        budget = s.get(Budget, study.budget_id)
        experiment = s.get(Experiment, study.experiment_id)
        counts = dict(s.execute(sa.select(Trial.state, sa.func.count()).where(Trial.study_id == study.study_id).group_by(Trial.state)).all())
        epochs = s.execute(sa.select(sa.func.coalesce(sa.func.sum(Trial.epochs_done), 0)).where(Trial.study_id == study.study_id)).scalar_one()
        siblings = s.execute(
            sa.select(Study.study_id, Budget.label, Study.horizon, Study.n_trials, Study.max_epochs)
            .join(Budget, Budget.budget_id == Study.budget_id)
            .where(Study.experiment_id == study.experiment_id, Study.kind == study.kind)
            .order_by(Budget.n_params, Study.horizon)
        ).all()  # fmt: skip
        best = _best(s, study)
    return StudySummary(
        study_id=study.study_id, name=study.name, experiment=experiment.name, budget=budget.label, horizon=study.horizon,
        strategy=study.strategy, n_trials=study.n_trials, max_epochs=study.max_epochs, pruner=study.pruner,
        state=study.state, objectives=study.objectives, counts=counts, best=best, epochs_done=int(epochs),
        effort=config.effort, stats=config.stats,
        siblings=[{"study_id": r[0], "budget": r[1], "horizon": r[2], "n_trials": r[3], "max_epochs": r[4]} for r in siblings],
    )  # fmt: skip


def effort_line(summary: StudySummary) -> str:
    """One sentence on equal effort across the experiment's budgets."""
    equal = summary.effort.equal_effort
    mine = (summary.n_trials, summary.max_epochs)
    others = {(o["n_trials"], o["max_epochs"]) for o in summary.siblings}
    base = f"{summary.n_trials} trials x up to {summary.max_epochs} epochs"
    if len(others) <= 1:
        scope = "every budget and horizon of the experiment" if len(summary.siblings) > 1 else "the only study of the experiment so far"
        return f"effort: {base}; equal across budgets ({scope})"
    differ = ", ".join(f"{o['budget']}/h{o['horizon']}: {o['n_trials']}x{o['max_epochs']}" for o in summary.siblings if (o["n_trials"], o["max_epochs"]) != mine)
    why = "equal_effort: false in the YAML" if not equal else "the grid size differs by budget (a different number of architectures fits)"
    return f"effort: {base}; NOT equal across budgets ({why}): {differ}"


def list_studies(engine: Engine, experiment: Optional[str] = None) -> list[StudySummary]:
    with session_scope(engine, write=False) as s:
        stmt = sa.select(Study.study_id).join(Experiment, Experiment.experiment_id == Study.experiment_id)
        if experiment:
            stmt = stmt.where(Experiment.name == experiment)
        ids = list(s.execute(stmt.order_by(Study.study_id)).scalars())
    return [summarize(engine, i) for i in ids]


def list_trials(engine: Engine, study_id_or_name: int | str, state: Optional[str] = None, limit: int = 50) -> list[Any]:
    study = get_study(engine, study_id_or_name)
    with session_scope(engine, write=False) as s:
        stmt = sa.select(Trial).where(Trial.study_id == study.study_id)
        if state:
            stmt = stmt.where(Trial.state == state)
        return list(s.execute(stmt.order_by(Trial.number).limit(limit)).scalars())


def export_trial(engine: Engine, trial_id: int, *, as_yaml: bool = True) -> str:
    """The trial's complete, standalone training config (YAML, or JSON)."""
    import json

    with session_scope(engine, write=False) as s:
        trial = find_or_raise(s, Trial, trial_id)
        config = dict(trial.config)
    if not as_yaml:
        return json.dumps(config, indent=2, sort_keys=False)
    header = f"# seqdb trial {trial_id}: standalone training config (TrialConfig); config_hash {trial.config_hash}\n"
    return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
