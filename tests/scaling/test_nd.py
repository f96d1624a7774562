"""L(N, D) = E + A/N^alpha + B/D^beta: recovery of a known truth, its intervals, the
compute-optimal allocation, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

from seqdb.errors import ConfigError
from seqdb.scaling.fit import fit_points
from seqdb.scaling.nd import GRAD_TOL, LawND, check_points, fit_law_nd, free_gradient_norm, global_fit
from seqdb.scaling.points import Point

TRUTH = LawND(E=1.69, A=406.4, alpha=0.34, B=410.7, beta=0.28)  # Chinchilla's published fit
N_GRID = np.geomspace(1e5, 1e8, 6)
D_GRID = np.geomspace(1e8, 1e10, 4)


def synthetic(noise: float, seed: int, truth: LawND = TRUTH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """6 sizes x 4 token counts, log-normal noise of sd `noise` on the loss."""
    n, d = np.meshgrid(N_GRID, D_GRID, indexing="ij")
    n, d = n.ravel(), d.ravel()
    loss = truth.predict(n, d) * np.exp(np.random.default_rng(seed).normal(0, noise, n.size))
    return n, d, loss


def test_noise_free_points_give_back_the_truth():
    fit = fit_law_nd(*synthetic(0.0, 0))
    for name, value in (("E", 1.69), ("A", 406.4), ("alpha", 0.34), ("B", 410.7), ("beta", 0.28)):
        assert fit.params()[name] == pytest.approx(value, rel=1e-5), name
    assert fit.grad_norm < GRAD_TOL


@pytest.mark.parametrize("objective", ["ls", "huber"])
def test_noisy_fit_recovers_the_truth_within_its_intervals(objective):
    truth = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}
    inside, at_inside, best = 0, 0, TRUTH.allocation(1e20).loss
    for seed in range(12):
        fit = fit_law_nd(*synthetic(0.01, seed), objective=objective, at_compute=1e20)
        iv = fit.ci95()
        assert set(iv) == set(truth) and fit.ci_method == "wald_t" and fit.df == 19
        inside += sum(iv[k][0] <= v <= iv[k][1] for k, v in truth.items())
        assert all(iv[k][0] < fit.params()[k] < iv[k][1] for k in truth)
        at_inside += fit.at()["ci95"][0] <= best <= fit.at()["ci95"][1]
    assert inside >= 0.85 * 12 * 5, f"the truth fell inside {inside} of {12 * 5} intervals"
    assert at_inside >= 9, f"the true compute-optimal loss fell inside {at_inside} of 12 intervals"


def test_bootstrap_intervals_hold_the_truth():
    fit = fit_law_nd(*synthetic(0.01, 3), ci="bootstrap", bootstrap=40, seed=1)
    assert fit.ci_method == "bootstrap"
    iv = fit.ci95()
    assert iv["alpha"][0] <= 0.34 <= iv["alpha"][1] and iv["beta"][0] <= 0.28 <= iv["beta"][1]
    assert iv["E"][0] <= 1.69 <= iv["E"][1]


def test_compute_optimal_allocation_minimises_the_loss_on_the_iso_flop_curve():
    law, c = TRUTH, 1e21
    co = law.allocation(c)
    assert law.a + law.b == pytest.approx(1.0, abs=1e-15)
    assert co.N_opt * co.D_opt == pytest.approx(c / 6, rel=1e-12)
    assert law.G == pytest.approx((0.34 * 406.4 / (0.28 * 410.7)) ** (1 / 0.62), rel=1e-12)
    n = np.geomspace(co.N_opt / 30, co.N_opt * 30, 4001)
    losses = law.predict(n, c / 6 / n)  # along C = 6 N D
    assert n[np.argmin(losses)] == pytest.approx(co.N_opt, rel=2e-3)
    assert co.loss == pytest.approx(losses.min(), rel=1e-9)


def test_json_holds_B_beta_compute_optimal_and_the_prediction_at_a_compute_budget():
    n, d, loss = synthetic(0.01, 5)
    points = [Point(N=float(a), loss=float(l), D=float(b)) for a, b, l in zip(n, d, loss)]
    out = fit_points(points, law="nd", at={"C": 1e20}).to_json()
    assert out["law"] == "nd" and out["K"] == 24 and out["df"] == 19
    assert set(out["params"]) == set(out["ci95"]) == {"E", "A", "alpha", "B", "beta"}
    co = out["compute_optimal"]
    assert co["a"] + co["b"] == pytest.approx(1.0) and co["G"] > 0
    assert co["ci95"]["a"][0] < co["a"] < co["ci95"]["a"][1]
    at = out["at"]
    assert at["N_opt"] * at["D_opt"] == pytest.approx(1e20 / 6)
    assert at["ci95"][0] < at["loss"] < at["ci95"][1]
    assert not out["flags"]


def test_five_points_fit_without_an_interval():
    n, d, loss = synthetic(0.01, 0)
    pick = [0, 5, 10, 15, 23]  # 5 points, 3+ distinct N and D
    fit = fit_law_nd(n[pick], d[pick], loss[pick])
    assert fit.df == 0 and fit.ci95() == {} and fit.ci_method == "none"
    assert any(f.startswith("no_interval: no interval (0 residual degrees of freedom)") for f in fit.flags)


def test_a_loss_that_ignores_tokens_is_flagged_not_extrapolated():
    flat = LawND(E=1.69, A=406.4, alpha=0.34, B=1e-9, beta=0.28)  # no dependence on D
    n, d, loss = synthetic(0.01, 2, truth=flat)
    points = [Point(N=float(a), loss=float(l), D=float(b)) for a, b, l in zip(n, d, loss)]
    result = fit_points(points, law="nd", at={"C": 1e22})
    codes = {f.split(":")[0] for f in result.flags}
    assert codes & {"beta_at_bound", "decrease_not_significant", "B_huge"}, result.flags
    if codes & {"beta_at_bound", "B_huge"}:
        assert result.at["loss"] is None and "prediction off" in result.at["off"]


def test_the_gradient_check_can_fail():
    pts = check_points(*synthetic(0.01, 4))
    theta = global_fit(pts)
    assert free_gradient_norm(theta, pts, "ls") < GRAD_TOL
    assert free_gradient_norm(theta + np.array([0, 0, 1e-3, 0, 0]), pts, "ls") > GRAD_TOL


@pytest.mark.parametrize("n, d, loss, needle", [
    ([1, 2, 3, 4], [1, 2, 3, 4], [1, 1, 1, 1], "at least 5 points, got 4"),
    ([1e5, 1e6, 1e7, 1e5, 1e6], [1e8, 1e8, 1e9, 1e9, 1e8], [3, 2, 2, 3, 2], "3 distinct D values, got 2"),
    ([1e5, 1e6, 1e7, 1e5, 1e6], [1e8, 1e9, 1e10, 1e9, 1e8], [3, 2, -2, 3, 2], "point 3: loss = -2.0"),
    ([1e5, 1e6, 1e7], [1e8, 1e9], [3, 2, 1], "different lengths"),
])
def test_unusable_points_are_refused_in_one_line(n, d, loss, needle):
    with pytest.raises(ConfigError) as err:
        fit_law_nd(n, d, loss)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_points_without_tokens_are_refused_for_law_nd():
    with pytest.raises(ConfigError, match="point 2: no D"):
        fit_points([Point(1e5, 3.0, 1e8), Point(1e6, 2.0), *[Point(10.0**k, 2.0, 1e9) for k in (7, 8, 9)]], law="nd")


def test_the_frontier_band_agrees_with_the_interval_at_one_compute_budget():
    from seqdb.scaling.nd import frontier

    fit = fit_law_nd(*synthetic(0.01, 6), at_compute=1e20)
    fr = frontier(fit, [1e18, 1e20, 1e22])
    at = fit.at()
    assert fr["N_opt"][1] == pytest.approx(at["N_opt"]) and fr["loss"][1] == pytest.approx(at["loss"])
    assert [fr["N_opt_lo"][1], fr["N_opt_hi"][1]] == pytest.approx(at["N_opt_ci95"], rel=1e-4)
    assert [fr["loss_lo"][1], fr["loss_hi"][1]] == pytest.approx(at["ci95"], rel=1e-4)
    assert (np.diff(fr["N_opt"]) > 0).all() and (fr["N_opt"] * fr["D_opt"] == pytest.approx(fr["C"] / 6))
    no_iv = fit_law_nd(*(a[[0, 5, 10, 15, 23]] for a in synthetic(0.01, 0)))
    assert "N_opt_lo" not in frontier(no_iv, [1e20])
