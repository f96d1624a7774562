"""The two-variable scaling law L(N, D) = E + A / N^alpha + B / D^beta and its compute-optimal
allocation (Hoffmann et al. 2022, "Training compute-optimal LLMs", approach 3; Besiroglu et al.
2024, "Chinchilla scaling: a replication attempt").

    fit = fit_law_nd(n, d, loss)              # n parameters, d training tokens, loss (K points)
    fit.law.predict(n, d)                     # the fitted surface
    fit.law.allocation(1e15)                  # N_opt, D_opt, loss at C = 1e15 FLOPs

Method:
- log space: log L_hat = LSE(e, a - alpha log N, b - beta log D), E = exp(e), A = exp(a),
  B = exp(b); objective least squares (`ls`, default) or Huber with delta = 1e-3 *summed*
  over the points (`huber`, Chinchilla's choice);
- a global search that cannot stop on a plateau: a grid of (alpha, beta) exponents, at each
  the linear (E, A, B) >= 0 solved by non-negative least squares on relative residuals (which
  approximate the log residuals); the best few grid points are polished by
  `scipy.optimize.least_squares` with the analytic Jacobian; the best polished optimum wins.
  At the end the gradient of the objective over the free coordinates is checked: a norm above
  `GRAD_TOL` is flagged rather than returned silently;
- intervals: Wald-t (default): s^2 = sum r^2 / (K - 5), covariance s^2 (J'J)^-1 from the
  Jacobian at the optimum, t with K - 5 degrees of freedom; E, A, B by exp of the log-scale
  interval; derived quantities (compute-optimal exponents, G, the loss at a compute budget)
  by the delta method. Or a parametric bootstrap whose noise scale is itself drawn,
  sigma* = s * sqrt((K - 5) / chi2(K - 5)), each replicate refitted by the same global search.

Compute-optimal allocation under C = 6 N D (the minimiser of L on that curve):
    N_opt(C) = G (C/6)^a,  D_opt(C) = (C/6) / N_opt(C) = G^-1 (C/6)^b,
    a = beta / (alpha + beta),  b = alpha / (alpha + beta),  G = (alpha A / (beta B))^(1/(alpha+beta)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Optional, Sequence

import numpy as np

from seqdb.errors import ConfigError
from seqdb.scaling.flags import SEVERE, flag

Objective = Literal["ls", "huber"]
CiMethod = Literal["wald", "bootstrap"]

N_PARAMS = 5  # E, A, alpha, B, beta
MIN_DISTINCT = 3  # distinct N and distinct D values a fit needs (each side has A, exponent, shift)
HUBER_DELTA = 1e-3
EXP_MAX = 4.0  # exponents live in [0, EXP_MAX]
GRAD_TOL = 1e-8  # largest free gradient component accepted at the optimum
HUGE_COEF = 1e12  # A or B above this: a degenerate fit
_GRID = np.concatenate([np.linspace(0.02, 1.0, 25), np.linspace(1.1, 3.0, 8)])  # exponent grid (33)
_N_POLISH = 6
_LOWER = np.array([-40.0, -40.0, 0.0, -40.0, 0.0])  # e, a, alpha, b, beta
_UPPER = np.array([40.0, 120.0, EXP_MAX, 120.0, EXP_MAX])


# ------------------------------------------------------------------------------------------
# the law
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Allocation:
    C: float  # FLOPs
    N_opt: float
    D_opt: float
    loss: float


@dataclass(frozen=True)
class LawND:
    E: float
    A: float
    alpha: float
    B: float
    beta: float

    def predict(self, n, d) -> np.ndarray:  # noqa: ANN001
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return self.E + self.A * n ** -self.alpha + self.B * d ** -self.beta

    @property
    def a(self) -> float:
        """Exponent of N_opt in C: beta / (alpha + beta)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt in C: alpha / (alpha + beta)."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    def allocation(self, c: float) -> Allocation:
        """The compute-optimal (N, D) at C FLOPs (C = 6 N D) and the loss it reaches."""
        n_opt = self.G * (c / 6.0) ** self.a
        d_opt = (c / 6.0) / n_opt
        return Allocation(float(c), float(n_opt), float(d_opt), float(self.predict(n_opt, d_opt)))


