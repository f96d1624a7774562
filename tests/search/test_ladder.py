"""The (size, tokens) ladder: each searched configuration once per rung, trained for the rung's
tokens; equal effort across rungs and budgets (SQLite and Postgres)."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from seqdb.config.trial import TrialConfig
from seqdb.db.engine import session_scope
from seqdb.db.models import Trial
from seqdb.errors import ConfigError
from seqdb.experiment.ladder import LADDER_MAX_EPOCHS, ladder_tokens, parse_flops, steps_for_tokens
from seqdb.experiment.loader import load_experiment
from seqdb.search.study import create_study
from tests.search.fixtures import base_spec, experiment_config, register

SAMPLE = {"strategy": "sample", "n_samples": 2, "space": {"learning_rate": [1e-3, 3e-3, 1e-2]}}


def _trials(engine, study_id: int) -> list[Trial]:
    with session_scope(engine, write=False) as s:
        return list(s.execute(sa.select(Trial).where(Trial.study_id == study_id).order_by(Trial.number)).scalars())


def test_absolute_tokens_give_every_configuration_every_rung(engine):
    cfg = experiment_config(SAMPLE, tokens=["64k", "256k"], training={"max_epochs": 3, "effective_batch_size": 32})
    exp = register(engine, cfg)
    for budget in ("20k", "60k"):
        study = create_study(engine, exp, cfg, budget, 1, base_spec())
        trials = _trials(engine, study.study_id)
        assert study.n_trials == len(trials) == 2 * 2  # 2 configurations x 2 rungs, for every budget
        by_rung: dict[int, list] = {}
        for t in trials:
            c = TrialConfig.model_validate(t.config)
            assert c.training.max_steps == math.ceil(t.params["tokens"] / (32 * 16))  # 32 windows of 16 tokens a step
            assert c.training.max_epochs == LADDER_MAX_EPOCHS
            by_rung.setdefault(t.params["tokens"], []).append({k: v for k, v in t.params.items() if k != "tokens"})
        assert sorted(by_rung) == [64_000, 256_000]
        assert by_rung[64_000] == by_rung[256_000]  # the same configurations on every rung
        assert len({t.config_hash for t in trials}) == len(trials)


def test_tokens_per_param_and_compute_scale_with_the_budget():
    per = experiment_config(SAMPLE, tokens_per_param=[5, 20])
    assert ladder_tokens(per, 20_000) == [100_000, 400_000] and ladder_tokens(per, 60_000) == [300_000, 1_200_000]
    iso = experiment_config(SAMPLE, compute=["1.2e12", 6e12])
    assert ladder_tokens(iso, 20_000) == [10_000_000, 50_000_000]  # D = C / (6 N)
    assert ladder_tokens(experiment_config(SAMPLE), 20_000) == []
    assert parse_flops("3T") == 3e12 and parse_flops("2e15") == 2e15
    assert steps_for_tokens(1000, 32, 16) == 2 and steps_for_tokens(512, 32, 16) == 1


@pytest.mark.parametrize("extra, needle", [
    ("tokens: [2M]\ncompute: [1e15]", "compute: given together with tokens"),
    ("compute: [lots]", "compute.0"),
    ("tokens_per_param: [0]", "tokens_per_param.0"),
])
def test_bad_ladders_are_one_line_errors(tmp_path, extra, needle):
    text = f"""name: bad
data: {{path: data/x.csv, columns: {{c: categorical}}}}
target: {{column: c, task: next_category}}
context_length: 8
horizons: [1]
budgets: [10k]
{extra}
"""
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_experiment(tmp_path / "bad.yaml")
    assert needle in str(err.value) and "bad.yaml" in str(err.value) and "\n" not in str(err.value)


def test_a_ladder_needs_a_pre_expanded_strategy():
    with pytest.raises(ValueError, match="a ladder with strategy tpe"):
        experiment_config({"strategy": "tpe", "n_trials": 4}, tokens=["2M"])
