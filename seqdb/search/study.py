"""Studies: one search per (experiment, budget, horizon), created idempotently.

`ensure_study` prepares the data (a cache hit when done), stores the budget and its
architectures (exact counts, deterministic order), the study (strategy, trials, objectives,
pruner, epoch limit, dataset) and, for grid / sample / ablation, every expanded
configuration as a `pending` trial, all in one transaction. Two workers calling it at once
get one study: the loser's insert hits a unique constraint, rolls back, and reads the
winner's study.

Equal effort: every budget of an experiment gets the same number of trials (tpe / nsga2 /
sample) and the same epoch limit unless the YAML sets `equal_effort: false` and per-budget
values. A grid's size can still differ by budget when a different number of architectures
fits; `seqdb study show` says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from seqdb.config.study import Effort, StudyConfig, StudyContext
from seqdb.config.trial import DataSpec, ModelConfig, TrialConfig
from seqdb.db.engine import session_scope
from seqdb.db.lookup import find_or_raise
from seqdb.db.models import Architecture, Budget, Dataset, Experiment, Study, Trial, TrialState, utcnow
from seqdb.errors import ConfigError
from seqdb.experiment.budgets import format_budget, parse_budget
from seqdb.model.params import param_count
from seqdb.experiment.ladder import ladder_tokens
from seqdb.search.ladder import ladder_trials
from seqdb.search.build import BuiltTrial, build_trial, canonical_attention, subset_spec
from seqdb.search.space import (
    Factor, ablation_configs, grid_configs, grid_size, sample_configs, shape_label, space_factors,
)  # fmt: skip
from seqdb.config.search import SHAPE_KEYS, SearchSpace, SearchSpec

MAX_GRID = 200_000  # configurations a grid study may expand to


# --------------------------------------------------------------------------------------
# planning (no database writes): architectures, factors, expanded trials
# --------------------------------------------------------------------------------------
@dataclass
class StudyPlan:
    ctx: StudyContext
    spec: SearchSpec
    factors: list[Factor]
    trials: list[BuiltTrial]
    n_trials: int
    stats: dict = field(default_factory=dict)


def search_spec(cfg: Any) -> SearchSpec:
    """The experiment's `search:` section as a SearchSpec (a dict is validated here)."""
    search = getattr(cfg, "search", None)
    if isinstance(search, SearchSpec):
        return search
    from pydantic import ValidationError

    try:
        return SearchSpec.model_validate(search or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in ("search", *err["loc"]))
        raise ConfigError(f"{where}: {err['msg'].removeprefix('Value error, ')}") from None


def check_space_columns(space: Optional[SearchSpace], columns: dict[str, str]) -> None:
    """Feature subsets, column types and embedding sizes must name the experiment's columns."""
    if space is None:
        return
    allowed = ", ".join(sorted(columns))
    categorical = sorted(c for c, k in columns.items() if k == "categorical")
    for i, subset in enumerate(space.input_columns or []):
        for col in subset:
            if col not in columns:
                raise ConfigError(f"search.space.input_columns.{i}: column {col!r} is not in data.columns; allowed: {allowed}")
    types = space.column_types if isinstance(space.column_types, list) else [space.column_types] if space.column_types else []
    for i, mapping in enumerate(types):
        for col, kind in (mapping or {}).items():
            if columns.get(col) != kind:
                raise ConfigError(f"search.space.column_types.{i}.{col}: {kind!r} but data.columns says {columns.get(col)!r}; column types come from data.columns")
    dims = [(f"embedding_dim.{c}", c) for c in (space.embedding_dim or {})]
    lists = space.embedding_dims if isinstance(space.embedding_dims, list) else [space.embedding_dims] if space.embedding_dims else []
    dims += [(f"embedding_dims.{i}.{c}", c) for i, m in enumerate(lists) for c in (m or {})]
    for where, col in dims:
        if col not in categorical:
            raise ConfigError(f"search.space.{where}: {col!r} is not a categorical column; allowed: {', '.join(categorical) or '(none)'}")