def law_from_theta(theta: np.ndarray) -> LawND:
    e, a, alpha, b, beta = (float(x) for x in theta)
    return LawND(E=float(np.exp(e)), A=float(np.exp(a)), alpha=alpha, B=float(np.exp(b)), beta=beta)


# ------------------------------------------------------------------------------------------
# the objective in log space
# ------------------------------------------------------------------------------------------
def residuals(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray) -> np.ndarray:
    """r = log L_hat - log L, (K,)."""
    e, a, alpha, b, beta = theta
    terms = np.stack([np.full_like(log_n, e), a - alpha * log_n, b - beta * log_d])  # (3, K)
    return np.logaddexp.reduce(terms, axis=0) - log_l


def jacobian(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray) -> np.ndarray:
    """d r / d (e, a, alpha, b, beta), (K, 5): softmax weights of the three terms."""
    e, a, alpha, b, beta = theta
    terms = np.stack([np.full_like(log_n, e), a - alpha * log_n, b - beta * log_d])  # (3, K)
    w = np.exp(terms - np.logaddexp.reduce(terms, axis=0))  # (3, K), columns sum to 1
    return np.stack([w[0], w[1], -w[1] * log_n, w[2], -w[2] * log_d], axis=1)


def objective_value(r: np.ndarray, objective: Objective, delta: float = HUBER_DELTA) -> np.ndarray:
    """Summed loss of residuals r (..., K): 0.5 r^2 (ls) or Huber(delta), summed over the last axis."""
    if objective == "ls":
        return 0.5 * (r**2).sum(axis=-1)
    ar = np.abs(r)
    return np.where(ar <= delta, 0.5 * r**2, delta * (ar - 0.5 * delta)).sum(axis=-1)


def gradient(theta: np.ndarray, pts: "Points", objective: Objective, delta: float = HUBER_DELTA) -> np.ndarray:
    """Gradient of the summed objective with respect to theta, (5,)."""
    r = residuals(theta, *pts.logs)
    psi = r if objective == "ls" else np.clip(r, -delta, delta)
    return jacobian(theta, *pts.logs).T @ psi


# ------------------------------------------------------------------------------------------
# the points
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Points:
    n: np.ndarray  # (K,) parameters
    d: np.ndarray  # (K,) training tokens
    loss: np.ndarray  # (K,)

    @property
    def logs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.log(self.n), np.log(self.d), np.log(self.loss)

    @property
    def K(self) -> int:
        return len(self.loss)


def check_points(n: Sequence[float], d: Sequence[float], loss: Sequence[float]) -> Points:
    """Arrays of equal length, positive and finite, with enough distinct N and D."""
    arrays = [np.asarray(x, dtype=float).ravel() for x in (n, d, loss)]
    if len({len(a) for a in arrays}) != 1:
        raise ConfigError(f"N, D and loss have different lengths ({', '.join(str(len(a)) for a in arrays)})")
    for name, a in zip(("N", "D", "loss"), arrays):
        bad = np.flatnonzero(~np.isfinite(a) | (a <= 0))
        if len(bad):
            raise ConfigError(f"point {int(bad[0]) + 1}: {name} = {float(a[bad[0]])!r}; allowed: positive, finite numbers")
    pts = Points(*arrays)
    if pts.K < N_PARAMS:
        raise ConfigError(f"an L(N, D) fit of E, A, alpha, B, beta needs at least {N_PARAMS} points, got {pts.K}")
    for name, a in (("N", pts.n), ("D", pts.d)):
        if len(np.unique(a)) < MIN_DISTINCT:
            raise ConfigError(f"an L(N, D) fit needs at least {MIN_DISTINCT} distinct {name} values, got {len(np.unique(a))}")
    return pts


# ------------------------------------------------------------------------------------------
# the global search: profile the exponents, solve (E, A, B) linearly, polish the best
# ------------------------------------------------------------------------------------------
def _profile_starts(pts: Points, grid: np.ndarray, objective: Objective, k: int) -> list[np.ndarray]:
    """The `k` best (e, a, alpha, b, beta) over an (alpha, beta) grid, (E, A, B) >= 0 by NNLS
    on relative residuals (weights 1/L, so the linear fit approximates the log-space one)."""
    from scipy.optimize import nnls

    floor = 1e-6 * float(pts.loss.min())  # a coefficient NNLS set to 0 starts here instead
    w = 1.0 / pts.loss  # (K,)
    cands, values = [], []
    for alpha in grid:
        xa = pts.n ** -alpha
        for beta in grid:
            X = np.stack([np.ones_like(xa), xa, pts.d ** -beta], axis=1)  # (K, 3)
            coef, _ = nnls(X * w[:, None], np.ones_like(w))
            theta = np.array([np.log(max(coef[0], floor)), np.log(max(coef[1], floor)), alpha,
                              np.log(max(coef[2], floor)), beta])
            cands.append(theta)
            values.append(objective_value(residuals(theta, *pts.logs), objective))
    order = np.argsort(values)[:k]
    return [np.clip(cands[i], _LOWER, _UPPER) for i in order]


