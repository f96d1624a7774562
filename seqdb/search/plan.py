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


# --------------------------------------------------------------------------------------
# cost: how long the open trials of some studies take on a device
# --------------------------------------------------------------------------------------
# Training FLOPs per token (Kaplan et al. 2020): 6 x non-embedding parameters (forward and
# backward through every weight) + 6 x layers x context x d_model (attention scores).
LONG_RUN_S = 3600.0  # a budget estimated to take longer than this gets a warning


@dataclass(frozen=True)
class TrialCost:
    trial_id: int
    study_id: int
    budget: str
    state: str
    steps_total: int  # upper bound: max_epochs x batches per epoch (or max_steps)
    steps_done: int
    flops_per_step: float

    @property
    def flops_left(self) -> float:
        return max(0, self.steps_total - self.steps_done) * self.flops_per_step


def flops_per_step(cfg) -> float:  # noqa: ANN001 - a TrialConfig
    """Training FLOPs of one optimizer step (the effective batch of full context windows)."""
    from seqdb.model.params import param_count

    m, ctx = cfg.model, cfg.data.context_length
    per_token = 6 * param_count(m, cfg.data).non_embedding + 6 * m.n_layers * ctx * m.d_model
    return float(per_token * ctx * cfg.training.effective_batch_size)




def trial_costs(engine: Engine, study_ids: list[int], states: tuple[str, ...] = ("pending", "stopped", "running")) -> list[TrialCost]:
    """The cost of every trial of `study_ids` in `states` (default: the open ones)."""
    from seqdb.config.trial import TrialConfig
    from seqdb.db.models import Budget, Dataset, Study, Trial

    with session_scope(engine, write=False) as s:
        rows = s.execute(
            sa.select(Trial.trial_id, Trial.study_id, Trial.state, Trial.step, Trial.config, Budget.label, Dataset.splits)
            .join(Study, Study.study_id == Trial.study_id).join(Budget, Budget.budget_id == Study.budget_id)
            .outerjoin(Dataset, Dataset.dataset_id == Study.dataset_id)
            .where(Trial.study_id.in_(study_ids), Trial.state.in_(states)).order_by(Trial.trial_id)
        ).all()
    out = []
    for r in rows:
        cfg = TrialConfig.model_validate(r.config)
        n_windows = int(((r.splits or {}).get("train") or {}).get("windows") or 1)
        out.append(TrialCost(r.trial_id, r.study_id, r.label, r.state, cfg.training.total_steps(n_windows), r.step or 0, flops_per_step(cfg)))
    return out


def measure_flops_per_s(device: str, seconds: float = 0.3) -> float:
    """Dense fp32 matmul FLOP/s measured on `device` (an upper bound on what training
    reaches, so time estimates from it are lower bounds)."""
    import time

    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is visible to torch {torch.__version__}; allowed here: cpu")
    a = torch.randn(512, 512, device=device)
    b = torch.randn(512, 512, device=device)
    n, t0 = 0, time.perf_counter()
    while True:
        a @ b
        n += 1
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and n >= 3:
            return 2 * 512**3 * n / elapsed


@dataclass(frozen=True)
class BudgetEstimate:
    budget: str
    trials: int
    steps: int  # steps left, summed over the open trials
    flops: float
    seconds: float  # at the measured throughput (a lower bound)


def budget_estimates(costs: list[TrialCost], flops_per_s: float) -> list[BudgetEstimate]:
    """Open work per budget, in the order the budgets first appear."""
    by: dict[str, list[TrialCost]] = {}
    for c in costs:
        by.setdefault(c.budget, []).append(c)
    out = []
    for budget, cs in by.items():
        flops = sum(c.flops_left for c in cs)
        steps = sum(max(0, c.steps_total - c.steps_done) for c in cs)
        out.append(BudgetEstimate(budget, len(cs), steps, flops, flops / flops_per_s))
    return out


def long_run_warnings(estimates: list[BudgetEstimate], device: str, flops_per_s: float, workers: int = 1,
                      limit_s: float = LONG_RUN_S) -> list[str]:
    """One line per budget whose open work takes longer than `limit_s` with `workers`
    workers, with what would make it shorter. A warning, never a refusal."""
    lines = []
    fits = [e for e in estimates if e.seconds / max(1, workers) <= limit_s]
    smaller = [max(fits, key=lambda e: e.seconds).budget] if fits else []  # the largest budget that fits
    for e in estimates:
        wall = e.seconds / max(1, workers)
        if wall <= limit_s:
            continue
        hints = ["--device cuda"] if device == "cpu" else []
        hints.append(f"smaller budgets (--budget {smaller[0]})" if smaller else "smaller budgets")
        hints.append("fewer epochs or max_steps")
        lines.append(f"budget {e.budget}: {e.trials} open trial(s), {e.steps:,} steps, {e.flops:.2e} FLOPs; at {flops_per_s / 1e9:.0f} GFLOP/s "
                     f"measured on {device} that is at least {human_seconds(wall)} with {workers} worker(s) "
                     f"({human_seconds(e.seconds / max(1, e.trials))} per trial). Faster: {', '.join(hints)}")
    return lines


def human_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
