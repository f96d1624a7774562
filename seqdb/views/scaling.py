"""The scaling-law fit: L(N) = E + A * N^(-alpha) per horizon, robust, with a bootstrap band.

Method (Hoffmann et al. 2022, "Training compute-optimal LLMs", App. D.2; Besiroglu et al.
2024, "Chinchilla scaling: a replication attempt"):
- fit in log space: log L_hat = LSE(e, a - alpha * log N) with E = exp(e), A = exp(a);
- Huber loss (delta = 1e-3) on the log residuals, minimised by L-BFGS-B from the 8 best
  points of a 384-point grid of starts (e, a, alpha); the best local optimum wins;
- uncertainty by bootstrap: each replicate takes, per budget, the best of a resample of
  that budget's completed trials (how lucky the tuning was), times a resampled log-space
  residual of the fit (when there are more budgets than the 3 parameters); percentile
  intervals for E, A, alpha, the curve and the extrapolation.
With fewer than 3 budgets there is no fit: the points are returned with a message.

N is the exact parameter count of each budget's best trial (not the budget label).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from scipy.optimize import minimize

from seqdb.errors import ConfigError

MIN_POINTS = 3
HUBER_DELTA = 1e-3
_GRID_ALPHA = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 2.0)
_GRID_A = (0.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 25.0)
_GRID_E_OFFSET = (-3.0, -2.0, -1.0, -0.5, -0.2, -0.05)  # added to log(min L)
N_LOCAL_STARTS = 8  # L-BFGS-B runs from the best grid points
_BOUNDS = [(-30.0, 30.0), (-30.0, 60.0), (0.0, 4.0)]  # e, a, alpha


@dataclass(frozen=True)
class PowerLaw:
    E: float
    A: float
    alpha: float
    objective: float = 0.0  # summed Huber loss at the optimum

    def predict(self, n: np.ndarray | float) -> np.ndarray:
        return self.E + self.A * np.power(np.asarray(n, dtype=float), -self.alpha)


def _objective(theta: np.ndarray, log_n: np.ndarray, log_l: np.ndarray, delta: float) -> tuple[float, np.ndarray]:
    """Summed Huber loss of log residuals and its gradient with respect to (e, a, alpha)."""
    e, a, alpha = theta
    u = a - alpha * log_n  # (P,)
    pred = np.logaddexp(e, u)  # (P,) log L_hat
    r = pred - log_l
    absr = np.abs(r)
    loss = np.where(absr <= delta, 0.5 * r**2, delta * (absr - 0.5 * delta)).sum()
    dr = np.clip(r, -delta, delta)  # Huber derivative
    w_e = np.exp(e - pred)  # d pred / d e; 1 - w_e = d pred / d a
    grad = np.array([(dr * w_e).sum(), (dr * (1 - w_e)).sum(), (dr * (1 - w_e) * -log_n).sum()])
    return float(loss), grad


def _starts(log_n: np.ndarray, log_l: np.ndarray, k: int = N_LOCAL_STARTS) -> list[np.ndarray]:
    """The `k` best points of the (e, a, alpha) grid by objective value (evaluated at once)."""
    e0 = float(log_l.min())
    grid = np.array([[e0 + de, a, al] for de, a, al in itertools.product(_GRID_E_OFFSET, _GRID_A, _GRID_ALPHA)])  # (G, 3)
    pred = np.logaddexp(grid[:, :1], grid[:, 1:2] - grid[:, 2:3] * log_n[None, :])  # (G, P)
    r = np.abs(pred - log_l[None, :])
    f = np.where(r <= HUBER_DELTA, 0.5 * r**2, HUBER_DELTA * (r - 0.5 * HUBER_DELTA)).sum(axis=1)  # (G,)
    return list(grid[np.argsort(f)[:k]])


def _optimise(log_n: np.ndarray, log_l: np.ndarray, starts: Sequence[np.ndarray], delta: float) -> np.ndarray:
    best_x, best_f = None, np.inf
    for x0 in starts:
        res = minimize(_objective, x0, args=(log_n, log_l, delta), jac=True, method="L-BFGS-B", bounds=_BOUNDS,
                       options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000})
        if np.isfinite(res.fun) and res.fun < best_f:
            best_x, best_f = res.x, res.fun
    if best_x is None:
        raise ConfigError("the scaling-law fit did not converge from any starting point")
    return best_x


def fit_power_law(n: Sequence[float], loss: Sequence[float], *, delta: float = HUBER_DELTA,
                  starts: Optional[Sequence[np.ndarray]] = None) -> PowerLaw:
    """Fit L(N) = E + A N^-alpha to points (N, L) by Huber loss in log space."""
    n_arr, l_arr = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    if len(n_arr) < MIN_POINTS or len(np.unique(n_arr)) < MIN_POINTS:
        raise ConfigError(f"a scaling-law fit needs at least {MIN_POINTS} distinct parameter counts, got {len(np.unique(n_arr))}")
    if (l_arr <= 0).any() or (n_arr <= 0).any() or not np.isfinite(l_arr).all():
        raise ConfigError("a scaling-law fit needs positive, finite losses and parameter counts")
    log_n, log_l = np.log(n_arr), np.log(l_arr)
    x = _optimise(log_n, log_l, starts if starts is not None else _starts(log_n, log_l), delta)
    obj, _ = _objective(x, log_n, log_l, delta)
    return PowerLaw(E=float(np.exp(x[0])), A=float(np.exp(x[1])), alpha=float(x[2]), objective=obj)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass
class Bootstrap:
    E: Interval
    A: Interval
    alpha: Interval
    n_grid: np.ndarray  # (G,)
    band_low: np.ndarray  # (G,)
    band_high: np.ndarray  # (G,)
    params: np.ndarray  # (R, 3): each replicate's E, A, alpha
    replicates: int

    def predict_interval(self, n: float, level: float = 0.95) -> Interval:
        preds = self.params[:, 0] + self.params[:, 1] * float(n) ** -self.params[:, 2]  # (R,)
        lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
        return Interval(float(np.percentile(preds, lo)), float(np.percentile(preds, hi)))


def _theta(fit: PowerLaw) -> np.ndarray:
    return np.array([np.log(max(fit.E, 1e-300)), np.log(max(fit.A, 1e-300)), fit.alpha])


def bootstrap_fit(n: Sequence[float], losses: Sequence[Sequence[float]], fit: PowerLaw, n_grid: np.ndarray, *,
                  replicates: int = 200, seed: int = 0, level: float = 0.95) -> Bootstrap:
    """Percentile bootstrap (see the module docstring); `losses[i]` are budget i's completed trials."""
    rng = np.random.default_rng(seed)
    n_arr = np.asarray(n, dtype=float)
    pools = [np.asarray(p, dtype=float) for p in losses]
    best = np.array([p.min() for p in pools])
    resid = np.log(best) - np.log(fit.predict(n_arr))
    resid = resid - resid.mean() if len(n_arr) > MIN_POINTS else np.zeros_like(resid)
    starts = [_theta(fit)]  # each replicate starts from the full fit
    params, curves = [], []
    for _ in range(replicates):
        sample = np.array([rng.choice(p, size=len(p)).min() for p in pools])
        sample = sample * np.exp(rng.choice(resid, size=len(resid)))
        x = _optimise(np.log(n_arr), np.log(sample), starts, HUBER_DELTA)
        rep = PowerLaw(float(np.exp(x[0])), float(np.exp(x[1])), float(x[2]))
        params.append((rep.E, rep.A, rep.alpha))
        curves.append(rep.predict(n_grid))
    p, c = np.array(params), np.array(curves)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    iv = [Interval(float(np.percentile(p[:, k], lo)), float(np.percentile(p[:, k], hi))) for k in range(3)]
    return Bootstrap(iv[0], iv[1], iv[2], n_grid, np.percentile(c, lo, axis=0), np.percentile(c, hi, axis=0), p, replicates)


