"""Flags: what makes a fitted curve untrustworthy, said in one line each.

A flag is the string "code: explanation". Severe codes turn the extrapolation off (unless
forced): the curve's shape is not a power law towards a floor, so a number far outside the
measured range would be invented rather than estimated.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

SEVERE = frozenset({"not_decreasing", "alpha_at_bound", "E_vanishing", "A_huge",
                    "beta_at_bound", "B_huge", "optimizer_not_converged"})  # the last three: L(N, D) (nd.py)
ALPHA_BOUNDS = (0.0, 4.0)
ALPHA_EDGE = 1e-2  # alpha within this of a bound counts as "at the bound"
E_RATIO_MIN = 1e-3  # E / min(L) below this: the floor went to zero
A_MAX = 1e15


def flag(code: str, message: str) -> str:
    return f"{code}: {message}"


def code_of(f: str) -> str:
    return f.split(":", 1)[0]


def severe(flags: Sequence[str]) -> list[str]:
    return [f for f in flags if code_of(f) in SEVERE]


def shape_flags(n: np.ndarray, loss: np.ndarray, s: Optional[float], w: np.ndarray) -> list[str]:
    """Flags from the points alone. n, loss, w: (K,) sorted by n; s: replicate sd of log loss (None: no replicates)."""
    out, y = [], np.log(loss)
    if y[-1] >= y[0]:
        out.append(flag("not_decreasing", f"the loss at the largest N ({loss[-1]:.4g}) is not below the loss at the smallest ({loss[0]:.4g})"))
        return out
    steps = np.diff(y)  # (K-1,)
    noise = 2 * s * np.sqrt(1 / w[1:] + 1 / w[:-1]) if s is not None else np.zeros_like(steps)
    ups = np.nonzero(steps > noise)[0]
    if len(ups):
        i = int(ups[0])
        beyond = "by more than the replicate noise" if s is not None else "(no seed replicates to tell it from noise)"
        out.append(flag("not_monotone", f"the loss rises from N={n[i]:.4g} ({loss[i]:.4g}) to N={n[i + 1]:.4g} ({loss[i + 1]:.4g}) {beyond}"))
    return out


def parameter_flags(E: float, A: float, alpha: float, min_loss: float, alpha_ci: Optional[tuple[float, float]]) -> list[str]:
    """Flags from the fitted parameters (and the alpha interval, where there is one)."""
    out = []
    lo, hi = ALPHA_BOUNDS
    if alpha <= lo + ALPHA_EDGE or alpha >= hi - ALPHA_EDGE:
        out.append(flag("alpha_at_bound", f"alpha = {alpha:.4g} sits at (within {ALPHA_EDGE:g} of) a bound of [{lo:g}, {hi:g}]: no power-law decrease was found"))
    if E / min_loss < E_RATIO_MIN:
        out.append(flag("E_vanishing", f"E = {E:.3g} is below {E_RATIO_MIN:g} of the smallest loss ({min_loss:.4g}): the floor is not identified"))
    if A > A_MAX:
        out.append(flag("A_huge", f"A = {A:.3g} exceeds {A_MAX:.0e}: the curve is not a power law over this range"))
    if alpha_ci is not None and alpha_ci[0] <= 0 < alpha:
        out.append(flag("decrease_not_significant", f"the 95% interval of alpha [{alpha_ci[0]:.3g}, {alpha_ci[1]:.3g}] includes 0: "
                                                    "the decrease is not distinguishable from noise"))
    return out
