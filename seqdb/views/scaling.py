"""The scaling report per (experiment, horizon): the database's points, fitted by `seqdb.scaling`.

The points are each budget's best completed search trial (`scaling_points`), with its seed
replicates (`seqdb replicate`) as replicates of that budget. The fit, its intervals and the
curve's own flags come from `seqdb.scaling.fit.fit_points`, the same code path as
`seqdb scaling fit POINTS.csv`. The database adds the flags only it can see:
- unequal_effort: the budgets got different numbers of completed trials, epochs per trial or
  tokens trained by their best trial;
- study_incomplete: a budget's search study still has trials to run;
- not_converged: a budget's best trial was still improving at its last evaluation;
- edge_of_search_range: a budget's best configuration sits at the edge of a searched range;
- not_scored_on_test (split "test"): a budget's selected trial has no test score.
With split "test" each budget's selected trial is fitted by its test loss (scored once by
`seqdb.results.test_scores`): the curve without the double selection on validation.
N is the exact parameter count of each budget's best trial (not the budget label).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Optional

from seqdb.scaling.fit import FitResult, fit_points
from seqdb.scaling.flags import flag
from seqdb.scaling.points import Point

EFFORT_TOLERANCE = 0.1  # relative spread of trials / epochs per budget that still counts as equal
POINT_COLS = ("budget", "budget_params", "param_count", "best_val_loss", "trial_id", "n_finished", "n_completed",
              "epochs_total", "epochs_mean", "tokens", "n_seeds", "seed_losses", "seed_loss_mean", "seed_log_loss_sd")


@dataclass
class ScalingPoint:
    budget: str
    budget_params: int
    param_count: int
    best_val_loss: float
    trial_id: int
    n_finished: int
    n_completed: int
    epochs_total: int
    epochs_mean: float
    tokens: Optional[int] = None  # trained by the best trial at its finish (None before it was recorded)
    n_seeds: int = 1
    seed_losses: list = field(default_factory=list)  # the best trial's loss first, then its replicates'
    seed_loss_mean: Optional[float] = None
    seed_log_loss_sd: Optional[float] = None
    test_loss: Optional[float] = None  # with split "test": the selected trial's loss on the test split


@dataclass
class HorizonScaling:
    experiment: str
    horizon: int
    points: list[ScalingPoint]
    fit: Optional[FitResult] = None
    message: str = ""
    flags: list[str] = field(default_factory=list)  # the database's own flags (also in fit.flags)
    split: str = "validation"


SPLITS = ("validation", "test")


def fit_input(points: list[ScalingPoint], split: str = "validation") -> list[Point]:
    """One Point per seed of each budget (the seeds of a budget share its group); on the test
    split one Point per budget whose selected trial has a test score."""
    if split == "test":
        return [Point(float(p.param_count), float(p.test_loss), group=p.budget) for p in points if p.test_loss is not None]
    return [Point(float(p.param_count), float(loss), group=p.budget) for p in points for loss in (p.seed_losses or [p.best_val_loss])]


# ------------------------------------------------------------------------------------------
# the flags only the database can see
# ------------------------------------------------------------------------------------------
def _spread(values: list[float]) -> float:
    return (max(values) - min(values)) / max(max(values), 1e-12)


def effort_flags(points: list[ScalingPoint], progress: list[dict]) -> list[str]:
    """Unequal completed trials, epochs per trial or tokens of the best trial across budgets;
    search studies not complete."""
    out = []
    tokens = [p.tokens for p in points]
    checks = [("completed trials", [p.n_completed for p in points]), ("epochs per trial", [p.epochs_mean for p in points])]
    checks += [("tokens trained by the best trial", tokens)] if None not in tokens else []
    for what, values in checks:
        if len(values) > 1 and _spread(values) > EFFORT_TOLERANCE:
            per = ", ".join(f"{p.budget}: {v:g}" for p, v in zip(points, values))
            out.append(flag("unequal_effort", f"the budgets got different {what} ({per}); min-of-trials bias differs per budget"))
    open_ = [f"{r['budget']} ({r['remaining']} to run)" for r in progress if r["remaining"] and r["remaining"] > 0]
    if open_:
        out.append(flag("study_incomplete", f"search studies still running: {', '.join(open_)}"))
    return out


def convergence_flags(points: list[ScalingPoint], best: dict[int, dict]) -> list[str]:
    """Budgets whose best trial reached its best validation loss at its last step."""
    still = [p.budget for p in points if (b := best.get(p.trial_id)) and b["step"] and b["best_step"] is not None
             and b["best_step"] >= b["step"]]
    if not still:
        return []
    return [flag("not_converged", f"the best trial of {', '.join(still)} was still improving at its last step")]


EDGE_FRACTION = 0.05  # of a distribution's range (log range when log: true) that counts as its edge


def _edge(value: object, spec: object) -> Optional[str]:
    """'low' / 'high' when a numeric value is the end of a searched list of >= 3 numbers, or
    within EDGE_FRACTION of the end of a distribution {low, high[, log]}."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if isinstance(spec, list) and len(spec) >= 3 and all(isinstance(v, (int, float)) for v in spec):
        return "low" if value == min(spec) else "high" if value == max(spec) else None
    if not (isinstance(spec, dict) and isinstance(spec.get("low"), (int, float)) and isinstance(spec.get("high"), (int, float))):
        return None
    lo, hi, v = float(spec["low"]), float(spec["high"]), float(value)
    if spec.get("log") and lo > 0 and v > 0:
        lo, hi, v = math.log(lo), math.log(hi), math.log(v)
    if hi <= lo:
        return None
    frac = (v - lo) / (hi - lo)
    return "low" if frac <= EDGE_FRACTION else "high" if frac >= 1 - EDGE_FRACTION else None