# ------------------------------------------------------------------------------------------
# the report per (experiment, horizon), read through the views
# ------------------------------------------------------------------------------------------
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


@dataclass
class Extrapolation:
    n: int
    loss: float
    interval: Optional[Interval]


@dataclass
class HorizonScaling:
    experiment: str
    horizon: int
    points: list[ScalingPoint]
    fit: Optional[PowerLaw] = None
    bootstrap: Optional[Bootstrap] = None
    at: Optional[Extrapolation] = None
    message: str = ""
    losses: list[list[float]] = field(default_factory=list, repr=False)


def _points(vc, experiment: Optional[str], horizon: Optional[int]) -> dict[tuple[str, int], list[ScalingPoint]]:  # noqa: ANN001
    from seqdb.views.query import sql

    where, params = [], []
    if experiment is not None:
        where.append("experiment = ?"), params.append(experiment)
    if horizon is not None:
        where.append("horizon = ?"), params.append(int(horizon))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = sql(vc, f"SELECT budget, budget_params, param_count, best_val_loss, trial_id, n_finished, n_completed, "
                   f"epochs_total, epochs_mean, experiment, horizon FROM scaling_points {clause} "
                   f"ORDER BY experiment, horizon, param_count", params).to_pylist()
    out: dict[tuple[str, int], list[ScalingPoint]] = {}
    for r in rows:
        key = (r.pop("experiment"), r.pop("horizon"))
        out.setdefault(key, []).append(ScalingPoint(**r))
    return out


