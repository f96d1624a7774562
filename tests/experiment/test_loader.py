"""`seqdb experiment validate FILE`: every bad definition is ONE line naming file and field."""

from __future__ import annotations

import pytest

from seqdb.experiment.loader import load_experiment
from tests.experiment.conftest import DELETE, base_config
from tests.helpers import assert_one_line_error, run_cli_inprocess


def test_valid_experiment(write_yaml):
    path = write_yaml(base_config())
    cfg = load_experiment(path)
    assert cfg.budget_pairs == [("10k", 10_000), ("30k", 30_000)]
    assert cfg.targets[0].aggregation == "sum" and cfg.gap == 2 and cfg.eval_stride == 8
    res = run_cli_inprocess("experiment", "validate", str(path))
    assert res.code == 0, res.err
    assert "valid experiment 'exp-a'" in res.out and "does not exist yet" in res.out


def test_examples_validate():
    from pathlib import Path

    configs = sorted(Path(__file__).resolve().parents[2].joinpath("configs").glob("*.yaml"))
    assert len(configs) >= 4
    for path in configs:
        load_experiment(path)


@pytest.mark.parametrize(
    "changes, needles",
    [
        ({"data.colums": {"x": "real"}}, ["data.colums: unknown key", "allowed: path, format"]),
        ({"bogus": 1}, ["bogus: unknown key", "allowed: name, seed"]),
        ({"target.task": "guess"}, ["target.task: found 'guess'", "'direction', 'threshold', 'regression' or 'next_category'"]),
        ({"target.column": "z"}, ["target.column: 'z' is not in data.columns", "allowed: c, x, y"]),
        ({"target.column": "c"}, ["target.task: direction on categorical column 'c'", "a real column"]),
        ({"target.task": "threshold"}, ["target.threshold: missing for task threshold"]),
        ({"data.columns.y": "float"}, ["data.columns.y: found 'float'", "'real' or 'categorical'"]),
        ({"budgets": ["10k", "lots"]}, ["budgets.1: found 'lots'", "500k, 2M, 20M, 1.5B, 2e7"]),
        ({"budgets": ["10k", "10000"]}, ["budgets: the same parameter count twice"]),
        ({"context_length": DELETE}, ["context_length: missing"]),
        ({"context_length": 0}, ["context_length: found 0", "greater than 0"]),
        ({"horizons": [1, 1]}, ["horizons: duplicates"]),
        ({"split": {"validation": 0.6, "test": 0.5}}, ["split: validation 0.6 + test 0.5 >= 1"]),
        ({"split": {"validation": 0.0, "test": 0.2}}, ["split.validation: found 0.0"]),
        ({"split": {"mode": "sequences", "gap": 3}}, ["split.gap: 3 with mode sequences"]),
        ({"split": {"mode": "random"}}, ["split.mode: found 'random'", "'within' or 'sequences'"]),
        ({"data.nan_policy": "drop"}, ["data.nan_policy: found 'drop'", "'error', 'ffill' or 'zero'"]),
        ({"data.columns": {"sequenceId": "real", "x": "real"}}, ["data.columns.sequenceId: sequence_column"]),
        ({"data.id_maps": {"x": {"a": 2}}}, ["data.id_maps.x: not a categorical column", "allowed: c"]),
        ({"tolerance": 1.5}, ["tolerance: found 1.5"]),
        ({"model.activation": "tanh"}, ["model.activation: found 'tanh'", "'swiglu', 'gelu' or 'relu'"]),
        ({"training.early_stopping": {"patience": 0}}, ["training.early_stopping.patience: found 0"]),
        ({"search.space": {"dropout": {"low": 0.5, "high": 0.1}}}, ["search.space.dropout.low", "above high"]),
        ({"search.space": {"input_columns": [["x", "w"]]}}, ["search.space.input_columns.0: 'w' is not in data.columns"]),
        ({"search.strategy": "annealing"}, ["search.strategy: found 'annealing'"]),
        ({"name": "bad name!"}, ["name: found 'bad name!'"]),
        ({"architecture_grid": {"d_model": [64, -1]}}, ["architecture_grid.d_model.1: found -1"]),
    ],
)
def test_bad_definition_is_one_line(write_yaml, changes, needles):
    path = write_yaml(base_config(**changes))
    res = run_cli_inprocess("experiment", "validate", str(path))
    assert_one_line_error(res, str(path), *needles)
    assert res.code == 2


@pytest.mark.parametrize(
    "text, needles",
    [
        ("name: a\ndata: {path: x.csv\n", ["line 3, column 1", "allowed: valid YAML"]),
        ("name: a\nname: b\n", ["line 2, column 1", "duplicate key 'name'"]),
        ("", ["top level is an empty file"]),
        ("- 1\n- 2\n", ["top level is a list"]),
        ("name: a\n\tbad: tab\n", ["line 2", "allowed: valid YAML"]),
    ],
)
def test_bad_yaml_is_one_line(write_yaml, text, needles):
    path = write_yaml(text)
    assert_one_line_error(run_cli_inprocess("experiment", "validate", str(path)), str(path), *needles)


def test_non_utf8_and_missing_file(tmp_path):
    bad = tmp_path / "latin.yaml"
    bad.write_bytes(b"name: caf\xe9\n")
    assert_one_line_error(run_cli_inprocess("experiment", "validate", str(bad)), "latin.yaml", "not UTF-8")
    assert_one_line_error(run_cli_inprocess("experiment", "validate", str(tmp_path / "nope.yaml")), "nope.yaml: file not found")


def test_validate_checks_data_columns_when_the_file_exists(tmp_path, write_yaml):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "series.csv").write_text("sequenceId,itemPosition,x,yy,c\n0,0,1,2,a\n")
    path = write_yaml(base_config(**{"data.path": str(tmp_path / "data" / "series.csv")}))
    res = run_cli_inprocess("experiment", "validate", str(path))
    assert_one_line_error(res, "column 'y' (data.columns.y) not in the file (did you mean 'yy'?)")
