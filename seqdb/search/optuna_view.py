"""Optuna's view of a seqdb study, rebuilt from the seqdb database (the single source of truth).

Every trial row becomes a FrozenTrial in an in-memory Optuna study: completed trials with
their objective values, pruned trials with their last reported validation loss, failed trials
as failed, and pending / running / stopped trials as running (TPE's constant liar then keeps
concurrent asks apart). Parameters are the factor values of `seqdb.search.space`.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Iterable, Optional

import optuna
from optuna.trial import TrialState as OTS
from optuna.trial import create_trial

from seqdb.db.models import Study
from seqdb.search.space import Factor, optuna_distributions, optuna_from_config, space_factors
from seqdb.config.search import SearchSpec
from seqdb.config.study import study_config

optuna.logging.set_verbosity(logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

STATE_MAP = {
    "completed": OTS.COMPLETE,
    "pruned": OTS.PRUNED,
    "failed": OTS.FAIL,
    "pending": OTS.RUNNING,
    "running": OTS.RUNNING,
    "stopped": OTS.RUNNING,
}


def study_spec(study: Study) -> SearchSpec:
    return study_config(study).search


def study_factors(study: Study) -> list[Factor]:
    """The factors of a stored study (architecture options from its stored context)."""
    config = study_config(study)
    spec, archs = config.search, config.context.architectures
    options = [{"architecture": a["architecture"], **{k: a[k] for k in ("d_model", "n_head", "n_layers", "d_ff", "n_kv_heads")}} for a in archs]
    return space_factors(spec.space, options)


def frozen_trial(row: Any, factors: list[Factor], distributions: dict, n_objectives: int, intermediate: Optional[dict] = None) -> Optional[optuna.trial.FrozenTrial]:
    """One seqdb trial row (trial_id, state, params, values, best_val_loss, best_step) ->
    a FrozenTrial; None when its parameters are not in this space."""
    params = optuna_from_config(factors, row.params or {})
    if params is None:
        return None
    state = STATE_MAP.get(row.state, OTS.RUNNING)
    values = list(row.values) if row.values else None
    if state == OTS.COMPLETE and (values is None or len(values) != n_objectives):
        if n_objectives == 1 and row.best_val_loss is not None:
            values = [row.best_val_loss]
        else:
            state = OTS.FAIL
    inter = dict(intermediate or {})
    if not inter and row.best_val_loss is not None and state in (OTS.PRUNED, OTS.RUNNING):
        inter = {int(row.best_step or 0): float(row.best_val_loss)}
    return create_trial(
        state=state,
        params=params,
        distributions=distributions,
        values=values if state == OTS.COMPLETE else None,
        intermediate_values=inter,
        user_attrs={"trial_id": row.trial_id},
    )


def build_optuna_study(
    study: Study, rows: Iterable[Any], *, sampler: Optional[optuna.samplers.BaseSampler] = None,
    pruner: Optional[optuna.pruners.BasePruner] = None, intermediate: Optional[dict[int, dict]] = None,
) -> tuple[optuna.Study, list[Factor], dict]:  # fmt: skip
    """An in-memory Optuna study holding every given trial row."""
    factors = study_factors(study)
    distributions = optuna_distributions(factors)
    directions = [o["direction"] for o in study.objectives]
    ostudy = optuna.create_study(directions=directions, sampler=sampler, pruner=pruner, study_name=study.name)
    trials = []
    for row in rows:
        ft = frozen_trial(row, factors, distributions, len(directions), (intermediate or {}).get(row.trial_id))
        if ft is not None:
            trials.append(ft)
    ostudy.add_trials(trials)
    return ostudy, factors, distributions
