"""`seqdb scaling --law nd` over a database (SQLite and Postgres): a synthetic (budget, tokens)
ladder whose final losses follow a known L(N, D); the fit recovers it within its intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqdb.db.engine import session_scope
from seqdb.db.models import Budget, Experiment, Metric, Study, Trial
from seqdb.scaling.nd import LawND
from seqdb.views import connect
from seqdb.views.scaling_nd import scaling_nd_report
from tests.helpers import assert_one_line_error, run_cli_inprocess

TRUTH = LawND(E=1.2, A=60.0, alpha=0.35, B=900.0, beta=0.4)
SIZES = {"100k": 100_000, "300k": 300_000, "1M": 1_000_000, "3M": 3_000_000, "10M": 10_000_000}
TOKENS = (2_000_000, 8_000_000, 32_000_000, 128_000_000)


def _trial(s, study: Study, number: int, n: int, tokens: int, loss: float, state: str = "completed") -> None:
    t = Trial(study_id=study.study_id, number=number, config_hash=f"{study.study_id}-{number}", param_count=n + 17,
              config={}, params={}, state=state, best_val_loss=loss * 0.999, step=100, epochs_done=1, tokens=tokens)
    s.add(t)
    s.flush()
    for step, frac, value in ((50, 0.5, loss * 1.3), (100, 1.0, loss)):  # an earlier, not final, evaluation
        for name, v in (("val_loss", value), ("tokens", tokens * frac), ("flops", 6.0 * n * tokens * frac)):
            s.add(Metric(trial_id=t.trial_id, step=step, epoch=1, name=name, value=v, time=1.7e9 + step))


def seed_ladder(engine, noise: float = 0.01, seed: int = 0) -> None:
    """One search study per budget; per tokens rung 2 completed trials (the truth with log-normal
    noise, and a worse one) and a pruned one that must not count."""
    rng = np.random.default_rng(seed)
    with session_scope(engine) as s:
        exp = Experiment(name="ladder", yaml_text="name: ladder", content_hash="l" * 64, config={})
        s.add(exp)
        s.flush()
        for label, n in SIZES.items():
            b = Budget(experiment_id=exp.experiment_id, label=label, n_params=n)
            s.add(b)
            s.flush()
            st = Study(experiment_id=exp.experiment_id, budget_id=b.budget_id, horizon=1, name=f"ladder/{label}/h1",
                       strategy="sample", n_trials=3 * len(TOKENS), max_epochs=1, objectives=[], config={})
            s.add(st)
            s.flush()
            for i, d in enumerate(TOKENS):
                loss = float(TRUTH.predict(n + 17, d)) * float(np.exp(rng.normal(0, noise)))
                _trial(s, st, 3 * i, n, d, loss)
                _trial(s, st, 3 * i + 1, n, d, loss + 0.05)
                _trial(s, st, 3 * i + 2, n, d, loss * 0.5, state="pruned")


def test_the_fit_over_the_ladder_recovers_the_truth_within_its_intervals(engine, db_url):
    seed_ladder(engine)
    with connect(db_url) as vc:
        (hs,) = scaling_nd_report(vc, experiment="ladder", at={"C": 1e17})
    assert (hs.experiment, hs.horizon, len(hs.points)) == ("ladder", 1, len(SIZES) * len(TOKENS))
    assert {(p.param_count - 17, p.tokens) for p in hs.points} == {(n, d) for n in SIZES.values() for d in TOKENS}
    assert all(p.n_trials == 2 for p in hs.points) and not hs.flags
    fit = hs.fit
    assert fit.law == "nd" and fit.K == 20 and fit.df == 15 and fit.ci_method == "wald_t"
    for name in ("E", "A", "alpha", "B", "beta"):
        lo, hi = fit.ci95[name]
        assert lo <= getattr(TRUTH, name) <= hi, (name, lo, hi)
    co = fit.extra["compute_optimal"]
    assert co["a"] + co["b"] == pytest.approx(1.0) and co["ci95"]["a"][0] <= TRUTH.a <= co["ci95"]["a"][1]
    assert fit.at["N_opt"] * fit.at["D_opt"] == pytest.approx(1e17 / 6)


def test_cli_law_nd_json_and_text(engine, db_url):
    seed_ladder(engine, seed=1)
    out = run_cli_inprocess("--db", db_url, "scaling", "--law", "nd", "--experiment", "ladder", "--at-compute", "1e17", "--json")
    assert out.code == 0, out.err
    (report,) = json.loads(out.out)
    assert report["law"] == "nd" and len(report["points"]) == 20
    fit = report["fit"]
    assert set(fit["params"]) == set(fit["ci95"]) == {"E", "A", "alpha", "B", "beta"}
    assert set(fit["compute_optimal"]) >= {"a", "b", "G"} and fit["at"]["C"] == 1e17
    text = run_cli_inprocess("--db", db_url, "scaling", "--law", "nd")
    assert text.code == 0 and "compute-optimal under C = 6ND" in text.out and "(a + b = 1)" in text.out
    assert "128,000,000" in text.out  # the tokens column
    assert_one_line_error(run_cli_inprocess("--db", db_url, "scaling", "--at-compute", "1e17"), "--at-compute is for --law nd")
    assert_one_line_error(run_cli_inprocess("--db", db_url, "scaling", "--law", "nd", "--experiment", "nope"), "nothing to fit")


def test_one_tokens_value_per_budget_shows_the_points_and_says_why_there_is_no_fit(engine, db_url):
    with session_scope(engine) as s:
        exp = Experiment(name="flat", yaml_text="name: flat", content_hash="f" * 64, config={})
        s.add(exp)
        s.flush()
        for label, n in SIZES.items():
            b = Budget(experiment_id=exp.experiment_id, label=label, n_params=n)
            s.add(b)
            s.flush()
            st = Study(experiment_id=exp.experiment_id, budget_id=b.budget_id, horizon=1, name=f"flat/{label}/h1",
                       strategy="sample", n_trials=1, max_epochs=1, objectives=[], config={})
            s.add(st)
            s.flush()
            _trial(s, st, 0, n, TOKENS[0], float(TRUTH.predict(n, TOKENS[0])))
    with connect(db_url) as vc:
        (hs,) = scaling_nd_report(vc, experiment="flat")
    assert hs.fit is None and len(hs.points) == 5 and "at least 3 distinct D values, got 1" in hs.message
