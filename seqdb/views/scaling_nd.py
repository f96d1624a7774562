"""The L(N, D) report per (experiment, horizon): the database's (N, D, loss) points, fitted by
`seqdb.scaling.nd` through `seqdb.scaling.fit.fit_points(law="nd")` (the code path of
`seqdb scaling fit POINTS.csv --law nd`).

A point is one rung of the ladder: (budget, tokens) with the lowest validation loss at the
*final* evaluation of its completed search trials (`scaling_nd_points WHERE final`): under a
decaying schedule only a finished schedule is comparable across training lengths. N is that
trial's exact parameter count, D the tokens it trained on. The database adds one flag:
unequal_effort when the rungs got different numbers of completed trials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from seqdb.scaling.flags import flag
from seqdb.scaling.points import Point
from seqdb.scaling.result import FitResult

_RUNGS = """
SELECT experiment, horizon, budget, tokens, min(val_loss) AS val_loss, arg_min(trial_id, val_loss) AS trial_id,
       arg_min(param_count, val_loss) AS param_count, arg_min(flops, val_loss) AS flops, count(*) AS n_trials
FROM scaling_nd_points WHERE final AND tokens > 0 {filters}
GROUP BY experiment, horizon, budget, tokens
ORDER BY experiment, horizon, param_count, tokens
"""


@dataclass
class NDPoint:
    budget: str
    param_count: int  # N
    tokens: int  # D
    val_loss: float
    trial_id: int
    flops: Optional[float]
    n_trials: int  # completed trials of this (budget, tokens) rung


@dataclass
class HorizonND:
    experiment: str
    horizon: int
    points: list[NDPoint]
    fit: Optional[FitResult] = None
    message: str = ""
    flags: list[str] = field(default_factory=list)


def nd_points(vc, experiment: Optional[str] = None, horizon: Optional[int] = None) -> dict[tuple[str, int], list[NDPoint]]:  # noqa: ANN001
    """The best final point of every (budget, tokens) rung, per (experiment, horizon)."""
    from seqdb.views.query import sql

    filters, params = "", []
    if experiment is not None:
        filters, params = filters + " AND experiment = ?", [*params, experiment]
    if horizon is not None:
        filters, params = filters + " AND horizon = ?", [*params, int(horizon)]
    out: dict[tuple[str, int], list[NDPoint]] = {}
    for r in sql(vc, _RUNGS.format(filters=filters), params).to_pylist():
        key = (r.pop("experiment"), r.pop("horizon"))
        out.setdefault(key, []).append(NDPoint(**r))
    return out


def rung_effort_flags(points: list[NDPoint]) -> list[str]:
    counts = {p.n_trials for p in points}
    if len(counts) <= 1:
        return []
    per = ", ".join(f"{p.budget}@{p.tokens:,}: {p.n_trials}" for p in points)
    return [flag("unequal_effort", f"the (budget, tokens) rungs got different numbers of completed trials ({per})")]


def fit_nd_horizon(hs: HorizonND, **fit_options) -> HorizonND:  # noqa: ANN003
    """Fill `hs.fit`, or `hs.message` when these points cannot identify L(N, D)."""
    from seqdb.errors import ConfigError
    from seqdb.scaling.fit import fit_points

    points = [Point(float(p.param_count), float(p.val_loss), D=float(p.tokens), group=f"{p.budget}@{p.tokens}") for p in hs.points]
    try:
        hs.fit = fit_points(points, law="nd", extra_flags=hs.flags, **fit_options)
    except ConfigError as exc:
        if "L(N, D) fit" not in exc.message:
            raise
        hs.message = f"{len(hs.points)} (budget, tokens) point(s): {exc.message}; showing the points only"
    return hs


def scaling_nd_report(vc, *, experiment: Optional[str] = None, horizon: Optional[int] = None,  # noqa: ANN001
                      **fit_options) -> list[HorizonND]:
    """Points, fit of L(N, D), intervals, compute-optimal allocation (`at_compute=C`) per (experiment, horizon)."""
    out = []
    for (exp, h), points in nd_points(vc, experiment, horizon).items():
        out.append(fit_nd_horizon(HorizonND(exp, h, points, flags=rung_effort_flags(points)), **fit_options))
    return out
