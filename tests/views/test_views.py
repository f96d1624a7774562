"""The views over a seeded database, on SQLite and Postgres: contents, liveness, exactness."""

from __future__ import annotations

import pytest

from seqdb.db.engine import session_scope
from seqdb.db.models import Metric, Trial
from seqdb.views import VIEW_NAMES, sql
from tests.views.seed import heartbeat, seed, BUDGETS, HORIZONS, MO_FRONT_NUMBERS, exact_params, true_loss


def rows(vc, query, params=None):
    return sql(vc, query, params).to_pylist()


def test_every_view_answers(vc):
    counts = {v: rows(vc, f"SELECT count(*) AS n FROM {v}")[0]["n"] for v in VIEW_NAMES}
    assert counts["trials"] == 6 * 5 + 5
    assert counts["study_progress"] == 7
    assert counts["scaling_points"] == 7 and counts["best_trials"] == 7
    assert counts["checkpoints"] == 6 * 3
    assert counts["learning_curves"] == 6 * 3 * 20  # train_loss, val_loss, tokens, flops at 5 steps
    assert counts["workers"] == 2
    assert counts["trial_objectives"] == 6 * 3 + 5 * 2
    assert counts["pareto_front"] == len(MO_FRONT_NUMBERS)


def test_scaling_points_carry_exact_counts_and_best_losses(vc, seeded):
    got = rows(vc, "SELECT * FROM scaling_points WHERE experiment = 'scale' ORDER BY horizon, param_count")
    assert [(r["budget"], r["horizon"]) for r in got] == [(b, h) for h in HORIZONS for b in BUDGETS]
    for r in got:
        assert r["param_count"] == exact_params(BUDGETS[r["budget"]])
        assert r["best_val_loss"] == pytest.approx(true_loss(r["param_count"], r["horizon"]), rel=1e-12)
        assert r["trial_id"] == seeded.best_trial[(r["budget"], r["horizon"])]
        assert (r["n_finished"], r["n_completed"], r["epochs_total"]) == (3, 2, 12)


def test_best_trials_flatten_the_config(vc):
    got = rows(vc, "SELECT * FROM best_trials WHERE experiment = 'scale' AND budget = '2M' AND horizon = 3")
    assert len(got) == 1
    r = got[0]
    assert (r["d_model"], r["n_layers"], r["n_head"], r["n_kv_heads"], r["d_ff"]) == (64, 2, 4, 4, 256)
    assert (r["activation"], r["positional"], r["norm"], r["prenorm"], r["dropout"]) == ("swiglu", "rope", "rmsnorm", True, 0.1)
    assert (r["learning_rate"], r["scheduler"], r["warmup_steps"], r["context_length"]) == (1e-3, "cosine", 10, 32)
    assert (r["batch_size"], r["accumulation"], r["effective_batch_size"]) == (16, 4, 64)
    assert r["state"] == "completed" and r["duration_s"] == pytest.approx(540, abs=1)


def test_study_progress_counts_and_eta(vc):
    got = {r["study"]: r for r in rows(vc, "SELECT * FROM study_progress")}
    r = got["scale/500k/h1"]
    assert (r["pending"], r["running"], r["completed"], r["pruned"], r["finished"], r["total"]) == (1, 1, 2, 1, 3, 5)
    assert r["remaining"] == 3 and r["progress"] == pytest.approx(0.5)
    assert r["live_workers"] == 1 and r["eta_s"] == pytest.approx(3 * 540, rel=0.01)
    assert got["mo/2M/h1"]["eta_s"] == 0 and got["mo/2M/h1"]["progress"] == 1


def test_workers_alive_and_current_trial(vc, seeded, seeded_db):
    heartbeat(seeded_db[0], seeded.alive_worker)
    got = {r["name"]: r for r in rows(vc, "SELECT * FROM workers")}
    alive, dead = got[seeded.alive_worker], got[seeded.dead_worker]
    assert alive["alive"] is True and alive["heartbeat_age_s"] < 60 and alive["current_trial_state"] == "running"
    assert dead["alive"] is False and dead["heartbeat_age_s"] > 3000


def test_pareto_front_is_the_non_dominated_set(vc, seeded):
    got = rows(vc, "SELECT * FROM pareto_front")
    assert {r["trial_id"] for r in got} == seeded.mo_front_trial_ids
    assert all(r["objectives"] == ["val_loss", "latency_ms"] and r["study_id"] == seeded.mo_study_id for r in got)


