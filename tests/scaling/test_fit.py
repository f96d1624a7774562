"""L(N) fits: exact recovery, degenerate curves flagged, intervals where (and only where) valid."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqdb.errors import ConfigError
from seqdb.scaling.fit import band, budgets_of, fit_points
from seqdb.scaling.flags import code_of
from seqdb.scaling.points import Point

N6 = np.geomspace(1e5, 1e8, 6)


def pts(n, loss, groups=None):
    return [Point(float(a), float(b), group=None if groups is None else groups[i]) for i, (a, b) in enumerate(zip(n, loss))]


def codes(result):
    return {code_of(f) for f in result.flags}


@pytest.mark.parametrize("E,A,alpha", [(1.69, 406.4, 0.34), (1.0, 30.0, 0.3), (0.2, 8.0, 0.12), (2.5, 4e3, 0.7)])
def test_exact_points_reproduce_the_law(E, A, alpha):
    r = fit_points(pts(N6, E + A * N6**-alpha))
    assert r.params["E"] == pytest.approx(E, rel=1e-6) and r.params["A"] == pytest.approx(A, rel=1e-6)
    assert r.params["alpha"] == pytest.approx(alpha, rel=1e-7) and r.flags == []


def test_json_shape_and_wald_interval_brackets_the_estimate():
    rng = np.random.default_rng(3)
    loss = (1.7 + 400 * N6**-0.34) * np.exp(rng.normal(0, 0.01, 6))
    out = json.loads(json.dumps(fit_points(pts(N6, loss), at=2e9).to_json()))
    assert set(out) >= {"law", "objective", "K", "df", "params", "ci95", "ci_method", "s", "flags", "at"}
    assert (out["law"], out["objective"], out["K"], out["df"], out["ci_method"]) == ("n", "ls", 6, 3, "wald_t")
    for k in ("E", "A", "alpha"):
        lo, hi = out["ci95"][k]
        assert lo < out["params"][k] < hi
    lo, hi = out["at"]["ci95"]
    assert lo < out["at"]["loss"] < hi and out["at"]["N"] == 2e9
    resid = np.log(fit_points(pts(N6, loss)).predict(N6)) - np.log(loss)
    assert out["s"] == pytest.approx(np.sqrt((resid**2).sum() / 3), rel=1e-6)


def test_three_budgets_fit_without_interval_and_two_refused():
    r = fit_points(pts(N6[:3], 1.7 + 400 * N6[:3] ** -0.34), at=1e9)
    assert r.df == 0 and r.ci95 == {} and "no_interval" in codes(r) and r.at["ci95"] is None
    assert r.params["alpha"] == pytest.approx(0.34, rel=1e-6)
    with pytest.raises(ConfigError, match="at least 3 distinct budgets"):
        fit_points(pts(N6[:2], [2.0, 1.9]))


@pytest.mark.parametrize("loss,code", [
    (0.668 + 0.0124 * N6**0, "not_decreasing"),               # flat
    (1.0 + 1e-7 * N6**0.3, "not_decreasing"),                 # increasing
    (np.array([2.0, 1.8, 2.1, 1.7, 1.9, 1.95]), "alpha_at_bound"),  # no trend
    (3.0 - 0.1 * np.log10(N6), "E_vanishing"),                # decreasing, no floor
])
def test_degenerate_curves_are_flagged_and_not_extrapolated(loss, code):
    r = fit_points(pts(N6, loss), at=2e9)
    assert code in codes(r), r.flags
    assert r.at["loss"] is None and r.at["off"].startswith("extrapolation off")
    forced = fit_points(pts(N6, loss), at=2e9, force=True)
    assert forced.at["loss"] is not None


def test_a_slight_linear_drift_is_not_a_power_law():
    r = fit_points(pts(N6, 2.0 + 1e-3 * np.arange(6)[::-1] + np.array([0, 1e-4, -1e-4, 2e-4, 0, -2e-4])), at=1e9)
    assert codes(r) & {"alpha_at_bound", "E_vanishing", "A_huge"}, r.flags
    assert r.at["loss"] is None


def test_non_monotone_step_beyond_noise_is_flagged():
    loss = 1.7 + 400 * N6**-0.34
    loss[3] = loss[2] * 1.2  # a rise of 20% between two budgets
    assert "not_monotone" in codes(fit_points(pts(N6, loss)))


def test_replicates_pool_within_budget_spread_and_weight_the_means():
    rng = np.random.default_rng(0)
    n = np.repeat(N6[:4], 3)
    loss = (1.7 + 400 * n**-0.34) * np.exp(rng.normal(0, 0.01, n.size))
    b = budgets_of(pts(n, loss, groups=[f"b{int(x)}" for x in n]))
    ys = np.log(loss).reshape(4, 3)
    assert b.df_within == 8 and b.s_within == pytest.approx(np.sqrt(((ys - ys.mean(1, keepdims=True)) ** 2).sum() / 8))
    assert np.allclose(b.y, ys.mean(1)) and (b.w == 3).all()
    r = fit_points(pts(n, loss))  # without groups, equal N are replicates too
    assert r.K == 4 and r.df == 8 and r.s == pytest.approx(b.s_within) and r.extra["noise_from"] == "replicates"
    assert r.ci95["alpha"][0] < 0.34 < r.ci95["alpha"][1]


def test_bootstrap_is_seeded_and_band_is_ordered():
    rng = np.random.default_rng(5)
    loss = (1.7 + 400 * N6**-0.34) * np.exp(rng.normal(0, 0.01, 6))
    a = fit_points(pts(N6, loss), ci="bootstrap", bootstrap=20, seed=1, at=1e9)
    b = fit_points(pts(N6, loss), ci="bootstrap", bootstrap=20, seed=1, at=1e9)
    assert a.ci95 == b.ci95 and a.ci_method == "bootstrap" and a.at["ci95"][0] < a.at["loss"] < a.at["ci95"][1]
    lo, hi = band(a, np.geomspace(1e5, 1e9, 9))
    assert (lo < hi).all()
    lo_w, hi_w = band(fit_points(pts(N6, loss)), N6)
    assert (lo_w < loss * 1.05).all() and (hi_w > loss / 1.05).all()


def test_huber_is_an_option_and_resists_one_outlier():
    n = np.geomspace(1e5, 1e9, 9)
    loss = 1.0 + 30.0 * n**-0.3
    loss[4] *= 1.3
    r = fit_points(pts(n, loss), objective="huber")
    assert r.objective == "huber" and r.params["alpha"] == pytest.approx(0.3, rel=0.05)


def test_bad_options_and_points_are_one_line_errors():
    for kwargs, needle in (({"law": "x"}, "--law"), ({"objective": "l1"}, "--objective"), ({"ci": "profile"}, "--ci"),
                           ({"ci": "bootstrap", "bootstrap": 3}, "--bootstrap")):
        with pytest.raises(ConfigError, match=needle):
            fit_points(pts(N6, 2.0 + N6**-0.3), **kwargs)
    with pytest.raises(ConfigError, match="positive"):
        fit_points([Point(1e5, 2.0), Point(1e6, -1.0), Point(1e7, 1.5)])
