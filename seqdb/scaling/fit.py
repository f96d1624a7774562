"""L(N) = E + A * N^-alpha fitted to scaling points, with calibrated 95% intervals.

Method (docs/scaling.md):
- points with the same group (or, without groups, the same N) are seed replicates of one
  budget: the fit uses each budget's mean log loss, weighted by its replicate count;
- least squares in log space, log L_hat = logaddexp(e, a - alpha log N), E = e^e, A = e^a
  (or Huber with delta = 1e-3, summed);
- global search that cannot stop on a plateau: alpha is profiled on a fine grid, with
  (E, A) solved linearly at each alpha; the best few local minima of the profile are
  polished by `scipy.optimize.least_squares` with the analytic Jacobian;
- Wald-t intervals (default): s^2 = sum r^2 / (K - 3), t with K - 3 degrees of freedom,
  covariance s^2 (J'J)^-1; E and A by exp of the log-scale interval; the curve and the
  extrapolation by the delta method. With replicates s is the pooled within-budget spread
  of log loss (its degrees of freedom for t);
- or a parametric bootstrap whose noise scale is itself drawn, s* = s sqrt(df / chi2_df),
  refitting each replicate with the same global search; percentile intervals.
K <= 2 budgets: refused. K = 3 without replicates: the fit, and no interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from seqdb.errors import ConfigError
from seqdb.scaling import flags as fl
from seqdb.scaling.points import Point
from seqdb.scaling.result import FitResult  # defined beside the fits (L(N, D) builds it too); re-exported here

MIN_BUDGETS = 3
HUBER_DELTA = 1e-3
ALPHA_GRID = np.linspace(*fl.ALPHA_BOUNDS, 801)  # (G,)
N_POLISH = 3  # local minima of the profile that get polished
STARTS_RATIO = 1.25
LOWER = np.array([-40.0, -40.0, fl.ALPHA_BOUNDS[0]])  # e, a, alpha
UPPER = np.array([30.0, 120.0, fl.ALPHA_BOUNDS[1]])
LAWS, OBJECTIVES, CI_METHODS = ("n", "nd"), ("ls", "huber"), ("wald", "bootstrap")


# ------------------------------------------------------------------------------------------
# budgets: the replicates of each N pooled
# ------------------------------------------------------------------------------------------
@dataclass
class Budgets:
    n: np.ndarray  # (K,) parameter count, sorted
    y: np.ndarray  # (K,) mean log loss
    w: np.ndarray  # (K,) replicate count (the weight of the mean)
    s_within: Optional[float]  # pooled within-budget sd of log loss (None without replicates)
    df_within: int


def budgets_of(points: Sequence[Point]) -> Budgets:
    groups: dict = {}
    for p in points:
        groups.setdefault(p.group if p.group is not None else p.N, []).append(p)
    rows = []
    for members in groups.values():
        ys = np.log([p.loss for p in members])
        rows.append((float(np.exp(np.mean(np.log([p.N for p in members])))), ys))
    rows.sort(key=lambda r: r[0])
    ss = sum(float(((ys - ys.mean()) ** 2).sum()) for _, ys in rows)
    df = sum(len(ys) - 1 for _, ys in rows)
    return Budgets(np.array([r[0] for r in rows]), np.array([r[1].mean() for r in rows]),
                   np.array([float(len(r[1])) for r in rows]), math.sqrt(ss / df) if df else None, df)


# ------------------------------------------------------------------------------------------
# the model in log space and the global search
# ------------------------------------------------------------------------------------------
def log_model(theta: np.ndarray, log_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log L_hat (P,) and its Jacobian (P, 3) with respect to (e, a, alpha)."""
    e, a, alpha = theta
    pred = np.logaddexp(e, a - alpha * log_n)
    w_e = np.exp(e - pred)  # d pred / d e; 1 - w_e = d pred / d a
    return pred, np.stack([w_e, 1 - w_e, -(1 - w_e) * log_n], axis=1)


def _cost(r: np.ndarray, objective: str) -> np.ndarray:
    """Summed loss of residuals r (..., P) along the last axis."""
    if objective == "ls":
        return 0.5 * (r**2).sum(axis=-1)
    a = np.abs(r)
    return np.where(a <= HUBER_DELTA, 0.5 * r**2, HUBER_DELTA * (a - 0.5 * HUBER_DELTA)).sum(axis=-1)