def _polish(theta0: np.ndarray, pts: Points, objective: Objective, delta: float) -> np.ndarray:
    """One local least-squares solve from theta0 with the analytic Jacobian (Huber via
    least_squares' `huber` loss with f_scale = delta: exactly the summed Huber objective)."""
    from scipy.optimize import least_squares

    logs = pts.logs
    res = least_squares(residuals, theta0, jac=jacobian, args=logs, bounds=(_LOWER, _UPPER), method="trf",
                        loss="linear" if objective == "ls" else "huber", f_scale=delta,
                        xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=5000, x_scale="jac")
    return res.x


def global_fit(pts: Points, objective: Objective = "ls", *, delta: float = HUBER_DELTA,
               grid: np.ndarray = _GRID, n_polish: int = _N_POLISH, extra_starts: Sequence[np.ndarray] = ()) -> np.ndarray:
    """theta = (e, a, alpha, b, beta) minimising the summed objective (see the module docstring)."""
    starts = [*extra_starts, *_profile_starts(pts, grid, objective, n_polish)]
    best, best_f = None, np.inf
    for theta0 in starts:
        theta = _polish(theta0, pts, objective, delta)
        f = float(objective_value(residuals(theta, *pts.logs), objective, delta))
        if np.isfinite(f) and f < best_f:
            best, best_f = theta, f
    if best is None:
        raise ConfigError("the L(N, D) fit did not converge from any starting point")
    return best


def free_gradient_norm(theta: np.ndarray, pts: Points, objective: Objective, delta: float = HUBER_DELTA) -> float:
    """Largest gradient component over the coordinates not held at a bound (a bound may hold
    a coordinate whose gradient pushes outward)."""
    g = gradient(theta, pts, objective, delta)
    at_lo, at_hi = theta <= _LOWER + 1e-9, theta >= _UPPER - 1e-9
    free = ~((at_lo & (g > 0)) | (at_hi & (g < 0)))
    return float(np.abs(g[free]).max()) if free.any() else 0.0


# ------------------------------------------------------------------------------------------
# intervals
# ------------------------------------------------------------------------------------------
Derived = Callable[[np.ndarray], float]  # a scalar function of theta


def _derived(c: Optional[float]) -> dict[str, Derived]:
    """The quantities reported with an interval, as functions of theta; log-scale for the
    positive ones (their interval is exp of the log-scale interval)."""
    out: dict[str, Derived] = {
        "a": lambda th: law_from_theta(th).a,
        "log_G": lambda th: float(np.log(law_from_theta(th).G)),
    }
    if c is not None:
        out["log_N_opt"] = lambda th: float(np.log(law_from_theta(th).allocation(c).N_opt))
        out["log_D_opt"] = lambda th: float(np.log(law_from_theta(th).allocation(c).D_opt))
        out["log_loss"] = lambda th: float(np.log(law_from_theta(th).allocation(c).loss))
    return out


def _num_grad(f: Derived, theta: np.ndarray) -> np.ndarray:
    g = np.zeros_like(theta)
    for i in range(len(theta)):
        h = 1e-6 * max(1.0, abs(theta[i]))
        up, dn = theta.copy(), theta.copy()
        up[i] += h
        dn[i] -= h
        g[i] = (f(up) - f(dn)) / (2 * h)
    return g


def wald_cov(theta: np.ndarray, pts: Points, s: float) -> Optional[np.ndarray]:
    """Covariance (5, 5) of theta, s^2 (J'J)^-1; None when J is rank-deficient."""
    J = jacobian(theta, *pts.logs)  # (K, 5)
    JtJ = J.T @ J
    if np.linalg.matrix_rank(JtJ, tol=1e-12 * np.abs(JtJ).max()) < N_PARAMS:
        return None
    return s**2 * np.linalg.inv(JtJ)


