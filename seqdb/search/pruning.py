"""Pruning hopeless trials from their intermediate validation losses.

The runner's reporter calls `should_prune(engine, study_id, trial_id, step, val_loss)` after
each evaluation. The decision is Optuna's pruner (median / hyperband / none) applied to an
in-memory study rebuilt from the `metric` table (`val_loss` per step) of the same study:
other trials with their curves and states, and this trial's curve up to `step`.

Hyperband keeps its rung bookkeeping in trial attributes; seqdb does not store them, so
they are replayed from the stored curves in trial order before each decision.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Optional

import optuna
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.db.engine import session_scope
from seqdb.db.lookup import find_or_raise
from seqdb.db.models import Metric, Study, Trial
from seqdb.search.optuna_view import STATE_MAP, study_spec

VAL_METRIC = "val_loss"


def make_pruner(study: Study) -> optuna.pruners.BasePruner:
    p = study_spec(study).pruner
    if p.name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps)
    if p.name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=p.min_resource, reduction_factor=p.reduction_factor)
    return optuna.pruners.NopPruner()


def _curves(engine: Engine, study_id: int) -> tuple[Study, list, dict[int, dict[int, float]]]:
    with session_scope(engine, write=False) as s:
        study = find_or_raise(s, Study, study_id)
        trials = s.execute(
            sa.select(Trial.trial_id, Trial.number, Trial.state, Trial.values, Trial.best_val_loss)
            .where(Trial.study_id == study_id).order_by(Trial.number)
        ).all()  # fmt: skip
        points = s.execute(
            sa.select(Metric.trial_id, Metric.step, Metric.value)
            .join(Trial, Trial.trial_id == Metric.trial_id)
            .where(Trial.study_id == study_id, Metric.name == VAL_METRIC)
        ).all()  # fmt: skip
    curves: dict[int, dict[int, float]] = defaultdict(dict)
    for trial_id, step, value in points:
        curves[trial_id][int(step)] = float(value)
    return study, trials, curves


def should_prune(engine: Engine, study_id: int, trial_id: int, step: int, val_loss: float) -> bool:
    """True when the study's pruner says this trial should stop at `step`."""
    with session_scope(engine, write=False) as s:
        study = find_or_raise(s, Study, study_id)
    if study_spec(study).pruner.name == "none":
        return False
    study, trials, curves = _curves(engine, study_id)
    curves[trial_id] = {k: v for k, v in curves.get(trial_id, {}).items() if k < step} | {int(step): float(val_loss)}
    pruner = make_pruner(study)
    direction = study.objectives[0]["direction"]
    ostudy = optuna.create_study(direction=direction, pruner=pruner, study_name=study.name)
    storage, sid = ostudy._storage, ostudy._study_id
    replay = isinstance(pruner, optuna.pruners.HyperbandPruner)
    me: Optional[int] = None
    for row in trials:
        curve = curves.get(row.trial_id, {})
        tid = storage.create_new_trial(sid)
        if row.trial_id == trial_id:
            me = tid
        for s_, v in sorted(curve.items()):
            storage.set_trial_intermediate_value(tid, s_, v)
            if replay and row.trial_id != trial_id:
                pruner.prune(ostudy, storage.get_trial(tid))  # rebuild rung attributes
        _finish(storage, tid, row, curve)
    if me is None:
        return False
    return bool(pruner.prune(ostudy, storage.get_trial(me)))


def _finish(storage, tid: int, row, curve: dict[int, float]) -> None:  # noqa: ANN001
    state = STATE_MAP.get(row.state, optuna.trial.TrialState.RUNNING)
    if state == optuna.trial.TrialState.COMPLETE:
        value = (row.values or [None])[0]
        value = value if value is not None else row.best_val_loss
        if value is None and curve:
            value = min(curve.values())
        if value is None:
            storage.set_trial_state_values(tid, optuna.trial.TrialState.FAIL)
            return
        storage.set_trial_state_values(tid, state, [float(value)])
    elif state != optuna.trial.TrialState.RUNNING:
        storage.set_trial_state_values(tid, state)
