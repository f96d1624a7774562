"""scaling_nd_points: every evaluation of a search trial as an (N, D, loss) point, on both backends."""

from __future__ import annotations

from seqdb.views import sql
from tests.views.seed import TOKENS_PER_STEP, exact_params


def rows(vc, query, params=None):
    return sql(vc, query, params).to_pylist()


def test_one_row_per_evaluation_of_each_finished_search_trial(vc):
    got = rows(vc, "SELECT * FROM scaling_nd_points WHERE experiment = 'scale' ORDER BY trial_id, step")
    assert len(got) == 6 * 3 * 5  # 6 studies x (2 completed + 1 pruned) x 5 evaluations
    for r in got:
        assert r["tokens"] == TOKENS_PER_STEP * r["step"] and r["flops"] == 6.0 * 1e6 * r["tokens"]
        assert r["param_count"] == exact_params(r["budget_params"])
    finals = [r for r in got if r["final"]]
    assert len(finals) == 6 * 2 and {r["state"] for r in finals} == {"completed"} and {r["step"] for r in finals} == {50}
    assert rows(vc, "SELECT count(*) AS n FROM scaling_nd_points WHERE experiment = 'mo'")[0]["n"] == 0  # no tokens metrics


def test_the_final_point_is_the_trials_last_validation_loss(vc, seeded):
    tid = seeded.best_trial[("2M", 3)]
    final = rows(vc, "SELECT val_loss, tokens FROM scaling_nd_points WHERE trial_id = ? AND final", [tid])
    last = rows(vc, "SELECT value FROM learning_curve(?) WHERE metric = 'val_loss' ORDER BY step DESC LIMIT 1", [tid])
    assert len(final) == 1 and final[0]["val_loss"] == last[0]["value"] and final[0]["tokens"] == TOKENS_PER_STEP * 50
    assert rows(vc, "SELECT tokens FROM scaling_points WHERE trial_id = ?", [tid]) == [{"tokens": TOKENS_PER_STEP * 50}]