def wald_intervals(theta: np.ndarray, pts: Points, s: float, df: int, c: Optional[float]) -> Optional[dict[str, tuple[float, float]]]:
    """95% Wald-t intervals on the theta scale and for the derived quantities; None when the
    Jacobian is rank-deficient (a parameter is not identified by these points)."""
    from scipy.stats import t as student_t

    cov = wald_cov(theta, pts, s)  # (5, 5)
    if cov is None:
        return None
    q = float(student_t.ppf(0.975, df))
    names = ("e", "a_coef", "alpha", "b_coef", "beta")
    out = {k: (theta[i] - q * np.sqrt(cov[i, i]), theta[i] + q * np.sqrt(cov[i, i])) for i, k in enumerate(names)}
    for name, f in _derived(c).items():
        g = _num_grad(f, theta)
        v, se = f(theta), float(np.sqrt(max(g @ cov @ g, 0.0)))
        out[name] = (v - q * se, v + q * se)
    return out


def bootstrap_intervals(theta: np.ndarray, pts: Points, s: float, df: int, c: Optional[float], objective: Objective, *,
                        replicates: int, seed: int, delta: float = HUBER_DELTA) -> tuple[dict[str, tuple[float, float]], np.ndarray]:
    """Parametric bootstrap: log L* = log L_hat + sigma* z with sigma* = s sqrt(df / chi2(df))
    drawn per replicate, each refitted by the global search; percentile intervals."""
    rng = np.random.default_rng(seed)
    log_n, log_d, _ = pts.logs
    fitted = residuals(theta, log_n, log_d, np.zeros_like(log_n))  # log L_hat, (K,)
    derived = _derived(c)
    rows = []
    for _ in range(replicates):
        sigma = s * np.sqrt(df / rng.chisquare(df))
        sample = Points(pts.n, pts.d, np.exp(fitted + sigma * rng.standard_normal(pts.K)))
        th = global_fit(sample, objective, delta=delta, grid=_GRID[::3], n_polish=2, extra_starts=[theta])
        rows.append([*th, *(f(th) for f in derived.values())])
    arr = np.array(rows)  # (R, 5 + len(derived))
    names = ("e", "a_coef", "alpha", "b_coef", "beta", *derived)
    lo, hi = np.percentile(arr, [2.5, 97.5], axis=0)
    return {k: (float(lo[i]), float(hi[i])) for i, k in enumerate(names)}, arr[:, :N_PARAMS]


# ------------------------------------------------------------------------------------------
# the fit with its intervals and flags
# ------------------------------------------------------------------------------------------
@dataclass
class FitND:
    law: LawND
    theta: np.ndarray  # (5,) e, a, alpha, b, beta
    objective: Objective
    K: int
    df: int
    s: Optional[float]  # residual sd of log loss (None at df = 0)
    ci: dict[str, tuple[float, float]]  # theta-scale and derived intervals (empty: none valid)
    ci_method: str  # wald_t | bootstrap | none
    grad_norm: float
    flags: list[str] = field(default_factory=list)
    at_compute: Optional[float] = None
    cov: Optional[np.ndarray] = None  # (5, 5) Wald covariance of theta
    draws: Optional[np.ndarray] = None  # (R, 5) bootstrap refits of theta

    def params(self) -> dict[str, float]:
        L = self.law
        return {"E": L.E, "A": L.A, "alpha": L.alpha, "B": L.B, "beta": L.beta}

    def ci95(self) -> dict[str, tuple[float, float]]:
        """Intervals of E, A, alpha, B, beta (E, A, B by exp of the log-scale interval)."""
        if not self.ci:
            return {}
        c, ex = self.ci, lambda k: (float(np.exp(self.ci[k][0])), float(np.exp(self.ci[k][1])))
        return {"E": ex("e"), "A": ex("a_coef"), "alpha": c["alpha"], "B": ex("b_coef"), "beta": c["beta"]}

    def compute_optimal(self) -> dict:
        """{"a", "b", "G"} (a + b = 1) and, where valid, their 95% intervals."""
        out = {"a": self.law.a, "b": self.law.b, "G": self.law.G}
        if self.ci:
            lo, hi = self.ci["a"]
            g_lo, g_hi = self.ci["log_G"]
            out["ci95"] = {"a": [lo, hi], "b": [1 - hi, 1 - lo], "G": [float(np.exp(g_lo)), float(np.exp(g_hi))]}
        return out

    def at(self) -> Optional[dict]:
        """The compute-optimal (N, D) and loss at `at_compute` FLOPs, with 95% intervals."""
        if self.at_compute is None:
            return None
        a = self.law.allocation(self.at_compute)
        out = {"C": a.C, "N_opt": a.N_opt, "D_opt": a.D_opt, "loss": a.loss, "ci95": None}
        if self.ci:
            iv = lambda k: [float(np.exp(self.ci[k][0])), float(np.exp(self.ci[k][1]))]  # noqa: E731
            out.update(ci95=iv("log_loss"), N_opt_ci95=iv("log_N_opt"), D_opt_ci95=iv("log_D_opt"))
        return out