def _profile(log_n: np.ndarray, y: np.ndarray, w: np.ndarray, objective: str) -> tuple[np.ndarray, np.ndarray]:
    """For each alpha of the grid: (E, A) >= 0 by weighted linear least squares; returns thetas (G, 3), costs (G,)."""
    L = np.exp(y)
    c = w / L**2  # relative error weights: linear residual / L ~ log residual
    x = np.exp(-ALPHA_GRID[:, None] * log_n[None, :])  # (G, K)
    S, Sx, Sxx = c.sum(), (c * x).sum(1), (c * x * x).sum(1)
    Sl, Sxl = (c * L).sum(), (c * x * L).sum(1)
    det = S * Sxx - Sx**2
    ok = det > 1e-12 * S * Sxx
    E = np.where(ok, (Sxx * Sl - Sx * Sxl) / np.where(ok, det, 1), 0.0)
    A = np.where(ok, (S * Sxl - Sx * Sl) / np.where(ok, det, 1), Sl / S)
    tiny = 1e-12 * L.min()
    E = np.where(E <= tiny, tiny, E)
    A = np.where(E == tiny, np.maximum((Sxl - tiny * Sx) / Sxx, tiny), A)
    neg = A <= tiny
    A, E = np.where(neg, tiny, A), np.where(neg, np.maximum((Sl - tiny * Sx) / S, tiny), E)
    pred = np.log(E[:, None] + A[:, None] * x)  # (G, K)
    thetas = np.stack([np.log(E), np.log(A), ALPHA_GRID], axis=1)
    return thetas, _cost(np.sqrt(w) * (pred - y), objective)


def _starts(thetas: np.ndarray, costs: np.ndarray) -> list[np.ndarray]:
    """The N_POLISH best local minima of the profile (the grid minimum first); a minimum whose
    cost is more than STARTS_RATIO times the best is not worth polishing."""
    inner = (costs[1:-1] <= costs[:-2]) & (costs[1:-1] <= costs[2:])
    idx = np.r_[np.nonzero(inner)[0] + 1, 0, len(costs) - 1]
    idx = idx[np.argsort(costs[idx])][:N_POLISH]
    idx = [i for i in idx if costs[i] <= STARTS_RATIO * costs[idx[0]] + 1e-300]
    return [np.clip(thetas[i], LOWER + 1e-9, UPPER - 1e-9) for i in idx]


def _polish(theta0: np.ndarray, log_n: np.ndarray, y: np.ndarray, sw: np.ndarray, objective: str) -> tuple[np.ndarray, float]:
    from scipy.optimize import least_squares

    res = least_squares(lambda th: sw * (log_model(th, log_n)[0] - y), theta0,
                        jac=lambda th: sw[:, None] * log_model(th, log_n)[1], bounds=(LOWER, UPPER), method="trf",
                        loss="linear" if objective == "ls" else "huber", f_scale=HUBER_DELTA if objective == "huber" else 1.0,
                        xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=500, x_scale="jac")
    return res.x, float(_cost(sw * (log_model(res.x, log_n)[0] - y), objective))


def global_fit(log_n: np.ndarray, y: np.ndarray, w: np.ndarray, objective: str = "ls") -> np.ndarray:
    """theta = (e, a, alpha) minimising the summed (weighted) log-space loss."""
    thetas, costs = _profile(log_n, y, w, objective)
    sw = np.sqrt(w)
    best, best_cost = None, np.inf
    for x0 in _starts(thetas, costs):
        x, cost = _polish(x0, log_n, y, sw, objective)
        if np.isfinite(cost) and cost < best_cost:
            best, best_cost = x, cost
    if best is None:
        raise ConfigError("the scaling-law fit did not converge from any starting point")
    return best


