"""Asking Optuna for the next configuration of a tpe / nsga2 study.

`ask_next(engine, study_id)` runs in one write transaction that holds the study's lock
(Postgres: `SELECT … FOR UPDATE` on the study row; SQLite: `BEGIN IMMEDIATE`), so asks
from concurrent workers are serialised: each sees every trial inserted before it, running
ones included, and the unique (study_id, config_hash) constraint backs this up. The sampler
is seeded with (study seed + number of trials so far), so a study is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Optional

import optuna
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.db.engine import is_sqlite, session_scope
from seqdb.db.lookup import find_or_raise
from seqdb.db.models import Study, Trial, TrialState, utcnow
from seqdb.errors import ConfigError
from seqdb.config.study import StudyContext, study_config
from seqdb.search.build import build_trial
from seqdb.search.optuna_view import build_optuna_study, frozen_trial, study_spec
from seqdb.search.space import config_from_optuna, draw
from seqdb.search.study import trial_row

MAX_ASKS = 64  # sampler retries before falling back to a random unseen configuration

# Lock the study row for the rest of the transaction (Postgres). Concurrent askers of the
# same study queue here; askers of other studies do not wait.
LOCK_STUDY_SQL = sa.text("SELECT study_id FROM study WHERE study_id = :study_id FOR UPDATE")


def make_sampler(study: Study, n_existing: int) -> optuna.samplers.BaseSampler:
    spec = study_spec(study)
    seed = study_config(study).context.seed + n_existing
    if spec.strategy == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    kwargs: dict[str, Any] = {"seed": seed, "constant_liar": True, "multivariate": True}
    if spec.n_startup_trials is not None:
        kwargs["n_startup_trials"] = spec.n_startup_trials
    return optuna.samplers.TPESampler(**kwargs)


def ask_next(engine: Engine, study_id: int) -> Optional[int]:
    """Insert one new pending trial chosen by the study's sampler; its trial_id, or None when
    the study needs no more trials (or its space is exhausted)."""
    try:
        return _ask_locked(engine, study_id)
    except BaseException:
        _VIEWS.pop((str(engine.url), study_id), None)  # the cached view may be ahead of the DB
        raise


def _ask_locked(engine: Engine, study_id: int) -> Optional[int]:
    with session_scope(engine) as s:
        if not is_sqlite(engine):
            s.execute(LOCK_STUDY_SQL, {"study_id": study_id})
        study = find_or_raise(s, Study, study_id)
        if not study_spec(study).is_sampled or study.kind != "search":
            return None
        rows = s.execute(
            sa.select(Trial.trial_id, Trial.state, Trial.params, Trial.values, Trial.best_val_loss, Trial.best_step,
                      Trial.config_hash).where(Trial.study_id == study_id).order_by(Trial.number)
        ).all()  # fmt: skip
        if len(rows) >= study.n_trials or study.state == "complete":
            return None
        view = _view(engine, study, rows)
        built = _choose(study, rows, view)
        if built is None:  # nothing new left in the space: the study ends with what it has
            s.execute(sa.update(Study).where(Study.study_id == study_id).values(state="complete", n_trials=len(rows)))
            return None
        ctx = study_config(study).context
        row = trial_row(study_id, len(rows), built, ctx.architecture_ids(), max_attempts=ctx.max_attempts)
        trial_id = s.execute(sa.insert(Trial.__table__).values(**row).returning(Trial.trial_id)).scalar_one()
        view.known[trial_id] = (view.last_asked, "pending")
        return trial_id


# --------------------------------------------------------------------------------------
# a per-process cache of Optuna's view, kept in step with the database on every ask
# --------------------------------------------------------------------------------------
@dataclass
class _View:
    ostudy: optuna.Study
    factors: list
    distributions: dict
    known: dict = field(default_factory=dict)  # seqdb trial_id -> (Optuna trial id, seqdb state)
    last_asked: int = -1


_VIEWS: dict[tuple[str, int], _View] = {}
_RUNNING = ("pending", "running", "stopped")


def _view(engine: Engine, study: Study, rows: list) -> _View:
    """The cached view updated with new trials and finished states; rebuilt from scratch when
    the database went anywhere else (trials deleted, a finished trial reopened)."""
    key = (str(engine.url), study.study_id)
    view = _VIEWS.get(key)
    by_id = {r.trial_id: r for r in rows}
    if view is None or any(tid not in by_id for tid in view.known) or _reopened(view, by_id):
        ostudy, factors, dists = build_optuna_study(study, rows)
        view = _VIEWS[key] = _View(ostudy, factors, dists)
        for t in ostudy.get_trials(deepcopy=False):
            tid = t.user_attrs["trial_id"]
            view.known[tid] = (t._trial_id, by_id[tid].state)
        return view
    n_obj = len(study.objectives)
    storage = view.ostudy._storage
    for row in rows:
        if row.trial_id not in view.known:
            ft = frozen_trial(row, view.factors, view.distributions, n_obj)
            if ft is not None:
                view.ostudy.add_trial(ft)
                view.known[row.trial_id] = (view.ostudy.get_trials(deepcopy=False)[-1]._trial_id, row.state)
        elif view.known[row.trial_id][1] != row.state and row.state not in _RUNNING:
            otid = view.known[row.trial_id][0]
            ft = frozen_trial(row, view.factors, view.distributions, n_obj)
            for step, value in ft.intermediate_values.items():
                storage.set_trial_intermediate_value(otid, step, value)
            storage.set_trial_state_values(otid, ft.state, ft.values)
            view.known[row.trial_id] = (otid, row.state)
    return view


def _reopened(view: _View, by_id: dict) -> bool:
    return any(state not in _RUNNING and by_id[tid].state in _RUNNING for tid, (_, state) in view.known.items())


def _choose(study: Study, rows: list, view: _View) -> Optional[Any]:
    """Ask Optuna until it proposes a valid, in-budget configuration not in the study."""
    ctx = study_config(study).context
    seen = {r.config_hash for r in rows}
    ostudy, factors, distributions = view.ostudy, view.factors, view.distributions
    ostudy.sampler = make_sampler(study, len(rows))
    for _ in range(MAX_ASKS):
        trial = ostudy.ask(distributions)
        built = _valid_new(ctx, config_from_optuna(factors, trial.params), seen)
        if built is not None:
            view.last_asked = trial._trial_id
            return built
        ostudy.tell(trial, state=optuna.trial.TrialState.FAIL)  # steer away from it
    rng = random.Random(ctx.seed + len(rows))
    for _ in range(20 * MAX_ASKS):
        config: dict = {}
        for factor in factors:
            config.update(draw(factor, rng))
        built = _valid_new(ctx, config, seen)
        if built is not None:
            ostudy.add_trial(frozen_config_trial(factors, distributions, config))
            view.last_asked = ostudy.get_trials(deepcopy=False)[-1]._trial_id
            return built
    return None


def frozen_config_trial(factors: list, distributions: dict, config: dict) -> optuna.trial.FrozenTrial:
    from seqdb.search.space import optuna_from_config

    return optuna.trial.create_trial(
        state=optuna.trial.TrialState.RUNNING, params=optuna_from_config(factors, config), distributions=distributions
    )


def _valid_new(ctx: StudyContext, config: dict, seen: set[str]):  # noqa: ANN202
    try:
        built = build_trial(ctx, config)
    except ConfigError:
        return None
    if not ctx.in_budget(built.counts.total) or built.config.config_hash() in seen:
        return None
    return built


def tell(engine: Engine, trial_id: int, *, state: str = TrialState.completed.value, values: Optional[list[float]] = None) -> None:
    """Record a trial's outcome outside the runner (benchmarks, tests, imports): state,
    objective values and the first value as best_val_loss."""
    update: dict[str, Any] = {"state": state, "finished_at": utcnow(), "values": values}
    if values:
        update["best_val_loss"] = float(values[0])
    with session_scope(engine) as s:
        s.execute(sa.update(Trial).where(Trial.trial_id == trial_id).values(**update))