def fit_flags(fit: FitND, pts: Points) -> list[str]:
    """What makes this fit untrustworthy, one line each (codes as in seqdb.scaling.flags)."""
    L, out, iv = fit.law, [], fit.ci95()
    for name, value in (("alpha", L.alpha), ("beta", L.beta)):
        if value <= 1e-3 or value >= EXP_MAX - 1e-3:
            out.append(flag(f"{name}_at_bound", f"{name} = {value:.4g} sits at a bound of [0, {EXP_MAX:g}]: no power-law decrease was found"))
        elif name in iv and iv[name][0] <= 0:
            out.append(flag("decrease_not_significant", f"the 95% interval of {name} [{iv[name][0]:.3g}, {iv[name][1]:.3g}] "
                                                         "includes 0: the decrease is not distinguishable from noise"))
    if L.E / float(pts.loss.min()) < 1e-3:
        out.append(flag("E_vanishing", f"E = {L.E:.3g} is below 1e-3 of the smallest loss ({pts.loss.min():.4g}): the floor is not identified"))
    for name, value in (("A", L.A), ("B", L.B)):
        if value > HUGE_COEF:
            out.append(flag(f"{name}_huge", f"{name} = {value:.3g} exceeds {HUGE_COEF:.0e}: not a power law over this range"))
    if fit.grad_norm > GRAD_TOL:
        out.append(flag("optimizer_not_converged", f"the objective's gradient is {fit.grad_norm:.2g} at the end (> {GRAD_TOL:g}): not at an optimum"))
    if not fit.ci:
        why = "0 residual degrees of freedom" if fit.df <= 0 else "a parameter is not identified by these points"
        out.append(flag("no_interval", f"no interval ({why})"))
    return out


def fit_law_nd(n: Sequence[float], d: Sequence[float], loss: Sequence[float], *, objective: Objective = "ls",
               ci: CiMethod = "wald", bootstrap: int = 200, seed: int = 0, at_compute: Optional[float] = None,
               delta: float = HUBER_DELTA) -> FitND:
    """Fit L(N, D) to K points (N parameters, D tokens, loss); see the module docstring."""
    pts = check_points(n, d, loss)
    theta = global_fit(pts, objective, delta=delta)
    df = pts.K - N_PARAMS
    r = residuals(theta, *pts.logs)
    s = float(np.sqrt((r**2).sum() / df)) if df > 0 else None
    intervals, method, cov, draws = {}, "none", None, None
    if s is not None and s > 0:
        if ci == "bootstrap":
            intervals, draws = bootstrap_intervals(theta, pts, s, df, at_compute, objective, replicates=bootstrap, seed=seed, delta=delta)
            method = "bootstrap"
        else:
            intervals, method, cov = wald_intervals(theta, pts, s, df, at_compute) or {}, "wald_t", wald_cov(theta, pts, s)
    fit = FitND(law_from_theta(theta), theta, objective, pts.K, max(df, 0), s, intervals, method if intervals else "none",
                free_gradient_norm(theta, pts, objective, delta), at_compute=at_compute, cov=cov, draws=draws)
    fit.flags = fit_flags(fit, pts)
    return fit


# ------------------------------------------------------------------------------------------
# the shared entry point: `seqdb.scaling.fit.fit_points(points, law="nd", ...)` lands here
# ------------------------------------------------------------------------------------------
def _at_compute(at, at_compute: Optional[float]) -> Optional[float]:  # noqa: ANN001
    """The compute budget to predict at: `at_compute`, or `at` given as {"C": FLOPs}."""
    if isinstance(at, dict) and "C" in at:
        return float(at["C"])
    if at is not None:
        raise ConfigError(f"--at {at}: with --law nd a prediction needs a compute budget (allowed: --at-compute C, FLOPs)")
    return at_compute


