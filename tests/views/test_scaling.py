"""`seqdb scaling` over a database: the points, seed replicates, the database's flags, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sqlalchemy as sa

from seqdb.db.engine import session_scope
from seqdb.db.models import Study, Trial
from seqdb.experiment.budgets import parse_budget
from seqdb.errors import ConfigError
from seqdb.scaling.flags import code_of
from seqdb.views import connect
from seqdb.views.scaling import scaling_report
from tests.helpers import assert_one_line_error, run_cli_inprocess
from tests.views.seed import A_TRUE, ALPHA_TRUE, E_OF_H, seed, true_loss


def codes(flags):
    return {code_of(f) for f in flags}


def test_report_over_the_seeded_database(vc):
    report = {(h.experiment, h.horizon): h for h in scaling_report(vc, at=2_000_000_000)}
    for h, E in E_OF_H.items():
        hs = report[("scale", h)]
        assert [p.budget for p in hs.points] == ["500k", "2M", "20M"] and [p.n_seeds for p in hs.points] == [1, 1, 1]
        fit = hs.fit
        assert fit.params["E"] == pytest.approx(E, rel=1e-6) and fit.params["A"] == pytest.approx(A_TRUE, rel=1e-5)
        assert fit.params["alpha"] == pytest.approx(ALPHA_TRUE, rel=1e-6)
        assert fit.K == 3 and fit.ci95 == {} and "no_interval" in codes(fit.flags)  # 3 budgets, no replicates
        assert "study_incomplete" in codes(fit.flags)  # every study still has a running and a pending trial
        assert fit.at["loss"] == pytest.approx(true_loss(2e9, h), rel=1e-6) and fit.at["ci95"] is None
    mo = report[("mo", 1)]
    assert mo.fit is None and "at least 3" in mo.message and len(mo.points) == 1


def _replicate(s, best: Trial, losses) -> None:  # noqa: ANN001
    for k, loss in enumerate(losses):
        s.add(Trial(study_id=best.study_id, number=100 + k, config_hash=f"{best.config_hash}-seed{k}", param_count=best.param_count,
                    config=best.config, params=best.params, state="completed", best_val_loss=loss, values=[loss],
                    step=best.step, epochs_done=best.epochs_done, seed=1000 + k, replicate_of=best.trial_id))


def test_seed_replicates_feed_the_fit_and_never_count_as_effort_or_best(engine, db_url):
    seeded = seed(engine)
    rng = np.random.default_rng(0)
    with session_scope(engine) as s:
        for label in ("500k", "2M", "20M"):
            best = s.get(Trial, seeded.best_trial[(label, 1)])
            _replicate(s, best, [best.best_val_loss * math.exp(rng.normal(0, 0.01)) for _ in range(2)] + [best.best_val_loss * 0.5])
    with connect(db_url) as vc:
        (hs,) = scaling_report(vc, experiment="scale", horizon=1, at=2_000_000_000)
    for p in hs.points:
        assert p.trial_id == seeded.best_trial[(p.budget, 1)] and p.n_finished == 3 and p.n_completed == 2
        assert p.n_seeds == 4 and p.seed_losses[0] == p.best_val_loss
        logs = np.log(p.seed_losses)
        assert p.seed_loss_mean == pytest.approx(math.exp(logs.mean()), rel=1e-12)
        assert p.seed_log_loss_sd == pytest.approx(logs.std(ddof=1), rel=1e-9)
    fit = hs.fit
    assert fit.K == 3 and fit.df == 9 and fit.extra["noise_from"] == "replicates" and fit.ci_method == "wald_t"
    assert set(fit.ci95) == {"E", "A", "alpha"} and fit.at["ci95"][0] < fit.at["loss"] < fit.at["ci95"][1]
    pooled = math.sqrt(sum(((np.log(p.seed_losses) - np.log(p.seed_losses).mean()) ** 2).sum() for p in hs.points) / 9)
    assert fit.s == pytest.approx(pooled, rel=1e-9)


def test_unequal_effort_unconverged_and_edge_of_range_are_flagged(engine, db_url):
    seeded = seed(engine)
    with session_scope(engine) as s:
        best = {label: s.get(Trial, seeded.best_trial[(label, 3)]) for label in ("500k", "2M", "20M")}
        for k in range(4):  # the 20M budget gets 6 completed trials, the others 2
            s.add(Trial(study_id=best["20M"].study_id, number=50 + k, config_hash=f"extra{k}", param_count=best["20M"].param_count,
                        config=best["20M"].config, params={"learning_rate": 3e-4}, state="completed",
                        best_val_loss=best["20M"].best_val_loss + 0.1, step=50, epochs_done=5))
        best["2M"].best_step = best["2M"].step  # best at its last step: still improving
        best["500k"].tokens = best["500k"].tokens * 2  # the smallest budget's best trial saw twice the data
        s.get(Study, best["500k"].study_id).config = {"search": {"space": {"learning_rate": [1e-4, 3e-4, 1e-3]}}}
        s.execute(sa.update(Trial).where(Trial.study_id.in_([b.study_id for b in best.values()]), Trial.state.in_(["running", "pending"]))
                  .values(state="completed", best_val_loss=9.0, step=50, epochs_done=5))
        for label, b in best.items():  # every study has run all its trials
            s.get(Study, b.study_id).n_trials = 9 if label == "20M" else 5
    with connect(db_url) as vc:
        (hs,) = scaling_report(vc, experiment="scale", horizon=3)
    got = codes(hs.fit.flags)
    assert {"unequal_effort", "not_converged", "edge_of_search_range"} <= got and "study_incomplete" not in got
    text = " ".join(hs.fit.flags)
    assert "500k: learning_rate=0.001 at the high end" in text and "the best trial of 2M was" in text and "20M: 8" in text
    assert "different tokens trained by the best trial" in text


def test_scaling_cli(seeded_db):
    url, _ = seeded_db
    out = run_cli_inprocess("--db", url, "scaling", "--experiment", "scale", "--horizon", "3", "--at", "2B", "--json")
    assert out.code == 0, out.err
    (hs,) = json.loads(out.out)
    assert hs["fit"]["params"]["E"] == pytest.approx(E_OF_H[3], rel=1e-6) and hs["fit"]["at"]["N"] == 2e9
    assert hs["split"] == "validation" and [p["epochs_total"] for p in hs["points"]] == [12, 12, 12]
    assert "study_incomplete" in codes(hs["fit"]["flags"])
    text = run_cli_inprocess("--db", url, "scaling", "--experiment", "scale", "--horizon", "1", "--at", "2B")
    assert text.code == 0 and "flag study_incomplete" in text.out and "(no interval)" in text.out and "L(N=2e+09)" in text.out
    text = run_cli_inprocess("--db", url, "scaling", "--experiment", "mo")
    assert text.code == 0 and "no fit" in text.out
    assert_one_line_error(run_cli_inprocess("--db", url, "scaling", "--experiment", "nope"), "nope")
    assert_one_line_error(run_cli_inprocess("--db", url, "scaling", "--at", "lots"), "lots")
    assert_one_line_error(run_cli_inprocess("--db", url, "scaling", "--ci", "exact"), "--ci", "wald")


def test_parse_budget_for_at():
    assert parse_budget("2B") == 2_000_000_000 and parse_budget("500k") == 500_000
    with pytest.raises(ConfigError):
        parse_budget("two billion")


def test_edge_of_a_list_or_a_distribution():
    from seqdb.views.scaling import _edge

    assert [_edge(v, [1e-4, 3e-4, 1e-3]) for v in (1e-4, 3e-4, 1e-3)] == ["low", None, "high"]
    assert _edge(1e-3, [1e-4, 1e-3]) is None  # two values: no inside to be at the edge of
    dist = {"low": 1e-4, "high": 1e-2, "log": True}
    assert [_edge(v, dist) for v in (1.2e-4, 1e-3, 9e-3)] == ["low", None, "high"]
    assert _edge(0.5, {"low": 0.0, "high": 10.0}) == "low" and _edge(5.0, {"low": 0.0, "high": 10.0}) is None
    assert _edge("gelu", ["gelu", "relu", "swiglu"]) is None and _edge(True, [0, 1, 2]) is None