def budget_architectures(cfg: Any, spec: SearchSpec, n_params: int, base_spec: DataSpec) -> list[dict]:
    """The budget's architectures, ordered by (count, shape): from the experiment's
    architecture grid, or from the shape parameters in search.space (sequifier-linked)."""
    from seqdb.model.grid import enumerate_architectures

    base = _model_defaults(cfg)
    grid = {k: v for k, v in _dump(getattr(cfg, "architecture_grid", None)).items() if v is not None}
    given = spec.space.given() if spec.space is not None else {}
    shape_space = {k: v for k, v in given.items() if k in SHAPE_KEYS or k == "embedding_dims"}
    if not shape_space:
        options = [{}]
    else:
        options = list(grid_configs(space_factors(SearchSpace.model_validate(shape_space))))
    found: dict[tuple, dict] = {}
    errors = []
    for option in options:
        dims = option.pop("embedding_dims", None)
        spec_for = subset_spec(base_spec, None, tuple(sorted(dims.items())) if dims else None)
        option_grid = {**grid, **{k: [v] for k, v in option.items()}}
        try:
            cands = enumerate_architectures(n_params, cfg.tolerance, spec_for, base, option_grid, max_candidates=10**6 if option else 16)
        except ConfigError as exc:
            errors.append(exc.message)
            continue
        for cand in cands:
            model = canonical_attention(cand.model.model_dump(mode="json"))
            counts = param_count(ModelConfig(**model), spec_for)
            if not _in_budget(counts.total, n_params, cfg.tolerance):
                continue
            shape = _shape(model)
            found.setdefault(shape + (json.dumps(dims, sort_keys=True),), {
                **{k: model[k] for k in SHAPE_KEYS}, "config": model, "embedding_dims": dims,
                "param_count": counts.total, "non_embedding_params": counts.non_embedding,
            })  # fmt: skip
    if not found:
        detail = errors[0] if errors else "no shape in tolerance"
        raise ConfigError(f"budget {format_budget(n_params)}: {detail}")
    ordered = sorted(found.values(), key=lambda a: (a["param_count"], _shape(a["config"]), json.dumps(a["embedding_dims"], sort_keys=True)))
    for i, arch in enumerate(ordered):
        arch["architecture"] = i
    return ordered


def _shape(model: dict) -> tuple:
    heads = model["n_head"]
    return (model["d_model"], model["n_layers"], heads, model.get("n_kv_heads") or heads, model["d_ff"])


def _in_budget(total: int, n_params: int, tolerance: float) -> bool:
    return n_params * (1 - tolerance) <= total <= n_params * (1 + tolerance)


def _dump(section: Any) -> dict:
    if section is None:
        return {}
    return section.model_dump(mode="json") if hasattr(section, "model_dump") else dict(section)


def _model_defaults(cfg: Any) -> dict:
    return {k: v for k, v in _dump(getattr(cfg, "model", None)).items() if v is not None}


def _arch_option(arch: dict) -> dict:
    return {"architecture": arch["architecture"], **{k: arch[k] for k in SHAPE_KEYS}}


def plan_study(cfg: Any, key: StudyKey, base_spec: DataSpec, *, kind: str = "search") -> StudyPlan:
    """Everything a study needs, computed without touching the database."""
    spec = search_spec(cfg)
    check_space_columns(spec.space, dict(cfg.data.columns))
    training = _dump(cfg.training)
    ctx = StudyContext(
        experiment=cfg.name, budget=key.budget, n_params=key.n_params, tolerance=cfg.tolerance, horizon=key.horizon,
        seed=spec.seed if spec.seed is not None else cfg.seed,
        max_epochs=spec.epochs_for(key.budget, training.get("max_epochs", 10)),
        training=training, data_spec=base_spec.model_dump(mode="json"), max_attempts=getattr(cfg, "max_attempts", 3),
    )  # fmt: skip
    ctx.architectures = budget_architectures(cfg, spec, key.n_params, base_spec)
    factors = space_factors(spec.space, [_arch_option(a) for a in ctx.architectures])
    plan = StudyPlan(ctx, spec, factors, [], 0, {"grid_size": grid_size_or_none(factors)})
    if kind != "search" or spec.is_sampled:
        plan.n_trials = 1 if kind != "search" else spec.trials_for(key.budget)
        return plan
    plan.trials = expand_trials(plan)
    rungs = ladder_tokens(cfg, key.n_params)  # the (size, tokens) ladder: each configuration once per rung
    if rungs:
        plan.trials = ladder_trials(plan.trials, rungs)
    plan.n_trials = len(plan.trials)
    return plan


def grid_size_or_none(factors: list[Factor]) -> Optional[int]:
    try:
        return grid_size(factors)
    except ConfigError:
        return None  # a continuous range: no finite grid