def fit_nd(points, *, objective: Objective = "ls", ci: CiMethod = "wald", bootstrap: int = 200, seed: int = 0,  # noqa: ANN001
           at=None, at_compute: Optional[float] = None, force: bool = False, extra_flags: Sequence[str] = ()):  # noqa: ANN001, ANN201
    """`seqdb.scaling.points.Point`s with N, D and loss -> a `FitResult` (law "nd"): params and
    ci95 hold E, A, alpha, B, beta; `compute_optimal` {"a", "b", "G"}; `at` the allocation at
    the compute budget (off, with the reason, when a severe flag is raised and not `force`)."""
    from seqdb.scaling.result import FitResult

    missing = [i + 1 for i, p in enumerate(points) if p.D is None]
    if missing:
        raise ConfigError(f"point {missing[0]}: no D (tokens); --law nd needs columns N, D, loss")
    fit = fit_law_nd([p.N for p in points], [p.D for p in points], [p.loss for p in points], objective=objective,
                     ci=ci, bootstrap=bootstrap, seed=seed, at_compute=_at_compute(at, at_compute))
    flags = fit.flags + list(extra_flags)
    result = FitResult("nd", objective, fit.K, fit.df, fit.params(), fit.ci95(), fit.ci_method, fit.s, flags,
                       extra={"compute_optimal": fit.compute_optimal(), "grad_norm": fit.grad_norm, "_fit": fit})
    severe = [f for f in flags if f.split(":", 1)[0] in SEVERE]
    if fit.at_compute is not None:
        result.at = fit.at()
        if severe and not force:
            result.at = {"C": fit.at_compute, "loss": None, "ci95": None, "off": f"prediction off: {severe[0]} (--force predicts anyway)"}
    return result


# ------------------------------------------------------------------------------------------
# the compute-optimal frontier with its band (the dashboard's Compute page)
# ------------------------------------------------------------------------------------------
def _allocations(theta: np.ndarray, cs: np.ndarray) -> np.ndarray:
    """log N_opt and log loss at each compute budget, (2, M)."""
    law = law_from_theta(theta)
    out = [law.allocation(float(c)) for c in cs]
    return np.log(np.array([[a.N_opt for a in out], [a.loss for a in out]]))


def frontier(fit: FitND, cs: Sequence[float]) -> dict[str, np.ndarray]:
    """N_opt(C), D_opt(C) and the loss there at compute budgets cs (M,), with 95% bands
    (delta method on the Wald covariance, or percentiles of the bootstrap refits); bands are
    absent where the fit has no interval."""
    cs = np.asarray(cs, dtype=float)
    mid = _allocations(fit.theta, cs)  # (2, M)
    out = {"C": cs, "N_opt": np.exp(mid[0]), "D_opt": cs / 6 / np.exp(mid[0]), "loss": np.exp(mid[1])}
    if fit.draws is not None:
        sims = np.array([_allocations(th, cs) for th in fit.draws])  # (R, 2, M)
        lo, hi = np.percentile(sims, 2.5, axis=0), np.percentile(sims, 97.5, axis=0)
    elif fit.cov is not None:
        from scipy.stats import t as student_t

        h = 1e-6 * np.maximum(1.0, np.abs(fit.theta))
        g = np.stack([(_allocations(fit.theta + h[i] * np.eye(N_PARAMS)[i], cs) - _allocations(fit.theta - h[i] * np.eye(N_PARAMS)[i], cs))
                      / (2 * h[i]) for i in range(N_PARAMS)], axis=-1)  # (2, M, 5)
        se = np.sqrt(np.maximum(np.einsum("kmi,ij,kmj->km", g, fit.cov, g), 0.0))  # (2, M)
        q = float(student_t.ppf(0.975, fit.df))
        lo, hi = mid - q * se, mid + q * se
    else:
        return out
    out.update(N_opt_lo=np.exp(lo[0]), N_opt_hi=np.exp(hi[0]), loss_lo=np.exp(lo[1]), loss_hi=np.exp(hi[1]))
    return out