def _trial_losses(vc, experiment: str, horizon: int) -> dict[str, list[float]]:  # noqa: ANN001
    from seqdb.views.query import sql

    rows = sql(vc, "SELECT b.label AS budget, t.best_val_loss FROM tables.trial t "
                   "JOIN tables.study s ON s.study_id = t.study_id JOIN tables.experiment e ON e.experiment_id = s.experiment_id "
                   "JOIN tables.budget b ON b.budget_id = s.budget_id "
                   "WHERE e.name = ? AND s.horizon = ? AND s.kind = 'search' AND t.state = 'completed' "
                   "AND t.best_val_loss IS NOT NULL", [experiment, int(horizon)]).to_pylist()
    out: dict[str, list[float]] = {}
    for r in rows:
        out.setdefault(r["budget"], []).append(r["best_val_loss"])
    return out


def n_grid_for(ns: Sequence[float], at: Optional[int] = None, size: int = 60) -> np.ndarray:
    lo, hi = min(ns) / 2, max(max(ns) * 4, at or 0)
    return np.geomspace(lo, hi, size)


def fit_horizon(hs: HorizonScaling, *, at: Optional[int], replicates: int, seed: int) -> HorizonScaling:
    """Fill `hs.fit`, `hs.bootstrap`, `hs.at` (or `hs.message` when no fit is possible)."""
    ns = [p.param_count for p in hs.points]
    if len(set(ns)) < MIN_POINTS:
        hs.message = (f"{len(set(ns))} budget(s) with completed trials: a fit of E, A and alpha needs at least "
                      f"{MIN_POINTS}; showing the points only")
        return hs
    hs.fit = fit_power_law(ns, [p.best_val_loss for p in hs.points])
    if replicates > 0:
        losses = hs.losses or [[p.best_val_loss] for p in hs.points]
        hs.bootstrap = bootstrap_fit(ns, losses, hs.fit, n_grid_for(ns, at), replicates=replicates, seed=seed)
    if at is not None:
        interval = hs.bootstrap.predict_interval(at) if hs.bootstrap is not None else None
        hs.at = Extrapolation(int(at), float(hs.fit.predict(at)), interval)
    return hs


def scaling_report(vc, *, experiment: Optional[str] = None, horizon: Optional[int] = None,  # noqa: ANN001
                   at: Optional[int] = None, replicates: int = 200, seed: int = 0) -> list[HorizonScaling]:
    """Points, fit, bootstrap intervals and extrapolation for each (experiment, horizon)."""
    out = []
    for (exp, h), points in _points(vc, experiment, horizon).items():
        by_budget = _trial_losses(vc, exp, h)
        hs = HorizonScaling(exp, h, points, losses=[by_budget.get(p.budget, [p.best_val_loss]) for p in points])
        out.append(fit_horizon(hs, at=at, replicates=replicates, seed=seed))
    return out
