"""Pareto fronts and hyperparameter importance over a study's finished trials."""

from __future__ import annotations

from typing import Any, Optional

import optuna
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.db.engine import session_scope
from seqdb.db.lookup import find_or_raise
from seqdb.db.models import Study, Trial
from seqdb.search.optuna_view import build_optuna_study


def _load(engine: Engine, study_id: int, states: tuple[str, ...]) -> tuple[Study, list]:
    with session_scope(engine, write=False) as s:
        study = find_or_raise(s, Study, study_id)
        rows = s.execute(
            sa.select(Trial.trial_id, Trial.number, Trial.state, Trial.params, Trial.values, Trial.best_val_loss,
                      Trial.best_step, Trial.label, Trial.param_count)
            .where(Trial.study_id == study_id, Trial.state.in_(states)).order_by(Trial.number)
        ).all()  # fmt: skip
    return study, rows


def _vector(row: Any, n: int) -> Optional[list[float]]:
    values = list(row.values) if row.values else ([row.best_val_loss] if n == 1 and row.best_val_loss is not None else None)
    return [float(v) for v in values] if values and len(values) == n else None


def pareto_front(engine: Engine, study_id: int) -> list[dict]:
    """The completed trials no other completed trial dominates (direction-aware), ordered by
    the first objective: [{trial_id, number, values, params, label, param_count}]."""
    study, rows = _load(engine, study_id, ("completed",))
    directions = [o["direction"] for o in study.objectives]
    signs = [1.0 if d == "minimize" else -1.0 for d in directions]
    points = []
    for row in rows:
        v = _vector(row, len(directions))
        if v is not None:
            points.append((row, [s * x for s, x in zip(signs, v)], v))

    def dominated(a: list[float]) -> bool:
        return any(all(x <= y for x, y in zip(b, a)) and any(x < y for x, y in zip(b, a)) for _, b, _ in points)

    front = [
        {"trial_id": r.trial_id, "number": r.number, "values": v, "params": r.params, "label": r.label, "param_count": r.param_count}
        for r, key, v in points
        if not dominated(key)
    ]
    return sorted(front, key=lambda f: [s * x for s, x in zip(signs, f["values"])])


def importance(engine: Engine, study_id: int, *, objective: int = 0, evaluator: str = "fanova") -> dict[str, float]:
    """Optuna's parameter importances (fANOVA by default, or `ped_anova` / `mdi`) for one
    objective over the completed trials; {} when fewer than 2 trials or nothing varies."""
    study, rows = _load(engine, study_id, ("completed",))
    ostudy, _factors, _ = build_optuna_study(study, rows)
    trials = ostudy.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(trials) < 2:
        return {}
    varying = {name for name in trials[0].params if len({repr(t.params.get(name)) for t in trials}) > 1}
    if not varying:
        return {}
    target = None if len(study.objectives) == 1 else (lambda t: t.values[objective])
    ev = {
        "fanova": lambda: optuna.importance.FanovaImportanceEvaluator(seed=0),
        "mdi": lambda: optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=0),
        "ped_anova": lambda: optuna.importance.PedAnovaImportanceEvaluator(),
    }[evaluator]()
    result = optuna.importance.get_param_importances(ostudy, evaluator=ev, params=sorted(varying), target=target)
    return {k: float(v) for k, v in result.items()}
