"""`seqdb best`: the best completed trial from SQL, on SQLite and Postgres."""

from __future__ import annotations

import json

import pytest

from seqdb.config.trial import DataSpec, InputColumn, ModelConfig, TargetSpec, TrainingConfig, TrialConfig
from seqdb.db.engine import session_scope
from seqdb.db.models import Architecture, Budget, Experiment, Study, Trial
from seqdb.errors import ConfigError, NotFoundError
from seqdb.results.best import best_trial
from tests.helpers import assert_one_line_error, run_cli_inprocess


def trial_config(d_model: int, lr: float, horizon: int = 3) -> dict:
    data = DataSpec(context_length=16, horizon=horizon, inputs=[InputColumn(name="r", kind="real")], targets=[TargetSpec(name="d", kind="categorical", n_classes=2)])
    cfg = TrialConfig(
        experiment="exp", budget="50k", horizon=horizon, data=data,
        model=ModelConfig(d_model=d_model, n_layers=2, n_head=2, d_ff=2 * d_model),
        training=TrainingConfig(learning_rate=lr, max_epochs=3),
    )  # fmt: skip
    return cfg.model_dump(mode="json")


def seed_study(engine, *, losses: list[tuple[str, float | None]], horizon: int = 3, experiment: str = "exp") -> dict:
    """An experiment, a 50k budget with one architecture, a search study and trials with the
    given (state, best_val_loss)."""
    with session_scope(engine) as s:
        exp = Experiment(name=experiment, yaml_text="name: exp\n", content_hash="0" * 64, config={"training": {"max_epochs": 7}})
        s.add(exp)
        s.flush()
        bud = Budget(experiment_id=exp.experiment_id, label="50k", n_params=50_000)
        s.add(bud)
        s.flush()
        arch = Architecture(budget_id=bud.budget_id, d_model=32, n_layers=2, n_head=2, n_kv_heads=2, d_ff=64, param_count=51_234, non_embedding_params=49_000, config={})
        study = Study(experiment_id=exp.experiment_id, budget_id=bud.budget_id, horizon=horizon, name=f"{experiment}/50k/h{horizon}",
                      strategy="grid", n_trials=len(losses), max_epochs=3, objectives=[{"name": "val_loss", "direction": "minimize"}], config={})
        s.add_all([arch, study])
        s.flush()
        ids = []
        for i, (state, loss) in enumerate(losses):
            cfg = trial_config(32, 1e-3 * (i + 1), horizon)
            t = Trial(study_id=study.study_id, number=i, config_hash=f"{i:064d}", config=cfg, params={"learning_rate": 1e-3 * (i + 1)},
                      state=state, best_val_loss=loss, best_step=10 * i if loss is not None else None, architecture_id=arch.architecture_id,
                      param_count=51_234, batch_config={"batch_size": 32, "accumulation": 4, "effective_batch_size": 128})
            s.add(t)
            s.flush()
            ids.append(t.trial_id)
        return {"study_id": study.study_id, "trial_ids": ids}


def test_best_is_the_lowest_completed_loss(engine):
    seeded = seed_study(engine, losses=[("completed", 0.70), ("pruned", 0.10), ("completed", 0.65), ("failed", None), ("completed", 0.69), ("running", None)])
    best = best_trial(engine, "50k", 3)
    assert best.trial_id == seeded["trial_ids"][2]  # the pruned trial's lower loss does not count
    assert best.best_val_loss == pytest.approx(0.65)
    assert best.architecture["d_model"] == 32 and best.architecture["param_count"] == 51_234
    assert best.architecture["non_embedding_params"] == 49_000
    assert best.training["learning_rate"] == pytest.approx(3e-3)
    assert best.batch_config == {"batch_size": 32, "accumulation": 4, "effective_batch_size": 128}
    assert best.n_trials == {"completed": 3, "pruned": 1, "failed": 1, "running": 1, "total": 6}
    # the budget may be written any way parse_budget accepts
    assert best_trial(engine, "50000", 3).trial_id == best.trial_id
    assert best_trial(engine, "50K", 3, experiment="exp").trial_id == best.trial_id


def test_ties_go_to_the_lower_trial_number(engine):
    seeded = seed_study(engine, losses=[("completed", 0.5), ("completed", 0.5)])
    assert best_trial(engine, "50k", 3).trial_id == seeded["trial_ids"][0]


def test_no_completed_trial_is_a_one_line_error(engine):
    seed_study(engine, losses=[("pending", None), ("pruned", 0.3)])
    with pytest.raises(NotFoundError, match=r"no completed trial for budget 50k horizon 3 .*1 pending, 1 pruned"):
        best_trial(engine, "50k", 3)
    with pytest.raises(NotFoundError, match=r"no search study for budget 50k horizon 5"):
        best_trial(engine, "50k", 5)
    with pytest.raises(ConfigError, match="not a parameter count"):
        best_trial(engine, "fifty", 3)


def test_cli_json_and_out_file(engine, db_url, tmp_path):
    seeded = seed_study(engine, losses=[("completed", 0.9), ("completed", 0.8)])
    out = tmp_path / "sub" / "best_params.json"
    res = run_cli_inprocess("--db", db_url, "best", "--budget", "50k", "--horizon", "3", "--json", "--out", str(out))
    assert res.code == 0, res.err
    printed = json.loads(res.out)
    assert printed["trial_id"] == seeded["trial_ids"][1]
    assert json.loads(out.read_text()) == printed
    assert printed["config"]["model"]["d_model"] == 32  # the complete config the final training starts from
    table = run_cli_inprocess("--db", db_url, "best", "--budget", "50k", "--horizon", "3")
    assert table.code == 0 and "best validation loss 0.8" in table.out and "51,234" in table.out


def test_cli_errors(engine, db_url):
    seed_study(engine, losses=[("pending", None)])
    assert_one_line_error(run_cli_inprocess("--db", db_url, "best", "--budget", "50k", "--horizon", "3"), "no completed trial", "seqdb run")
    assert_one_line_error(run_cli_inprocess("--db", db_url, "best", "--budget", "2Q", "--horizon", "3"), "budget '2Q'")
