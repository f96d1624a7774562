"""Seed replicates: each budget's best search trial rerun with new seeds.

A replicate is a new pending trial of the same search study: the best trial's configuration
with `seed` (and `training.seed`) replaced, so its config_hash differs; `trial.seed` holds the
seed and `trial.replicate_of` the best trial's id. Workers run replicates like any trial; the
`scaling_points` view and the fit use them as seed replicates of that budget (mean and
spread), never as search effort or as the best. The seeds are the best trial's seed + 1 ..
+ k, so asking twice for 3 seeds adds nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import sqlalchemy as sa

from seqdb.config.trial import TrialConfig
from seqdb.db.engine import session_scope
from seqdb.db.lookup import find_or_raise
from seqdb.db.models import Budget, Experiment, Study, Trial, utcnow
from seqdb.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

MAX_SEEDS = 100


@dataclass(frozen=True)
class Replicate:
    budget: str
    replicate_of: int
    trial_id: int
    seed: int
    created: bool  # False: this seed was already there


def _studies(s, experiment: str, horizon: int, n_params: Optional[int]) -> list[tuple[Study, Budget]]:  # noqa: ANN001
    exp = find_or_raise(s, Experiment, experiment, column=Experiment.name, hint="see `seqdb experiment list`")
    stmt = (sa.select(Study, Budget).join(Budget, Budget.budget_id == Study.budget_id)
            .where(Study.experiment_id == exp.experiment_id, Study.horizon == horizon, Study.kind == "search")
            .order_by(Budget.n_params))
    if n_params is not None:
        stmt = stmt.where(Budget.n_params == n_params)
    rows = [tuple(r) for r in s.execute(stmt).all()]
    if not rows:
        what = f"budget {n_params:,} " if n_params is not None else ""
        raise NotFoundError(f"experiment {experiment!r} has no {what}search study at horizon {horizon}; see `seqdb study list`")
    return rows


def best_search_trial(s, study_id: int) -> Optional[Trial]:  # noqa: ANN001
    """The study's best completed search trial (lowest loss, then lowest id; replicates excluded)."""
    stmt = (sa.select(Trial).where(Trial.study_id == study_id, Trial.state == "completed", Trial.best_val_loss.is_not(None),
                                   Trial.replicate_of.is_(None)).order_by(Trial.best_val_loss, Trial.trial_id).limit(1))
    return s.execute(stmt).scalars().first()


def _replica_row(best: Trial, seed: int, number: int) -> Trial:
    config = TrialConfig.model_validate(best.config)
    config = config.model_copy(update={"seed": seed, "training": config.training.model_copy(update={"seed": seed})})
    label = f"{best.label} (seed {seed})" if best.label else f"seed {seed}"
    return Trial(study_id=best.study_id, number=number, config_hash=config.config_hash(), architecture_id=best.architecture_id,
                 label=label[:200], param_count=best.param_count, config=config.model_dump(mode="json"), params=best.params,
                 state="pending", max_attempts=best.max_attempts, created_at=utcnow(), seed=seed, replicate_of=best.trial_id)


def _replicate_study(s, study: Study, budget: Budget, seeds: int) -> list[Replicate]:  # noqa: ANN001
    best = best_search_trial(s, study.study_id)
    if best is None:
        return []
    base = best.seed if best.seed is not None else int(best.config.get("seed", 0))
    have = {t.seed: t.trial_id for t in s.execute(sa.select(Trial).where(Trial.replicate_of == best.trial_id)).scalars()}
    number = s.execute(sa.select(sa.func.max(Trial.number)).where(Trial.study_id == study.study_id)).scalar() or 0
    out = []
    for seed in range(base + 1, base + 1 + seeds):
        if seed in have:
            out.append(Replicate(budget.label, best.trial_id, have[seed], seed, created=False))
            continue
        number += 1
        row = _replica_row(best, seed, number)
        s.add(row)
        s.flush()
        out.append(Replicate(budget.label, best.trial_id, row.trial_id, seed, created=True))
    return out


def add_replicates(engine: "Engine", experiment: str, horizon: int, *, n_params: Optional[int] = None,
                   seeds: int = 3) -> list[Replicate]:
    """Replicates of each budget's best trial at `horizon` (only `n_params`' budget if given), in one transaction."""
    if not 1 <= seeds <= MAX_SEEDS:
        raise ConfigError(f"--seeds {seeds}: allowed 1..{MAX_SEEDS}")
    with session_scope(engine) as s:
        pairs = _studies(s, experiment, horizon, n_params)
        out = [r for study, budget in pairs for r in _replicate_study(s, study, budget, seeds)]
        if not out:
            raise NotFoundError(f"no completed search trial to replicate for experiment {experiment!r} at horizon {horizon}; "
                                "run the search first (`seqdb run`)")
        return out
