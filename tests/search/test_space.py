"""Expansion semantics: the sequifier guide's worked examples, linking, sampling, ablation, Optuna."""

from __future__ import annotations

import json

import pytest

from seqdb.errors import ConfigError
from seqdb.search.build import canonical_attention
from seqdb.search.space import (
    ablation_configs, config_from_optuna, grid_configs, grid_size, optuna_distributions, optuna_from_config,
    sample_configs, space_factors,
)  # fmt: skip
from seqdb.config.search import SearchSpace


def expand(space: dict) -> list[dict]:
    return list(grid_configs(space_factors(SearchSpace.model_validate(space))))


def test_guide_example_linked_backbone_pairs_by_index():
    # dim_model [64, 128] with n_head [4, 8]: two runs, never 64 with 8.
    configs = expand({"dim_model": [64, 128], "n_head": [4, 8]})
    assert configs == [{"d_model": 64, "n_head": 4}, {"d_model": 128, "n_head": 8}]


def test_guide_example_four_independent_parameters_of_five_values():
    space = {"num_layers": [1, 2, 3, 4, 5], "dropout": [0.0, 0.1, 0.2, 0.3, 0.4],
             "weight_decay": [0.0, 0.01, 0.02, 0.03, 0.04], "rope_theta": [1e3, 1e4, 2e4, 5e4, 1e5]}  # fmt: skip
    assert len(expand(space)) == 5**4 == 625


def test_all_three_linked_groups_times_cartesian_factors():
    space = {
        "dim_model": [64, 128], "n_head": [4, 8], "embedding_dims": [{"wk": 4}, {"wk": 8}],
        "learning_rate": [1e-3, 1e-4, 3e-4], "epochs": [10, 20, 30], "scheduler": "cosine",
        "input_columns": [["a"], ["a", "b"]], "column_types": [{"a": "real"}, {"a": "real", "b": "real"}],
        "num_layers": [2, 4], "dropout": [0.0, 0.1],
    }  # fmt: skip
    configs = expand(space)
    assert len(configs) == 2 * 3 * 2 * 2 * 2 == 48
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == 48
    for c in configs:
        assert (c["d_model"], c["n_head"], c["embedding_dims"]["wk"]) in {(64, 4, 4), (128, 8, 8)}
        assert (c["learning_rate"], c["epochs"]) in {(1e-3, 10), (1e-4, 20), (3e-4, 30)} and c["scheduler"] == "cosine"
        assert len(c["input_columns"]) == len(c["column_types"])


def test_distribution_with_step_has_a_grid_and_float_range_does_not():
    assert [c["dropout"] for c in expand({"dropout": {"low": 0.0, "high": 0.3, "step": 0.1}})] == [0.0, 0.1, 0.2, 0.3]
    assert [c["n_layers"] for c in expand({"n_layers": {"low": 2, "high": 5}})] == [2, 3, 4, 5]
    with pytest.raises(ConfigError, match="search.space.dropout: a float range without `step`"):
        grid_size(space_factors(SearchSpace.model_validate({"dropout": {"low": 0.0, "high": 0.3}})))


def test_n_kv_heads_that_does_not_divide_falls_back_to_full_attention():
    base = {"d_model": 64, "n_layers": 2, "d_ff": 128, "attention": "mha"}
    assert canonical_attention({**base, "n_head": 8, "n_kv_heads": 3}) == {**base, "n_head": 8, "attention": "mha", "n_kv_heads": None}
    assert canonical_attention({**base, "n_head": 8, "n_kv_heads": 2})["attention"] == "gqa"
    assert canonical_attention({**base, "n_head": 8, "n_kv_heads": 1})["attention"] == "mqa"
    assert canonical_attention({**base, "n_head": 8, "n_kv_heads": 8})["attention"] == "mha"
    assert canonical_attention({**base, "n_head": 8, "attention": "mqa"})["n_kv_heads"] == 1


def test_sample_is_seeded_distinct_and_capped_by_the_space():
    factors = space_factors(SearchSpace.model_validate({"dropout": {"low": 0.0, "high": 0.5}, "learning_rate": {"low": 1e-5, "high": 1e-2, "log": True}}))
    a, b = sample_configs(factors, 20, seed=3), sample_configs(factors, 20, seed=3)
    assert a == b and len({json.dumps(c) for c in a}) == 20
    assert all(1e-5 <= c["learning_rate"] <= 1e-2 and 0 <= c["dropout"] <= 0.5 for c in a)
    assert sample_configs(factors, 20, seed=4) != a
    small = space_factors(SearchSpace.model_validate({"dropout": [0.0, 0.1, 0.2]}))
    assert len(sample_configs(small, 10, seed=0)) == 3


def test_ablation_is_baseline_plus_one_factor_at_a_time():
    factors = space_factors(SearchSpace.model_validate(
        {"dropout": [0.0, 0.1, 0.2], "learning_rate": [1e-3, 3e-4], "epochs": [5, 10], "activation": ["swiglu", "gelu"]}
    ))  # fmt: skip
    runs = ablation_configs(factors, {"dropout": 0.1})
    labels = [label for label, _ in runs]
    assert labels[0] == "baseline" and len(runs) == 1 + 2 + 1 + 1
    base = runs[0][1]
    assert base == {"learning_rate": 1e-3, "epochs": 5, "dropout": 0.1, "activation": "swiglu"}
    assert "learning_rate=0.0003 (epochs=10)" in labels and "dropout=0" in labels and "activation=gelu" in labels
    for label, config in runs[1:]:  # exactly one factor differs from the baseline
        changed = {k for k in config if config[k] != base[k]}
        assert changed and (changed <= {"learning_rate", "epochs"} or len(changed) == 1), label
    with pytest.raises(ConfigError, match="search.baseline: unknown parameter 'dropuot'"):
        ablation_configs(factors, {"dropuot": 0.1})
    with pytest.raises(ConfigError, match="not one of the values"):
        ablation_configs(factors, {"dropout": 0.7})


def test_optuna_round_trip_for_every_factor_kind():
    space = SearchSpace.model_validate({
        "learning_rate": [1e-3, 1e-3], "epochs": [5, 10], "input_columns": [["a"], ["a", "b"]],
        "dropout": {"low": 0.0, "high": 0.3}, "n_layers": {"low": 1, "high": 4}, "embedding_dim": {"wk": [2, 4]},
    })  # fmt: skip
    factors = space_factors(space)
    dists = optuna_distributions(factors)
    assert dists["learning_rate"].choices == (0, 1)  # duplicate anchor values: choices are indices
    assert dists["n_layers"].__class__.__name__ == "IntDistribution"
    params = {"learning_rate": 1, "input_columns": 1, "dropout": 0.2, "n_layers": 3, "embedding_dim.wk": 4}
    config = config_from_optuna(factors, params)
    assert config["epochs"] == 10 and config["input_columns"] == ["a", "b"]
    assert optuna_from_config(factors, config) == params
    assert optuna_from_config(factors, {**config, "epochs": 7}) is None