@dataclass(frozen=True)
class StudyKey:
    """A (budget, horizon) checked against the experiment: the budget as written there."""

    budget: str  # label as written in the experiment: "2M"
    n_params: int
    horizon: int


def study_key(cfg: Any, budget: str | int, horizon: int) -> StudyKey:
    """Parse the budget and check budget and horizon against the experiment (once per study)."""
    n = parse_budget(budget)
    labels = [str(text) for text, count in cfg.budget_pairs if count == n]
    if not labels:
        raise ConfigError(f"budget {budget} is not a budget of experiment {cfg.name}; allowed: {', '.join(map(str, cfg.budgets))}")
    if horizon not in cfg.horizons:
        raise ConfigError(f"horizon {horizon} is not a horizon of experiment {cfg.name}; allowed: {', '.join(map(str, cfg.horizons))}")
    return StudyKey(labels[0], n, horizon)


def expand_trials(plan: StudyPlan) -> list[BuiltTrial]:
    """grid / sample / ablation: build every configuration, keep the valid, unique ones
    within the budget (what was dropped is counted in plan.stats)."""
    spec, factors, ctx = plan.spec, plan.factors, plan.ctx
    if spec.strategy == "grid":
        size = plan.stats["grid_size"]
        if size is None:
            grid_size(factors)  # raises the ConfigError naming the range without a grid
        if size > MAX_GRID:
            raise ConfigError(f"search.space expands to {size:,} configurations (limit {MAX_GRID:,}); use strategy: sample with n_samples")
        labelled = [(None, c) for c in grid_configs(factors)]
        want = None
    elif spec.strategy == "sample":
        want = spec.trials_for(ctx.budget)
        labelled = [(None, c) for c in sample_configs(factors, 4 * want + 16, ctx.seed)]
    else:  # ablation
        labelled = ablation_configs(factors, _ablation_baseline(spec, ctx))
        want = None
    return _build_unique(plan, labelled, want)


def _ablation_baseline(spec: SearchSpec, ctx: StudyContext) -> dict:
    """The baseline; its architecture defaults to the one closest to the budget."""
    baseline = dict(spec.baseline or {})
    if "architecture" not in baseline and not any(k in baseline for k in SHAPE_KEYS):
        closest = min(ctx.architectures, key=lambda a: (abs(a["param_count"] - ctx.n_params), a["architecture"]))
        baseline["architecture"] = closest["architecture"]
    return baseline


def _build_unique(plan: StudyPlan, labelled: list[tuple[Optional[str], dict]], want: Optional[int]) -> list[BuiltTrial]:
    out: list[BuiltTrial] = []
    seen: set[str] = set()
    stats = plan.stats
    stats.update(expanded=len(labelled), out_of_budget=0, invalid=0, duplicates=0)
    for label, params in labelled:
        try:
            built = build_trial(plan.ctx, params, label)
        except ConfigError:
            stats["invalid"] += 1
            if label == "baseline":
                raise
            continue
        if not plan.ctx.in_budget(built.counts.total):
            stats["out_of_budget"] += 1
            continue
        digest = built.config.config_hash()
        if digest in seen:
            stats["duplicates"] += 1
            continue
        seen.add(digest)
        out.append(built)
        if want is not None and len(out) == want:
            break
    if not out:
        raise ConfigError(
            f"budget {plan.ctx.budget}: no configuration of search.space fits ±{plan.ctx.tolerance:.0%} of "
            f"{plan.ctx.n_params:,} parameters ({stats['out_of_budget']} out of budget, {stats['invalid']} invalid)"
        )
    return out


# --------------------------------------------------------------------------------------
# writing: budget, architectures, study, trials in one transaction
# --------------------------------------------------------------------------------------
def study_name(experiment: str, budget_label: str, horizon: int, kind: str = "search") -> str:
    base = f"{experiment}/{budget_label}/h{horizon}"
    return base if kind == "search" else f"{base}/{kind}"


def find_study(session: Session, experiment_id: int, n_params: int, horizon: int, kind: str = "search") -> Optional[Study]:
    stmt = (
        sa.select(Study)
        .join(Budget, Budget.budget_id == Study.budget_id)
        .where(Study.experiment_id == experiment_id, Budget.n_params == n_params, Study.horizon == horizon, Study.kind == kind)
    )
    return session.execute(stmt).scalars().first()


