"""`seqdb best`: the best completed trial of a study, from SQL alone.

One (experiment, budget, horizon) has one search study (`study.kind = 'search'`). Its best
trial is the completed trial with the lowest `best_val_loss` (ties: the lower trial number).
The answer is the seeds' `best_params.json`: the architecture with its exact parameter
count, the training parameters, the batch configuration the trainer settled on, the best
validation loss, how many trials the study ran, and the trial's complete config (what the
final training starts from).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.db.engine import session_scope
from seqdb.db.models import Architecture, Budget, Experiment, Study, Trial, TrialState
from seqdb.errors import ConfigError, NotFoundError


@dataclass
class BestTrial:
    experiment: str
    budget: str
    budget_params: int
    horizon: int
    study_id: int
    study_name: str
    trial_id: int
    trial_number: int
    best_val_loss: float
    best_step: Optional[int]
    architecture: dict  # d_model, n_layers, n_head, n_kv_heads, d_ff, param_count, non_embedding_params
    training: dict  # the trial's TrainingConfig
    params: dict  # the searched parameters only (flat)
    batch_config: dict  # physical batch, accumulation, effective batch
    n_trials: dict  # per state, plus "total"
    config: dict = field(repr=False)  # the complete TrialConfig JSON
    dataset_id: Optional[int] = None

    def to_json(self) -> dict:
        return asdict(self)


def budget_params(text: str) -> int:
    """The parameter count a budget string names (`20M` -> 20_000_000); a ConfigError listing
    the accepted forms when it is not one."""
    from seqdb.experiment.budgets import parse_budget

    return int(parse_budget(text))


def find_study(session, budget: str, horizon: int, experiment: Optional[str], kind: str = "search") -> tuple[Study, Budget, Experiment]:
    """The study of (experiment, budget, horizon, kind); the experiment may be omitted when only
    one experiment has such a study. Errors name what exists."""
    n_params = budget_params(budget)
    # -- candidate studies: the budget matches by its label (case-insensitive) or its count
    budget_match = sa.or_(sa.func.lower(Budget.label) == budget.strip().lower(), Budget.n_params == n_params)
    query = (
        sa.select(Study, Budget, Experiment)
        .join(Budget, Budget.budget_id == Study.budget_id)
        .join(Experiment, Experiment.experiment_id == Study.experiment_id)
        .where(budget_match, Study.horizon == horizon, Study.kind == kind)
        .order_by(Study.study_id)
    )
    if experiment is not None:
        query = query.where(Experiment.name == experiment)
    rows = session.execute(query).all()
    if not rows:
        scope = f" in experiment {experiment!r}" if experiment else ""
        have = _existing_studies(session, kind)
        raise NotFoundError(f"no {kind} study for budget {budget} horizon {horizon}{scope}; existing: {have or 'none'}")
    if len(rows) > 1:
        names = ", ".join(sorted({r[2].name for r in rows}))
        raise ConfigError(f"budget {budget} horizon {horizon} has studies in several experiments ({names}); pass --experiment NAME")
    return rows[0]


def _existing_studies(session, kind: str) -> str:
    rows = session.execute(
        sa.select(Experiment.name, Budget.label, Study.horizon)
        .join(Budget, Budget.budget_id == Study.budget_id)
        .join(Experiment, Experiment.experiment_id == Study.experiment_id)
        .where(Study.kind == kind)
        .order_by(Experiment.name, Budget.n_params, Study.horizon)
        .limit(12)
    ).all()
    return ", ".join(f"{e} {b} h{h}" for e, b, h in rows)


def trial_counts(session, study_id: int) -> dict[str, int]:
    rows = session.execute(
        sa.select(Trial.state, sa.func.count()).where(Trial.study_id == study_id).group_by(Trial.state)
    ).all()
    counts = {state: int(n) for state, n in rows}
    counts["total"] = sum(counts.values())
    return counts


def best_trial(engine: Engine, budget: str, horizon: int, experiment: Optional[str] = None) -> BestTrial:
    """The best completed trial of the search study for (experiment, budget, horizon)."""
    with session_scope(engine, write=False) as s:
        study, bud, exp = find_study(s, budget, horizon, experiment)
        # -- best trial: lowest best_val_loss among completed trials, ties to the lower number
        row = s.execute(
            sa.select(Trial, Architecture)
            .outerjoin(Architecture, Architecture.architecture_id == Trial.architecture_id)
            .where(
                Trial.study_id == study.study_id,
                Trial.state == TrialState.completed.value,
                Trial.best_val_loss.is_not(None),
            )
            .order_by(Trial.best_val_loss.asc(), Trial.number.asc())
            .limit(1)
        ).first()
        counts = trial_counts(s, study.study_id)
        if row is None:
            states = ", ".join(f"{n} {k}" for k, n in counts.items() if k != "total") or "no trials"
            raise NotFoundError(
                f"no completed trial for budget {bud.label} horizon {horizon} in experiment {exp.name!r} "
                f"(study {study.name}: {states}); run `seqdb run --budget {bud.label} --horizon {horizon}`"
            )
        trial, arch = row
        return BestTrial(
            experiment=exp.name,
            budget=bud.label,
            budget_params=int(bud.n_params),
            horizon=horizon,
            study_id=study.study_id,
            study_name=study.name,
            trial_id=trial.trial_id,
            trial_number=trial.number,
            best_val_loss=float(trial.best_val_loss),
            best_step=trial.best_step,
            architecture=_architecture(trial, arch),
            training=dict(trial.config.get("training", {})),
            params=dict(trial.params or {}),
            batch_config=dict(trial.batch_config or {}),
            n_trials=counts,
            config=dict(trial.config),
            dataset_id=study.dataset_id,
        )


def _architecture(trial: Trial, arch: Optional[Architecture]) -> dict:
    """The architecture row when the trial names one; else the trial config's model section."""
    model = dict(trial.config.get("model", {}))
    out = {k: model.get(k) for k in ("d_model", "n_layers", "n_head", "n_kv_heads", "d_ff")}
    out.update({k: model.get(k) for k in ("activation", "attention", "positional", "norm", "prenorm", "dropout")})
    out["param_count"] = trial.param_count
    out["non_embedding_params"] = None
    if arch is not None:
        out.update(
            d_model=arch.d_model, n_layers=arch.n_layers, n_head=arch.n_head, n_kv_heads=arch.n_kv_heads, d_ff=arch.d_ff,
            non_embedding_params=int(arch.non_embedding_params), architecture_id=arch.architecture_id,
        )
        out["param_count"] = trial.param_count if trial.param_count is not None else int(arch.param_count)
    return out


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write JSON to `path` through a temp file + rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=False, default=str)
            fh.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; an export is for others to read too
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
