"""The bad-input corpus: every case is a real CLI invocation (in-process, so the corpus stays
fast) that must fail with ONE line on stderr (`error: ...` naming the file / field / value),
a non-zero exit code, and leave the database (row count of every table) and every file of
the project and of the case's own folder (sha256 each) exactly as they were."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Callable

import pytest
import yaml

from seqdb.app.demo import demo_experiment
from seqdb.db.engine import dispose_engines
from tests.hardening.conftest import snapshot
from tests.helpers import assert_one_line_error, run_cli_inprocess

BASE = demo_experiment(quick=True)
BASE["name"] = "corpus-exp"


def exp_with(**changes) -> dict:
    """The demo experiment with dotted-path changes (None deletes)."""
    cfg = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return cfg


def yaml_case(needles: tuple, **changes) -> Callable:
    def build(proj: Path, scratch: Path):
        cfg = exp_with(**changes)
        cfg["data"]["path"] = str(proj / "data" / "sp500.csv")
        path = scratch / "exp.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        return ["experiment", "add", str(path)], (str(path), *needles)

    return build


def raw_case(text: bytes | str | None, needles: tuple, name: str = "exp.yaml") -> Callable:
    def build(proj: Path, scratch: Path):
        path = scratch / name
        if text is not None:
            path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["experiment", "add", str(path)], (str(path), *needles)

    return build


def cli(*args: str, needles: tuple = ()) -> Callable:
    """Arguments with {proj} / {scratch} filled in."""
    def build(proj: Path, scratch: Path):
        return [a.format(proj=proj, scratch=scratch) for a in args], needles

    return build


def with_file(name: str, content: bytes, *args: str, needles: tuple = ()) -> Callable:
    def build(proj: Path, scratch: Path):
        (scratch / name).write_bytes(content)
        return [a.format(proj=proj, scratch=scratch) for a in args], needles

    return build


def _alias_bomb() -> str:
    """A "billion laughs" file: 9 levels of 9 aliases, 9^9 values once expanded."""
    lines = ["name: bomb"]
    for i in range(9):
        item = '"lol"' if i == 0 else "*" + chr(96 + i)
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join([item] * 9)}]")
    return "\n".join([*lines, "horizons: *i", ""])


ALIAS_BOMB = _alias_bomb()

CASES: dict[str, Callable] = {
    # ---- experiment YAML: the file itself
    "yaml-missing-file": raw_case(None, ("file not found",)),
    "yaml-not-utf8": raw_case(b"name: \xff\xfe\n", ("not UTF-8",)),
    "yaml-syntax": raw_case("name: [unclosed\n", ("line",)),
    "yaml-top-level-list": raw_case("- a\n- b\n", ("top level",)),
    "yaml-empty": raw_case("", ("empty file",)),
    "yaml-duplicate-key": raw_case("name: a\nname: b\n", ("duplicate key",)),
    "yaml-alias-bomb": raw_case(ALIAS_BOMB, ("aliases",)),
    "yaml-too-big": raw_case("# " + "x" * 1_100_000 + "\n", ("bytes",)),
    # ---- experiment YAML: fields
    "yaml-unknown-key": yaml_case(("colour", "unknown key"), colour="red"),
    "yaml-seed-huge": yaml_case(("seed",), seed=10**30),
    "yaml-seed-negative": yaml_case(("seed",), seed=-1),
    "yaml-lr-negative": yaml_case(("training.learning_rate",), **{"training.learning_rate": -0.1}),
    "yaml-lr-inf": yaml_case(("training.learning_rate",), **{"training.learning_rate": float("inf")}),
    "yaml-lr-nan": yaml_case(("training.learning_rate",), **{"training.learning_rate": float("nan")}),
    "yaml-dropout-above-1": yaml_case(("model.dropout",), **{"model.dropout": 1.5}),
    "yaml-dropout-1": yaml_case(("model.dropout",), **{"model.dropout": 1.0}),
    "yaml-betas": yaml_case(("training.betas",), **{"training.betas": [1.5, 0.9]}),
    "yaml-max-epochs-0": yaml_case(("training.max_epochs",), **{"training.max_epochs": 0}),
    "yaml-batch-huge": yaml_case(("training.effective_batch_size",), **{"training.effective_batch_size": 10**12}),
    "yaml-training-seed": yaml_case(("training.seed",), **{"training.seed": 2**33}),
    "yaml-context-0": yaml_case(("context_length",), context_length=0),
    "yaml-context-huge": yaml_case(("context_length",), context_length=10**9),
    "yaml-horizon-0": yaml_case(("horizons",), horizons=[0]),
    "yaml-horizons-dup": yaml_case(("horizons",), horizons=[1, 1]),
    "yaml-budget-overflow": yaml_case(("budgets",), budgets=["1e999999999"]),
    "yaml-budget-word": yaml_case(("budgets",), budgets=["lots"]),
    "yaml-budget-negative": yaml_case(("budgets",), budgets=["-5k"]),
    "yaml-budget-fraction": yaml_case(("budgets",), budgets=["1.0005k"]),
    "yaml-budget-dup": yaml_case(("budgets",), budgets=["10k", "10000"]),
    "yaml-split-above-1": yaml_case(("split.validation",), **{"split.validation": 1.5}),
    "yaml-split-sum": yaml_case(("split",), **{"split.validation": 0.6, "split.test": 0.5}),
    "yaml-target-column": yaml_case(("target.column",), **{"target.column": "nope"}),
    "yaml-target-task": yaml_case(("target.task",), **{"target.task": "guess"}),
    "yaml-column-kind": yaml_case(("data.columns",), **{"data.columns.weekday": "string"}),
    "yaml-tolerance": yaml_case(("tolerance",), tolerance=0),
    "yaml-max-attempts": yaml_case(("max_attempts",), max_attempts=0),
    "yaml-name": yaml_case(("name",), name="has spaces"),
    "yaml-rope-theta": yaml_case(("model.rope_theta",), **{"model.rope_theta": -1}),
    # ---- search spaces
    "space-low-above-high": yaml_case(("search.space",), **{"search.space": {"learning_rate": {"low": 1.0, "high": 0.1, "log": True}}}),
    "space-unknown-param": yaml_case(("search.space",), **{"search.space": {"colour": [1, 2]}}),
    "space-lr-negative": yaml_case(("learning_rate",), **{"search.space": {"learning_rate": [-0.1, 0.001]}}),
    "space-dropout-above-1": yaml_case(("dropout",), **{"search.space": {"dropout": [0.0, 1.5]}}),
    "space-strategy": yaml_case(("search.strategy",), **{"search.strategy": "bogus"}),
    "space-n-trials-0": yaml_case(("search",), **{"search.strategy": "tpe", "search.n_trials": 0, "search.n_samples": None}),
    "space-seed-negative": yaml_case(("search.seed",), **{"search.seed": -5}),
    "space-pruner": yaml_case(("search.pruner",), **{"search.pruner": "bogus"}),
    "space-objective": yaml_case(("search.objectives",), **{"search.objectives": ["nope"]}),
    "space-inf-bound": yaml_case(("search.space",), **{"search.space": {"learning_rate": {"low": 0.001, "high": float("inf")}}}),
    # ---- data files (experiments registered by the fixture with bad data)
    "data-missing-file": cli("data", "prepare", "--experiment", "bad-missing-file", needles=("missing.csv",)),
    "data-garbage-bytes": cli("data", "prepare", "--experiment", "bad-garbage-bytes", needles=("garbage.csv",)),
    "data-missing-columns": cli("data", "prepare", "--experiment", "bad-no-columns", needles=("nocols.csv",)),
    "data-empty-file": cli("data", "prepare", "--experiment", "bad-empty", needles=("empty.csv",)),
    "data-text-in-real": cli("data", "prepare", "--experiment", "bad-text-in-real", needles=("text.csv",)),
    "data-nan-real": cli("data", "prepare", "--experiment", "bad-nan-real", needles=("nan.csv",)),
    "data-study-on-bad-data": cli("study", "create", "--experiment", "bad-empty", "--budget", "10k", "--horizon", "1", needles=("empty.csv",)),
    # ---- budgets on the command line
    "budget-overflow-cli": cli("study", "create", "--experiment", "sp500-demo-quick", "--budget", "1e999999999", "--horizon", "1", needles=("budget",)),
    "budget-word-cli": cli("run", "--experiment", "sp500-demo-quick", "--budget", "abc", "--horizon", "1", needles=("abc",)),
    "budget-not-in-experiment": cli("study", "create", "--experiment", "sp500-demo-quick", "--budget", "7M", "--horizon", "1", needles=("7M",)),
    "horizon-not-in-experiment": cli("study", "create", "--experiment", "sp500-demo-quick", "--budget", "10k", "--horizon", "99", needles=("99",)),
    # ---- CLI arguments
    "cli-missing-value": cli("run", "--budget", needles=("--budget",)),
    "cli-not-an-int": cli("run", "--horizon", "x", "--budget", "10k", needles=("--horizon",)),
    "cli-no-such-command": cli("frobnicate", needles=("frobnicate",)),
    "cli-no-such-option": cli("status", "--bogus", needles=("--bogus",)),
    "cli-device": cli("run", "--experiment", "sp500-demo-quick", "--device", "tpu", needles=("tpu",)),
    "cli-lease-zero": cli("run", "--lease-seconds", "0", needles=("--lease-seconds",)),
    "cli-stop-neither": cli("stop", needles=("--worker", "--all")),
    "cli-stop-unknown-worker": cli("stop", "--worker", "999", needles=("999",)),
    "cli-trial-retry-unknown": cli("trial", "retry", "999", needles=("999",)),
    "cli-trial-retry-pending": cli("trial", "retry", "1", needles=("trial 1", "pending")),
    "cli-trial-retry-nothing": cli("trial", "retry", needles=("--failed",)),
    "cli-trial-retry-study-without-failed": cli("trial", "retry", "1", "--study", "1", needles=("--study",)),
    "cli-trial-export-unknown": cli("trial", "export", "999", needles=("999",)),
    "cli-study-show-unknown": cli("study", "show", "999", needles=("999",)),
    "cli-trial-list-state": cli("trial", "list", "--study", "1", "--state", "happy", needles=("happy",)),
    "cli-experiment-show-unknown": cli("experiment", "show", "nope", needles=("nope",)),
    "sql-not-select": cli("sql", "DELETE FROM trial", needles=()),
    "sql-two-statements": cli("sql", "SELECT 1; SELECT 2", needles=()),
    "sql-output-database": cli("sql", "SELECT 1 AS a", "--format", "csv", "--output", "{proj}/seqdb.db", needles=("seqdb.db",)),
    "sql-output-project-file": cli("sql", "SELECT 1 AS a", "--format", "csv", "--output", "{proj}/seqdb.yaml", needles=("seqdb.yaml",)),
    "sql-output-artifacts": cli("sql", "SELECT 1 AS a", "--output", "{proj}/artifacts/x.csv", needles=("artifacts",)),
    "export-into-artifacts": cli("export", "--output", "{proj}/artifacts/exports", needles=("artifacts",)),
    "sql-output-exists": with_file("old.csv", b"precious\n", "sql", "SELECT 1 AS a", "--output", "{scratch}/old.csv", needles=("exists", "--force")),
    # ---- database URLs
    "url-malformed": cli("--db", "not a url", "status", needles=("malformed",)),
    "url-scheme": cli("--db", "mysql://root:hunter22@localhost/x", "status", needles=("unsupported",)),
    "url-no-file": cli("--db", "sqlite://", "status", needles=("names no file",)),
    "url-bad-port": cli("--db", "postgresql://u:hunter22@127.0.0.1:notaport/x", "status", needles=("malformed",)),
    "url-unreachable": cli("--db", "postgresql://postgres@127.0.0.1:1/nowhere", "status", needles=("cannot connect",)),
    "url-missing-sqlite": cli("--db", "sqlite:///{scratch}/nope/none.db", "status", needles=("does not exist",)),
    "url-missing-sqlite-file": cli("--db", "sqlite:///{scratch}/none.db", "status", needles=("does not exist",)),
    # ---- databases
    "db-zero-bytes": with_file("zero.db", b"", "--db", "sqlite:///{scratch}/zero.db", "status", needles=("seqdb db upgrade",)),
    "db-not-sqlite": with_file("text.db", b"this is not a database at all\n" * 100, "--db", "sqlite:///{scratch}/text.db", "status", needles=()),
    "db-no-schema-current": with_file("zero2.db", b"", "--db", "sqlite:///{scratch}/zero2.db", "trial", "list", "--study", "1", needles=("seqdb db upgrade",)),
    # ---- ONNX files and checkpoints given to `seqdb infer`
    "onnx-missing": cli("infer", "--model", "{scratch}/none.onnx", "--data", "{proj}/data/sp500.csv", needles=("none.onnx",)),
    "onnx-garbage": with_file("bad.onnx", b"\x08\x01garbage" * 50, "infer", "--model", "{scratch}/bad.onnx", "--data", "{proj}/data/sp500.csv", needles=("bad.onnx",)),
    "onnx-empty": with_file("empty.onnx", b"", "infer", "--model", "{scratch}/empty.onnx", "--data", "{proj}/data/sp500.csv", needles=("empty.onnx",)),
    "onnx-artifact-unknown": cli("infer", "--model", "999", "--data", "{proj}/data/sp500.csv", needles=("999",)),
    "checkpoint-as-model": with_file("step-00000004.pt", b"PK\x03\x04 not a torch file", "infer", "--model", "{scratch}/step-00000004.pt", "--data", "{proj}/data/sp500.csv", needles=("step-00000004.pt",)),
}


def _listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_corpus_is_large_enough():
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_changes_nothing(case, corpus_project, scratch):
    args, needles = CASES[case](corpus_project, scratch)
    before, scratch_before = snapshot(corpus_project), _listing(scratch)
    res = run_cli_inprocess("--project", str(corpus_project), *args)
    dispose_engines()
    assert_one_line_error(res, *needles)
    assert "hunter22" not in res.err + res.out
    after = snapshot(corpus_project)
    assert after["rows"] == before["rows"], f"{case}: rows changed"
    assert after["files"] == before["files"], f"{case}: project files changed"
    assert _listing(scratch) == scratch_before, f"{case}: files of the case changed (created or overwritten)"