def create_study(
    engine: Engine, experiment: Experiment, cfg: Any, budget: str | int, horizon: int, base_spec: DataSpec,
    *, dataset_id: Optional[int] = None, kind: str = "search",
) -> Study:  # fmt: skip
    """Idempotent: the existing study, or a new one with its budget, architectures and trials."""
    return create_study_for(engine, experiment, cfg, study_key(cfg, budget, horizon), base_spec, dataset_id=dataset_id, kind=kind)


def create_study_for(
    engine: Engine, experiment: Experiment, cfg: Any, key: StudyKey, base_spec: DataSpec,
    *, dataset_id: Optional[int] = None, kind: str = "search",
) -> Study:  # fmt: skip
    """create_study for a checked key."""
    existing = _existing(engine, experiment, key, kind)
    if existing is not None:
        return existing
    plan = plan_study(cfg, key, base_spec, kind=kind)
    for _attempt in range(3):
        try:
            with session_scope(engine) as s:
                # Re-check inside the write transaction (SQLite: BEGIN IMMEDIATE serialises).
                existing = find_study(s, experiment.experiment_id, key.n_params, key.horizon, kind)
                if existing is not None:
                    return existing
                return write_plan(s, experiment.experiment_id, plan, dataset_id, kind)
        except IntegrityError:
            continue  # a concurrent creator won (Postgres): read its rows on the next pass
    raise ConfigError(f"could not create study {study_name(cfg.name, key.budget, key.horizon, kind)}: concurrent writers kept conflicting")


def _existing(engine: Engine, experiment: Experiment, key: StudyKey, kind: str) -> Optional[Study]:
    with session_scope(engine, write=False) as s:
        return find_study(s, experiment.experiment_id, key.n_params, key.horizon, kind)


def write_plan(s: Session, experiment_id: int, plan: StudyPlan, dataset_id: Optional[int], kind: str) -> Study:
    ctx, spec = plan.ctx, plan.spec
    budget = _ensure_budget(s, experiment_id, ctx)
    arch_ids = _ensure_architectures(s, budget.budget_id, ctx.architectures)
    for arch in ctx.architectures:
        arch["architecture_id"] = arch_ids[arch["architecture"]]
    max_epochs = max([t.config.training.max_epochs for t in plan.trials] or [ctx.max_epochs])
    study = Study(
        experiment_id=experiment_id, budget_id=budget.budget_id, horizon=ctx.horizon,
        name=study_name(ctx.experiment, ctx.budget, ctx.horizon, kind), strategy=spec.strategy if kind == "search" else kind,
        n_trials=plan.n_trials, max_epochs=max_epochs, pruner=spec.pruner.name, kind=kind, dataset_id=dataset_id,
        objectives=[{"name": o.name, "direction": o.direction} for o in spec.objectives],
        config=StudyConfig(
            search=spec, context=ctx, stats=plan.stats, factors=[f.name for f in plan.factors],
            effort=Effort(equal_effort=spec.equal_effort, n_trials=plan.n_trials, max_epochs=max_epochs),
        ).model_dump(mode="json"),
    )  # fmt: skip
    s.add(study)
    s.flush()
    rows = [trial_row(study.study_id, i, t, arch_ids, max_attempts=ctx.max_attempts) for i, t in enumerate(plan.trials)]
    if rows:
        s.execute(sa.insert(Trial.__table__), rows)
    return study


def trial_row(study_id: int, number: int, built: BuiltTrial, arch_ids: dict[int, int], *, max_attempts: int = 3) -> dict:
    """One `trial` row (every NOT NULL column given, for bulk inserts)."""
    return {
        "study_id": study_id, "number": number, "config_hash": built.config.config_hash(),
        "architecture_id": arch_ids.get(built.architecture), "label": built.label, "param_count": built.counts.total,
        "config": built.config.model_dump(mode="json"), "params": built.params,
        "state": TrialState.pending.value, "attempt": 0, "max_attempts": max_attempts, "created_at": utcnow(),
        "step": 0, "epochs_done": 0, "seed": built.config.seed,
    }  # fmt: skip


def _ensure_budget(s: Session, experiment_id: int, ctx: StudyContext) -> Budget:
    budget = s.execute(sa.select(Budget).where(Budget.experiment_id == experiment_id, Budget.n_params == ctx.n_params)).scalars().first()
    if budget is None:
        budget = Budget(experiment_id=experiment_id, label=ctx.budget, n_params=ctx.n_params, tolerance=ctx.tolerance)
        s.add(budget)
        s.flush()
    return budget