def edge_flags(points: list[ScalingPoint], best: dict[int, dict]) -> list[str]:
    """Budgets whose best configuration has a searched parameter at the edge of its range."""
    hits = []
    for p in points:
        b = best.get(p.trial_id) or {}
        space = ((b.get("study_config") or {}).get("search") or {}).get("space") or {}
        for name, value in (b.get("params") or {}).items():
            side = _edge(value, space.get(name))
            if side:
                hits.append(f"{p.budget}: {name}={value:g} at the {side} end")
    if not hits:
        return []
    return [flag("edge_of_search_range", f"best configuration at the edge of the search range ({'; '.join(hits)}): widen it")]


# ------------------------------------------------------------------------------------------
# reading the views
# ------------------------------------------------------------------------------------------
def _where(experiment: Optional[str], horizon: Optional[int], prefix: str = "") -> tuple[str, list]:
    where, params = [], []
    if experiment is not None:
        where.append(f"{prefix}experiment = ?"), params.append(experiment)
    if horizon is not None:
        where.append(f"{prefix}horizon = ?"), params.append(int(horizon))
    return (f"WHERE {' AND '.join(where)}" if where else ""), params


def _points(vc, experiment: Optional[str], horizon: Optional[int]) -> dict[tuple[str, int], list[ScalingPoint]]:  # noqa: ANN001
    from seqdb.views.query import sql

    clause, params = _where(experiment, horizon)
    rows = sql(vc, f"SELECT experiment, horizon, {', '.join(POINT_COLS)} FROM scaling_points {clause} "
                   f"ORDER BY experiment, horizon, param_count", params).to_pylist()
    out: dict[tuple[str, int], list[ScalingPoint]] = {}
    for r in rows:
        key = (r.pop("experiment"), r.pop("horizon"))
        out.setdefault(key, []).append(ScalingPoint(**r))
    return out


def _best_details(vc, experiment: Optional[str], horizon: Optional[int]) -> dict[int, dict]:  # noqa: ANN001
    """trial_id -> step, best_step, params and its study's config, for each best trial."""
    from seqdb.views.query import sql

    clause, params = _where(experiment, horizon, prefix="bt.")
    rows = sql(vc, f"SELECT bt.trial_id, bt.step, bt.best_step, bt.params, s.config AS study_config FROM best_trials bt "
                   f"JOIN tables.study s ON s.study_id = bt.study_id {clause}", params).to_pylist()
    for r in rows:
        for k in ("params", "study_config"):
            r[k] = json.loads(r[k]) if isinstance(r[k], str) else r[k]
    return {r["trial_id"]: r for r in rows}


