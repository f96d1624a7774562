"""Hyperparameter importance over a study's finished trials (the Pareto front is the
`pareto_front` view)."""

from __future__ import annotations

from typing import Any, Optional

import optuna
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.db.engine import session_scope
from seqdb.db.lookup import find_or_raise
from seqdb.db.models import Study, Trial


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


EVALUATORS = {
    "fanova": lambda: optuna.importance.FanovaImportanceEvaluator(seed=0),
    "mdi": lambda: optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=0),
    "ped_anova": lambda: optuna.importance.PedAnovaImportanceEvaluator(),
}


def param_importance(params: list[dict], values: list[float], *, direction: str = "minimize", evaluator: str = "fanova", min_trials: int = 2) -> dict[str, float]:
    """Optuna's importances (fANOVA by default, or `ped_anova` / `mdi`) from plain rows: one
    params dict and one objective value per completed trial. Only parameters that vary count;
    their distributions are read off the values. {} when fewer than `min_trials` rows or
    nothing varies. The engine path below and the dashboard both call this."""
    if len(params) < max(min_trials, 2):
        return {}
    study, varying = memory_study(params, values, direction=direction)
    if not varying:
        return {}
    result = optuna.importance.get_param_importances(study, evaluator=EVALUATORS[evaluator](), params=varying)
    return {k: float(v) for k, v in result.items()}


def memory_study(params: list[dict], values: list[float], *, direction: str = "minimize") -> tuple[optuna.Study, list[str]]:
    """An in-memory Optuna study of plain rows (one params dict and one objective value per
    completed trial) over the parameters that vary, and their names; distributions are read off
    the values. For Optuna's importance evaluators and plots (the dashboard's slice and contour)."""
    names = sorted({k for p in params for k in p})
    varying = [k for k in names if len({repr(p.get(k)) for p in params}) > 1]
    dists = {k: _distribution([p.get(k) for p in params]) for k in varying}
    study = optuna.create_study(direction=direction)
    study.add_trials([optuna.trial.create_trial(params={k: _param_value(p.get(k), dists[k]) for k in varying},
                                                distributions=dists, value=float(v)) for p, v in zip(params, values)])
    return study, varying


def _distribution(values: list) -> optuna.distributions.BaseDistribution:
    """Int / float range of numeric values (log scale over > 2 decades), else categorical."""
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        return optuna.distributions.CategoricalDistribution(sorted({str(v) for v in values}))
    lo, hi = min(values), max(values)
    if all(isinstance(v, int) for v in values):
        return optuna.distributions.IntDistribution(int(lo), int(hi))
    return optuna.distributions.FloatDistribution(float(lo), float(hi), log=lo > 0 and hi / lo > 100)


def _param_value(value: Any, dist: optuna.distributions.BaseDistribution) -> Any:
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return str(value)
    return int(value) if isinstance(dist, optuna.distributions.IntDistribution) else float(value)


def importance(engine: Engine, study_id: int, *, objective: int = 0, evaluator: str = "fanova") -> dict[str, float]:
    """`param_importance` for one objective over a study's completed trials."""
    study, rows = _load(engine, study_id, ("completed",))
    n = len(study.objectives)
    points = [(row.params or {}, v[objective]) for row in rows if (v := _vector(row, n)) is not None]
    direction = study.objectives[objective]["direction"] if study.objectives else "minimize"
    return param_importance([p for p, _ in points], [v for _, v in points], direction=direction, evaluator=evaluator)