# ------------------------------------------------------------------------------------------
# intervals
# ------------------------------------------------------------------------------------------
def _t(df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def wald(theta: np.ndarray, log_n: np.ndarray, w: np.ndarray, s: float) -> Optional[np.ndarray]:
    """Covariance (3, 3) of theta, s^2 (J'WJ)^-1; None where J'WJ is singular."""
    _, J = log_model(theta, log_n)
    H = (J * w[:, None]).T @ J
    if not np.isfinite(H).all() or np.linalg.cond(H) > 1e13:
        return None
    return s**2 * np.linalg.inv(H)


def wald_at(theta: np.ndarray, cov: np.ndarray, tq: float, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Delta-method 95% band of L_hat at parameter counts n (M,): (low, high)."""
    pred, g = log_model(theta, np.log(np.asarray(n, dtype=float)))
    se = np.sqrt(np.einsum("mi,ij,mj->m", g, cov, g))
    return np.exp(pred - tq * se), np.exp(pred + tq * se)


def bootstrap_thetas(theta: np.ndarray, log_n: np.ndarray, w: np.ndarray, s: float, df: int, objective: str,
                     replicates: int, seed: int) -> np.ndarray:
    """(R, 3) refits of data simulated from the fit with a drawn noise scale s* = s sqrt(df / chi2_df)."""
    rng = np.random.default_rng(seed)
    pred, _ = log_model(theta, log_n)
    out = np.empty((replicates, 3))
    for r in range(replicates):
        sigma = s * math.sqrt(df / rng.chisquare(df))
        y = pred + sigma * rng.standard_normal(len(log_n)) / np.sqrt(w)
        out[r] = global_fit(log_n, y, w, objective)
    return out


def _as_params(theta: np.ndarray) -> dict:
    return {"E": float(np.exp(theta[0])), "A": float(np.exp(theta[1])), "alpha": float(theta[2])}


def _intervals(theta: np.ndarray, b: Budgets, s: float, df: int, ci: str, objective: str,
               bootstrap: int, seed: int) -> tuple[dict, dict]:
    """ci95 of E, A, alpha and the private state the curve band needs."""
    log_n = np.log(b.n)
    if ci == "bootstrap":
        boot = bootstrap_thetas(theta, log_n, b.w, s, df, objective, bootstrap, seed)
        lo, hi = np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)
        with np.errstate(over="ignore"):
            ci95 = {"E": (np.exp(lo[0]), np.exp(hi[0])), "A": (np.exp(lo[1]), np.exp(hi[1])), "alpha": (lo[2], hi[2])}
        return {k: v for k, v in ci95.items() if np.isfinite(v).all()}, {"_boot": boot}
    cov = wald(theta, log_n, b.w, s)
    if cov is None:
        return {}, {}
    half = _t(df) * np.sqrt(np.diag(cov))
    with np.errstate(over="ignore"):
        ci95 = {"E": tuple(np.exp(theta[0] + [-half[0], half[0]])), "A": tuple(np.exp(theta[1] + [-half[1], half[1]])),
                "alpha": (theta[2] - half[2], theta[2] + half[2])}
    return {k: v for k, v in ci95.items() if np.isfinite(v).all()}, {"_cov": cov, "_t": _t(df)}


def band(result: FitResult, n: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """95% band (low, high) of the fitted curve at n (M,), or None where there is no interval."""
    n = np.asarray(n, dtype=float)
    with np.errstate(over="ignore"):
        return _band(result, n)


def _band(result: FitResult, n: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
    if "_boot" in result.extra:
        boot = result.extra["_boot"]  # (R, 3)
        curves = np.exp(boot[:, 0:1]) + np.exp(boot[:, 1:2]) * n[None, :] ** -boot[:, 2:3]  # (R, M)
        return np.percentile(curves, 2.5, axis=0), np.percentile(curves, 97.5, axis=0)
    if "_cov" in result.extra:
        return wald_at(result.extra["_theta"], result.extra["_cov"], result.extra["_t"], n)
    return None


# ------------------------------------------------------------------------------------------
# the entry point
# ------------------------------------------------------------------------------------------
def _check(points: Sequence[Point], law: str, objective: str, ci: str, bootstrap: int) -> None:
    for name, value, allowed in (("law", law, LAWS), ("objective", objective, OBJECTIVES), ("ci", ci, CI_METHODS)):
        if value not in allowed:
            raise ConfigError(f"--{name} {value!r} is not known (allowed: {', '.join(allowed)})")
    if ci == "bootstrap" and bootstrap < 10:
        raise ConfigError(f"--bootstrap {bootstrap}: a bootstrap interval needs at least 10 replicates")
    bad = [p for p in points if not (p.N > 0 and p.loss > 0 and math.isfinite(p.N) and math.isfinite(p.loss))]
    if bad:
        raise ConfigError(f"point N={bad[0].N}, loss={bad[0].loss}: a scaling fit needs positive, finite N and loss")


def _noise(b: Budgets, theta: np.ndarray) -> tuple[Optional[float], int, str]:
    """(s, df, where s comes from): the replicates' pooled spread, else the residuals with K - 3 df."""
    if b.s_within is not None and b.s_within > 0:
        return b.s_within, b.df_within, "replicates"
    df = len(b.n) - 3
    r = np.sqrt(b.w) * (log_model(theta, np.log(b.n))[0] - b.y)
    return (math.sqrt(float((r**2).sum()) / df) if df > 0 else None), df, "residuals"


def _no_interval(df: int, s: Optional[float]) -> str:
    if df <= 0 or s is None:
        why = "0 residual degrees of freedom"
    elif s == 0:
        why = "the points lie exactly on the curve: zero residual spread"
    else:
        why = "the fit's Jacobian is singular at the optimum"
    return fl.flag("no_interval", f"no interval ({why})")


def _extrapolate(result: FitResult, at: float, force: bool) -> dict:
    bad = fl.severe(result.flags)
    if bad and not force:
        return {"N": float(at), "loss": None, "ci95": None, "off": f"extrapolation off: {bad[0]} (--force extrapolates anyway)"}
    iv = band(result, np.array([at]))
    ok = iv is not None and np.isfinite([iv[0][0], iv[1][0]]).all()
    return {"N": float(at), "loss": float(result.predict(at)), "ci95": [float(iv[0][0]), float(iv[1][0])] if ok else None}


def _at_n(at: float | dict) -> float:
    if isinstance(at, dict):
        if "N" not in at:
            raise ConfigError(f"--at {at}: with --law n the extrapolation needs a parameter count N (allowed: --at 2B)")
        return float(at["N"])
    return float(at)


def fit_points(points: Sequence[Point], *, law: str = "n", objective: str = "ls", ci: str = "wald", bootstrap: int = 200,
               seed: int = 0, at: Optional[float | dict] = None, force: bool = False,
               extra_flags: Sequence[str] = ()) -> FitResult:
    """Fit the law to the points; `extra_flags` (e.g. unequal effort) join the fit's own flags."""
    _check(points, law, objective, ci, bootstrap)
    if law == "nd":
        return _fit_nd(points, objective=objective, ci=ci, bootstrap=bootstrap, seed=seed, at=at, force=force, extra_flags=extra_flags)
    return _fit_n(points, objective=objective, ci=ci, bootstrap=bootstrap, seed=seed, at=at, force=force, extra_flags=extra_flags)


def _fit_n(points: Sequence[Point], *, objective: str, ci: str, bootstrap: int, seed: int, at: Optional[float | dict],
           force: bool, extra_flags: Sequence[str]) -> FitResult:
    b = budgets_of(points)
    if len(b.n) < MIN_BUDGETS:
        raise ConfigError(f"a fit of E, A and alpha needs at least {MIN_BUDGETS} distinct budgets (N), got {len(b.n)}")
    theta = global_fit(np.log(b.n), b.y, b.w, objective)
    params = _as_params(theta)
    s, df, source = _noise(b, theta)
    ci95, private = _intervals(theta, b, s, df, ci, objective, bootstrap, seed) if s else ({}, {})
    flags = fl.shape_flags(b.n, np.exp(b.y), b.s_within, b.w)
    flags += fl.parameter_flags(params["E"], params["A"], params["alpha"], float(np.exp(b.y).min()), ci95.get("alpha"))
    flags += [] if ci95 else [_no_interval(df, s)]
    method = ("wald_t" if ci == "wald" else "bootstrap") if ci95 else "none"
    result = FitResult("n", objective, len(b.n), max(df, 0), params, ci95, method, s, flags + list(extra_flags),
                       extra={"_theta": theta, "noise_from": source, **private})
    if at is not None:
        result.at = _extrapolate(result, _at_n(at), force)
    return result


def _fit_nd(points: Sequence[Point], **kwargs) -> FitResult:  # noqa: ANN003
    import importlib.util

    if importlib.util.find_spec("seqdb.scaling.nd") is None:
        raise ConfigError("--law nd is not available in this build (allowed: --law n)")
    from seqdb.scaling.nd import fit_nd

    return fit_nd(points, **kwargs)
