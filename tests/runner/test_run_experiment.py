"""`seqdb run --experiment E`: every (budget, horizon) study with one pool of workers, the
experiment's progress line, and the long-run warning (printed, never a refusal)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from seqdb.app.demo import demo_experiment, setup_project
from seqdb.search.plan import BudgetEstimate, budget_estimates, long_run_warnings, trial_costs
from tests.helpers import assert_one_line_error, run_cli


def _experiment() -> dict:
    exp = demo_experiment(quick=True)
    exp["name"], exp["horizons"] = "runall", [1, 2]
    exp["training"].update(max_epochs=1, max_steps=4, max_eval_batches=1)
    return exp


def test_run_experiment_creates_every_study_and_one_pool_drains_them(empty_db_url, tmp_path):
    path = tmp_path / "proj"
    _, engine, _ = setup_project(path, True, database_url=empty_db_url, experiment=_experiment())
    result = run_cli("--project", str(path), "run", "--experiment", "runall", "--workers", "2", "--no-live", "--warn-hours", "0",
                     "--lease-seconds", "5", timeout=400)
    assert result.code == 0, result.err[-3000:] + result.out[-3000:]
    assert "4 studies of runall (10k, 30k x h 1, 2)" in result.out
    assert "warning: budget 10k:" in result.out and "--device cuda" in result.out, result.out  # warned, then ran anyway
    assert "experiment runall: studies 4/4 done · trials 4 completed" in result.out, result.out
    with engine.connect() as c:
        studies = c.execute(sa.text("SELECT s.name, s.horizon, b.label FROM study s JOIN budget b ON b.budget_id = s.budget_id")).all()
        assert sorted((s.label, s.horizon) for s in studies) == [("10k", 1), ("10k", 2), ("30k", 1), ("30k", 2)]
        trials = c.execute(sa.text("SELECT study_id, state, lease_owner FROM trial")).all()
        assert len(trials) == 4 and {t.state for t in trials} == {"completed"}
        by_worker: dict = {}
        for t in trials:
            by_worker.setdefault(t.lease_owner, set()).add(t.study_id)
        assert any(len(s) > 1 for s in by_worker.values()), "a worker should have moved on to another study"
        workers = c.execute(sa.text("SELECT worker_id, info FROM worker")).all()
        ids = [r.study_id for r in c.execute(sa.text("SELECT study_id FROM study"))]
    assert len(workers) == 2  # one pool of two, each claiming across all four studies (which one trains what is timing)
    assert all(sorted((w.info if isinstance(w.info, dict) else json.loads(w.info))["studies"]) == sorted(ids) for w in workers)
    costs = trial_costs(engine, ids, states=("completed",))
    assert len(costs) == 4 and all(k.steps_total == 4 and k.steps_done == 4 and k.flops_left == 0 for k in costs)
    assert {e.budget: e.trials for e in budget_estimates(costs, 1e9)} == {"10k": 2, "30k": 2}
    assert costs[0].flops_per_step > 0
    engine.dispose()


def test_run_filters_by_repeatable_budget_and_horizon_and_checks_them(tmp_path):
    """The selection is backend-independent: SQLite only, one trial trained (--once)."""
    path = tmp_path / "proj"
    _, engine, _ = setup_project(path, True, database_url=f"sqlite:///{tmp_path / 'seqdb.db'}", experiment=_experiment())
    bad = run_cli("--project", str(path), "run", "--budget", "10k", "--horizon", "7", "--no-live")
    assert_one_line_error(bad, "horizon 7", "allowed: 1, 2")
    ok = run_cli("--project", str(path), "run", "--budget", "30k", "--horizon", "2", "--horizon", "1", "--once", "--no-live", timeout=300)
    assert ok.code == 0, ok.err[-3000:]
    with engine.connect() as c:
        rows = c.execute(sa.text("SELECT b.label, s.horizon FROM study s JOIN budget b ON b.budget_id = s.budget_id")).all()
    assert sorted(tuple(r) for r in rows) == [("30k", 1), ("30k", 2)]
    assert "2 studies of runall (30k x h 2, 1)" in ok.out and "studies 1/2 done · trials 1 completed, 1 pending" in ok.out
    engine.dispose()


def test_long_run_warning_names_the_estimate_and_the_faster_options():
    big = BudgetEstimate("20M", trials=8, steps=8000, flops=8e15, seconds=8e15 / 5e10)
    small = BudgetEstimate("2M", trials=8, steps=8000, flops=8e14, seconds=8e14 / 5e10 / 100)
    mid = BudgetEstimate("5M", trials=8, steps=8000, flops=2e15, seconds=3000.0)
    lines = long_run_warnings([small, mid, big], "cpu", 5e10, workers=2)
    assert len(lines) == 1, lines
    assert "--budget 5M" in lines[0]  # the largest budget that fits the limit
    assert lines[0].startswith("budget 20M: 8 open trial(s), 8,000 steps, 8.00e+15 FLOPs; at 50 GFLOP/s measured on cpu")
    assert "at least 22.2 h with 2 worker(s)" in lines[0] and "--device cuda" in lines[0]
    assert long_run_warnings([big], "cuda", 5e10)[0].count("--device cuda") == 0
    assert long_run_warnings([small], "cpu", 5e10) == []


def test_experiment_progress_counts_studies_trials_workers_and_measures_the_eta(db_url, tmp_path):
    import io

    from rich.console import Console

    from seqdb.db.models import Worker
    from seqdb.runner.progress import ExperimentProgress
    from seqdb.search.plan import plan_studies

    project, engine2, exp = setup_project(tmp_path / "proj", True, database_url=db_url, experiment=_experiment())
    studies = plan_studies(engine2, project, "runall", ["10k", "30k"], [1, 2])
    ids = [p.study_id for p in studies]
    costs = {c.trial_id: c for c in trial_costs(engine2, ids)}
    first, second = sorted(costs)[:2]
    with engine2.begin() as c:  # trial 1 done, trial 2 half-way on a worker; the others pending
        c.execute(sa.text("UPDATE trial SET state = 'completed', step = 4 WHERE trial_id = :t"), {"t": first})
        c.execute(sa.text("UPDATE trial SET state = 'running', step = 2 WHERE trial_id = :t"), {"t": second})
    from seqdb.db.engine import session_scope

    with session_scope(engine2) as s:
        s.add(Worker(name="h:1:x", host="h", pid=1, state="running", current_trial_id=second, tokens_per_s=1500.0,
                     info={"label": "w0", "studies": ids}))
    out = io.StringIO()
    progress = ExperimentProgress(engine2, "runall", ids, live=False, console=Console(file=out, width=200))
    snap = progress.snapshot()
    assert snap["studies"] == 4 and snap["studies_done"] == 1 and snap["by_state"] == {"completed": 1, "running": 1, "pending": 2}
    want_left = sum(c.flops_left for c in costs.values() if c.trial_id != first) - 2 * costs[second].flops_per_step
    assert abs(snap["left_flops"] - want_left) < 1e-6 * want_left
    assert progress.eta(snap, 100.0) == (None, None)  # the first reading starts the clock
    with engine2.begin() as c:
        c.execute(sa.text("UPDATE trial SET step = 3 WHERE trial_id = :t"), {"t": second})
    later = progress.snapshot()
    rate, left = progress.eta(later, 110.0)
    assert abs(rate - costs[second].flops_per_step / 10.0) < 1e-6 * rate and abs(left - later["left_flops"] / rate) < 1e-6 * left
    Console(file=out, width=200).print(progress.render(later, 110.0))
    text = out.getvalue()
    assert "studies 1/4 done · trials 1 completed, 2 pending, 1 running" in text and "runall/10k/h2" in text and "3/4" in text and "1.5k" in text
    engine2.dispose()
