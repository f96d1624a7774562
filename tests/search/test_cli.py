"""`seqdb study list|show` and `seqdb trial list|export` on a stored study."""

from __future__ import annotations

import yaml

from seqdb.config.trial import TrialConfig
from seqdb.search.sampler import tell
from seqdb.search.study import create_study
from tests.helpers import assert_one_line_error, run_cli_inprocess
from tests.search.fixtures import base_spec, experiment_config, register


def test_study_and_trial_commands(db_url, engine, tmp_path):
    cfg = experiment_config({"strategy": "ablation", "space": {"dropout": [0.0, 0.2]}}, budgets=["60k"])
    study = create_study(engine, register(engine, cfg), cfg, "60k", 1, base_spec())
    tell(engine, 1, values=[0.5])
    out = run_cli_inprocess("--db", db_url, "study", "list")
    assert out.code == 0 and "exp/60k/h1" in out.out and "0.5" in out.out
    out = run_cli_inprocess("--db", db_url, "study", "show", "exp/60k/h1")
    assert out.code == 0, out.err
    assert "strategy ablation" in out.out and "equal across budgets" in out.out and "best: trial 1" in out.out
    out = run_cli_inprocess("--db", db_url, "trial", "list", "--study", str(study.study_id), "--state", "pending")
    assert out.code == 0 and "dropout=0.2" in out.out and "baseline" not in out.out
    target = tmp_path / "t1.yaml"
    out = run_cli_inprocess("--db", db_url, "trial", "export", "1", "--yaml", "--output", str(target))
    assert out.code == 0 and TrialConfig.model_validate(yaml.safe_load(target.read_text())).label == "baseline"
    assert_one_line_error(run_cli_inprocess("--db", db_url, "study", "show", "nope/1M/h1"), "study 'nope/1M/h1' does not exist")
    assert_one_line_error(run_cli_inprocess("--db", db_url, "trial", "export", "999"), "trial 999 does not exist")
    assert_one_line_error(run_cli_inprocess("--db", db_url, "trial", "list", "--study", "1", "--state", "done"), "--state 'done'")