def _progress(vc, experiment: Optional[str], horizon: Optional[int]) -> dict[tuple[str, int], list[dict]]:  # noqa: ANN001
    from seqdb.views.query import sql

    clause, params = _where(experiment, horizon)
    clause = f"{clause} {'AND' if clause else 'WHERE'} study_kind = 'search'"
    out: dict[tuple[str, int], list[dict]] = {}
    for r in sql(vc, f"SELECT experiment, horizon, budget, remaining FROM study_progress {clause}", params).to_pylist():
        out.setdefault((r["experiment"], r["horizon"]), []).append(r)
    return out


# ------------------------------------------------------------------------------------------
# the report
# ------------------------------------------------------------------------------------------
def _test_losses(vc, hs_list: list[HorizonScaling]) -> None:  # noqa: ANN001
    """Fill each point's test_loss from its trial's `test_loss` metric; flag budgets without one."""
    from seqdb.views.query import sql

    scores = {}
    for trial_id in sorted({p.trial_id for hs in hs_list for p in hs.points}):  # learning_curve(): the per-trial fast path
        rows = sql(vc, "SELECT value FROM learning_curve(?) WHERE metric = 'test_loss'", [trial_id]).to_pylist()
        if rows:
            scores[trial_id] = rows[0]["value"]
    for hs in hs_list:
        hs.split = "test"
        for p in hs.points:
            p.test_loss = scores.get(p.trial_id)
        missing = [p.budget for p in hs.points if p.test_loss is None]
        if missing:
            hs.flags.append(flag("not_scored_on_test", f"budgets without a test score, left out: {', '.join(missing)}"))


def fit_horizon(hs: HorizonScaling, **fit_options) -> HorizonScaling:  # noqa: ANN003
    """Fill `hs.fit` (or `hs.message` when no fit is possible); fit_options go to `fit_points`."""
    from seqdb.errors import ConfigError

    try:
        hs.fit = fit_points(fit_input(hs.points, hs.split), extra_flags=hs.flags, **fit_options)
    except ConfigError as exc:
        if "distinct budgets" not in exc.message and "positive, finite" not in exc.message:  # else a bad option
            raise
        hs.message = f"{len(hs.points)} budget(s) with completed trials: {exc.message}; showing the points only"
    return hs


def scaling_inputs(vc, experiment: Optional[str] = None, horizon: Optional[int] = None,  # noqa: ANN001
                   split: str = "validation") -> list[HorizonScaling]:
    """Points and the database's flags for each (experiment, horizon), not yet fitted; with
    split "test" the points carry their selected trial's test score (`seqdb.results.test_scores`)."""
    if split not in SPLITS:
        from seqdb.errors import ConfigError

        raise ConfigError(f"--split {split!r} is not known (allowed: {', '.join(SPLITS)})")
    best = _best_details(vc, experiment, horizon)
    progress = _progress(vc, experiment, horizon)
    out = []
    for (exp, h), points in _points(vc, experiment, horizon).items():
        flags = effort_flags(points, progress.get((exp, h), [])) + convergence_flags(points, best) + edge_flags(points, best)
        out.append(HorizonScaling(exp, h, points, flags=flags))
    if split == "test":
        _test_losses(vc, out)
    return out


def scaling_report(vc, *, experiment: Optional[str] = None, horizon: Optional[int] = None,  # noqa: ANN001
                   split: str = "validation", **fit_options) -> list[HorizonScaling]:
    """Points, flags, fit, intervals and extrapolation (`at=N`) for each (experiment, horizon)."""
    return [fit_horizon(hs, **fit_options) for hs in scaling_inputs(vc, experiment, horizon, split)]