def test_learning_curve_macro_matches_the_view(vc, seeded):
    tid = seeded.best_trial[("20M", 1)]
    fast = rows(vc, "SELECT * FROM learning_curve(?)", [tid])
    slow = rows(vc, "SELECT * FROM learning_curves WHERE trial_id = ? ORDER BY metric, step", [tid])
    assert fast == slow and len(fast) == 20
    assert [r["step"] for r in fast if r["metric"] == "val_loss"] == [10, 20, 30, 40, 50]
    assert [r["tokens"] for r in fast if r["metric"] == "val_loss"] == [64 * 32 * 10 * k for k in range(1, 6)]
    assert rows(vc, "SELECT * FROM learning_curve(999999)") == []


def test_views_read_the_live_database(engine, db_url):
    from seqdb.views import connect

    seeded = seed(engine)
    with connect(db_url) as live:
        before = rows(live, "SELECT count(*) AS n FROM learning_curves")[0]["n"]
        tid = seeded.trial_ids[3]  # the running trial of the first study
        with session_scope(engine) as s:
            s.add(Metric(trial_id=tid, step=1, name="val_loss", value=2.5, time=1.7e9))
            s.get(Trial, tid).state = "completed"
        assert rows(live, "SELECT count(*) AS n FROM learning_curves")[0]["n"] == before + 1
        assert rows(live, "SELECT state FROM trials WHERE trial_id = ?", [tid])[0]["state"] == "completed"


# The scaling view aggregates inside the database (sqlite_query / postgres_query); this is the
# same question asked of the raw `tables.*` views in DuckDB, row for row.
ORACLE = """
WITH fin AS (
  SELECT s.experiment_id, s.budget_id, s.horizon, t.trial_id, t.state, t.best_val_loss, t.epochs_done, t.step
  FROM tables.trial t JOIN tables.study s ON s.study_id = t.study_id
  WHERE s.kind = 'search' AND t.state IN ('completed', 'pruned', 'failed') AND t.replicate_of IS NULL),
effort AS (
  SELECT experiment_id, budget_id, horizon, count(*) AS n_finished, count(*) FILTER (WHERE state = 'completed') AS n_completed,
         sum(epochs_done) AS epochs_total, avg(epochs_done) AS epochs_mean, sum(step) AS steps_total
  FROM fin GROUP BY ALL),
best AS (
  SELECT experiment_id, budget_id, horizon, min(best_val_loss) AS best_val_loss, arg_min(trial_id, best_val_loss) AS trial_id
  FROM fin WHERE state = 'completed' AND best_val_loss IS NOT NULL GROUP BY ALL)
SELECT e.name AS experiment, best.horizon, b.label AS budget, b.n_params AS budget_params,
       COALESCE(t.param_count, a.param_count) AS param_count, best.best_val_loss, best.trial_id,
       ef.n_finished, ef.n_completed, ef.epochs_total, ef.epochs_mean, ef.steps_total, t.tokens, t.flops
FROM best JOIN effort ef USING (experiment_id, budget_id, horizon)
JOIN tables.experiment e ON e.experiment_id = best.experiment_id JOIN tables.budget b ON b.budget_id = best.budget_id
JOIN tables.trial t ON t.trial_id = best.trial_id LEFT JOIN tables.architecture a ON a.architecture_id = t.architecture_id
ORDER BY experiment, horizon, budget_params
"""


def test_scaling_points_equal_the_scan_over_raw_tables(vc):
    got = rows(vc, "SELECT * EXCLUDE (n_seeds, seed_losses, seed_loss_mean, seed_log_loss_sd) FROM scaling_points "
                   "ORDER BY experiment, horizon, budget_params")
    assert got == rows(vc, ORACLE) and len(got) == 7


def test_best_trials_rows_equal_the_trials_view(vc):
    best = rows(vc, "SELECT * FROM best_trials ORDER BY trial_id")
    extra = ("n_finished", "n_completed", "epochs_total", "epochs_mean", "steps_total")
    same = rows(vc, "SELECT * FROM trials WHERE trial_id IN (SELECT trial_id FROM scaling_points) ORDER BY trial_id")
    assert [{k: v for k, v in r.items() if k not in extra} for r in best] == same and len(best) == 7
