"""The scaling-law fit on synthetic data with known E, A, alpha, and `seqdb scaling` over the seeded DB."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqdb.errors import ConfigError
from seqdb.experiment.budgets import parse_budget
from seqdb.views.scaling import bootstrap_fit, fit_power_law, n_grid_for, scaling_report
from tests.helpers import assert_one_line_error, run_cli_inprocess
from tests.views.seed import A_TRUE, ALPHA_TRUE, E_OF_H, true_loss

CASES = [(1.0, 30.0, 0.3), (1.69, 406.4, 0.34), (0.2, 8.0, 0.12)]


@pytest.mark.parametrize("E,A,alpha", CASES)
def test_fit_recovers_known_parameters_under_noise(E, A, alpha):
    rng = np.random.default_rng(0)
    n = np.geomspace(3e5, 3e9, 8)
    loss = (E + A * n**-alpha) * np.exp(rng.normal(0.0, 0.002, n.size))
    fit = fit_power_law(n, loss)
    assert fit.E == pytest.approx(E, rel=0.05)
    assert fit.alpha == pytest.approx(alpha, rel=0.1)
    assert fit.predict(2e10) == pytest.approx(E + A * 2e10**-alpha, rel=0.01)


def test_fit_is_robust_to_one_outlier():
    n = np.geomspace(1e5, 1e9, 9)
    loss = 1.0 + 30.0 * n**-0.3
    loss[4] *= 1.3  # one badly tuned budget
    fit = fit_power_law(n, loss)
    assert fit.E == pytest.approx(1.0, rel=0.03) and fit.alpha == pytest.approx(0.3, rel=0.05)


def test_bootstrap_intervals_cover_the_truth_and_band_is_ordered():
    rng = np.random.default_rng(1)
    n = np.geomspace(1e5, 1e8, 6)
    truth = 1.0 + 30.0 * n**-0.3
    pools = [list(t * np.exp(np.abs(rng.normal(0, 0.01, 6)))) + [t * 1.001] for t in truth]
    fit = fit_power_law(n, [min(p) for p in pools])
    grid = n_grid_for(n, at=2_000_000_000)
    b = bootstrap_fit(n, pools, fit, grid, replicates=30, seed=0)
    for iv, est, true in ((b.E, fit.E, 1.0), (b.A, fit.A, 30.0), (b.alpha, fit.alpha, 0.3)):
        assert iv.low < iv.high and iv.low <= est * 1.001 and est <= iv.high * 1.001
        assert iv.low * 0.97 <= true <= iv.high * 1.03  # the best-of-trials noise is upward only
    assert (b.band_low <= b.band_high).all() and grid[-1] >= 2e9
    iv = b.predict_interval(2e9)
    assert iv.low <= fit.predict(2e9) <= iv.high


def test_no_fit_below_three_budgets():
    with pytest.raises(ConfigError, match="at least 3"):
        fit_power_law([1e6, 1e7], [2.0, 1.5])
    with pytest.raises(ConfigError, match="positive"):
        fit_power_law([1e6, 1e7, 1e8], [2.0, 0.0, 1.5])


def test_parse_budget_for_at():
    assert parse_budget("2B") == 2_000_000_000 and parse_budget("500k") == 500_000
    with pytest.raises(ConfigError):
        parse_budget("two billion")


def test_report_over_the_seeded_database(vc):
    report = {(h.experiment, h.horizon): h for h in scaling_report(vc, at=2_000_000_000, replicates=10)}
    for h, E in E_OF_H.items():
        hs = report[("scale", h)]
        assert [p.budget for p in hs.points] == ["500k", "2M", "20M"]
        assert hs.fit.E == pytest.approx(E, rel=1e-3) and hs.fit.A == pytest.approx(A_TRUE, rel=1e-2)
        assert hs.fit.alpha == pytest.approx(ALPHA_TRUE, rel=1e-3)
        assert hs.at.loss == pytest.approx(true_loss(2e9, h), rel=1e-4)
    mo = report[("mo", 1)]
    assert mo.fit is None and "needs at least 3" in mo.message and len(mo.points) == 1


def test_scaling_cli(seeded_db):
    url, _ = seeded_db
    out = run_cli_inprocess("--db", url, "scaling", "--experiment", "scale", "--horizon", "3", "--at", "2B",
                            "--bootstrap", "10", "--json")
    assert out.code == 0, out.err
    (hs,) = json.loads(out.out)
    assert hs["fit"]["E"] == pytest.approx(E_OF_H[3], rel=1e-3) and hs["at"]["n"] == 2_000_000_000
    assert [p["epochs_total"] for p in hs["points"]] == [12, 12, 12]
    text = run_cli_inprocess("--db", url, "scaling", "--experiment", "mo", "--bootstrap", "0")
    assert text.code == 0 and "no fit" in text.out
    assert_one_line_error(run_cli_inprocess("--db", url, "scaling", "--experiment", "nope"), "nope")
    assert_one_line_error(run_cli_inprocess("--db", url, "scaling", "--at", "lots"), "lots")