def _ensure_architectures(s: Session, budget_id: int, architectures: list[dict]) -> dict[int, int]:
    """ordinal -> architecture_id; rows another study of this budget stored are reused."""
    rows = s.execute(sa.select(Architecture).where(Architecture.budget_id == budget_id)).scalars().all()
    by_shape = {(r.d_model, r.n_layers, r.n_head, r.n_kv_heads, r.d_ff): r for r in rows}
    next_ordinal = max((r.ordinal for r in rows), default=-1) + 1
    out: dict[int, int] = {}
    for arch in architectures:
        shape = _shape(arch["config"])
        row = by_shape.get(shape)
        if row is None:
            row = Architecture(
                budget_id=budget_id, ordinal=next_ordinal if rows else arch["architecture"], d_model=shape[0],
                n_layers=shape[1], n_head=shape[2], n_kv_heads=shape[3], d_ff=shape[4], param_count=arch["param_count"],
                non_embedding_params=arch["non_embedding_params"],
                config={**arch["config"], "embedding_dims": arch["embedding_dims"], "label": shape_label(arch["config"])},
            )  # fmt: skip
            next_ordinal += 1 if rows else 0
            s.add(row)
            s.flush()
            by_shape[shape] = row
        out[arch["architecture"]] = row.architecture_id
    return out


# --------------------------------------------------------------------------------------
# the public entry points
# --------------------------------------------------------------------------------------
def ensure_study(engine: Engine, project: Any, experiment_name: str, budget: str | int, horizon: int, *, kind: str = "search") -> Study:
    """The study of (experiment, budget, horizon), created with its trials if missing."""
    from seqdb.experiment.registry import get_experiment

    experiment, cfg = get_experiment(engine, experiment_name)
    return ensure_study_for(engine, project, experiment, cfg, study_key(cfg, budget, horizon), kind=kind)


def ensure_study_for(
    engine: Engine, project: Any, experiment: Experiment, cfg: Any, key: StudyKey,
    *, dataset: Optional[Dataset] = None, kind: str = "search",
) -> Study:  # fmt: skip
    """ensure_study for a checked key; `dataset` is the experiment's prepared data when the
    caller has it (else it is prepared here, a cache hit when done before)."""
    from seqdb.data.prepare import prepare_dataset
    from seqdb.data.prepared import open_prepared, resolve_dataset_path

    existing = _existing(engine, experiment, key, kind)
    if existing is not None:
        return existing
    dataset = dataset or prepare_dataset(engine, project, cfg.name)
    base_spec = open_prepared(resolve_dataset_path(dataset.path, getattr(project, "artifacts_root", None), getattr(project, "root", None))).data_spec(key.horizon)
    return create_study_for(engine, experiment, cfg, key, base_spec, dataset_id=dataset.dataset_id, kind=kind)


def get_study(engine: Engine, study_id_or_name: int | str) -> Study:
    """The study by id (an int or a string of digits) or by name."""
    key = study_id_or_name
    with session_scope(engine, write=False) as s:
        if isinstance(key, int) or str(key).isdigit():
            return find_or_raise(s, Study, int(key))
        return find_or_raise(s, Study, str(key), column=Study.name)


def objective_values(metrics: dict[str, Any], study: Study, *, trial: Optional[Trial] = None) -> list[float]:
    """A finished trial's objective vector, in the study's objective order.

    `metrics` holds the final measures (val_loss is the best validation loss; latency_ms,
    tokens_per_s, val_accuracy, val_top<k>_accuracy as measured). param_count and
    non_embedding_params fall back to the trial's stored counts."""
    out = []
    for objective in study.objectives:
        name = objective["name"]
        value = metrics.get(name)
        if value is None and trial is not None and name == "param_count":
            value = trial.param_count
        if value is None and trial is not None and name == "non_embedding_params":
            config = TrialConfig.model_validate(trial.config)
            value = param_count(config.model, config.data).non_embedding
        if value is None and trial is not None and name == "val_loss":
            value = trial.best_val_loss
        if value is None:
            known = ", ".join(sorted(k for k in metrics if metrics[k] is not None)) or "(none)"
            raise ConfigError(f"study {study.name}: objective {name!r} was not measured; metrics given: {known}")
        out.append(float(value))
    return out
