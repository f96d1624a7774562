"""The search: section: defaults, short forms, and every bad input as one dotted line."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from seqdb.errors import ConfigError
from seqdb.config.search import SearchSpec
from seqdb.search.study import search_spec


class _Exp(BaseModel):
    search: dict = {}


def spec_error(search: dict) -> str:
    with pytest.raises(ConfigError) as err:
        search_spec(_Exp(search=search))
    message = err.value.message
    assert "\n" not in message
    return message


def test_defaults_and_short_forms():
    spec = SearchSpec()
    assert spec.strategy == "grid" and spec.space is None and spec.equal_effort
    assert [(o.name, o.direction) for o in spec.objectives] == [("val_loss", "minimize")]
    spec = SearchSpec.model_validate(
        {"strategy": "tpe", "objectives": ["val_loss", {"tokens_per_s": "maximize"}, "val_top3_accuracy"], "pruner": "median"}
    )
    assert spec.directions == ["minimize", "maximize", "maximize"]
    assert spec.pruner.name == "median" and spec.trials_for("2M") == 20


def test_sequifier_aliases_and_seed_distribution_forms():
    spec = SearchSpec.model_validate({"space": {
        "dim_model": [64, 128], "n_head": [4, 8], "num_layers": [2], "dim_feedforward": [256],
        "activation_fn": ["gelu"], "attention_type": ["mha"], "normalization": ["rmsnorm"], "norm_first": [True],
        "positional_encoding": ["rope"], "learning_rate": {"type": "log_uniform", "low": 1e-4, "high": 1e-3},
        "warmup_steps": {"type": "categorical", "choices": [100, 200]},
    }})  # fmt: skip
    sp = spec.space
    assert sp.d_model == [64, 128] and sp.n_layers == [2] and sp.d_ff == [256] and sp.prenorm == [True]
    assert sp.learning_rate.log and not sp.learning_rate.is_int and sp.warmup_steps == [100, 200]
    assert SearchSpec.model_validate(spec.model_dump(mode="json")) == spec  # JSON round trip


@pytest.mark.parametrize(
    "search, needles",
    [
        ({"space": {"dropuot": [0.1]}}, ["search.space.dropuot", "Extra inputs"]),
        ({"space": {}}, ["search.space", "empty"]),
        ({"space": {"dropout": []}}, ["search.space.dropout", "empty list"]),
        ({"space": {"dim_model": [64, 128], "n_head": [4, 8, 16]}}, ["search.space.n_head", "linked group d_model", "2 values", "3"]),
        ({"space": {"learning_rate": [1e-3, 1e-4], "epochs": [5]}}, ["search.space.epochs", "linked group learning_rate"]),
        ({"space": {"input_columns": [["a"], ["a", "b"]], "column_types": [{"a": "real"}]}}, ["search.space.column_types", "input_columns"]),
        ({"space": {"dropout": {"low": 0.5, "high": 0.1}}}, ["search.space.dropout.low", "above high"]),
        ({"space": {"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}}, ["search.space.learning_rate.low", "log"]),
        ({"space": {"n_head": [2, 4], "n_kv_heads": [8]}}, ["search.space.n_kv_heads", "above every n_head"]),
        ({"objectives": ["val_loss", "val_los"]}, ["search.objectives.1.name", "unknown objective 'val_los'"]),
        ({"objectives": ["val_loss", "val_loss"]}, ["search.objectives", "repeat"]),
        ({"strategy": "sample"}, ["search.n_samples", "needs n_samples"]),
        ({"strategy": "grid", "n_trials": 5}, ["search.n_trials", "does not apply"]),
        ({"strategy": "ablation"}, ["search", "ablation needs a space"]),
        ({"strategy": "bayes"}, ["search.strategy"]),
        ({"pruner": "asha"}, ["search.pruner.name"]),
        ({"max_epochs_per_budget": {"2M": 3}}, ["search.max_epochs_per_budget", "equal_effort: false"]),
        ({"space": {"embedding_dim": {"weekday": {"low": 8, "high": 4}}}}, ["search.space.embedding_dim.weekday.low"]),
        ({"space": {"dropout": {"choices": [0.1], "low": 0}}}, ["search.space.dropout", "choices"]),
    ],
)
def test_bad_input_is_one_dotted_line(search, needles):
    message = spec_error(search)
    for needle in needles:
        assert needle in message, (needle, message)
