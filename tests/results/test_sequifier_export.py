"""`seqdb trial export ID --format sequifier`: the toolkit's preprocess and train configs for
the same model and data, what could not be carried over named, and a derived target refused.
With SEQUIFIER_BIN naming the toolkit's CLI, sequifier 3.1.1.0 itself preprocesses the data
and trains the exported project (one epoch) — the proof that the export is trainable."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from seqdb.db.engine import create_engine_for
from seqdb.experiment.registry import register_experiment
from seqdb.project import init_project
from seqdb.search.study import ensure_study
from tests.helpers import assert_one_line_error, run_cli_inprocess

EXPERIMENT = """name: seqx
seed: 5
data:
  path: data/events.csv
  sequence_column: sequenceId
  position_column: itemPosition
  columns: {x: real, k: categorical}
  stride: 4
target:
  - {column: x, task: regression}
  - {column: k, task: next_category, name: k_next}
context_length: 8
horizons: [1]
split: {validation: 0.2, test: 0.2}
budgets: [8k]
tolerance: 0.6
search:
  strategy: grid
  space: {learning_rate: [2.0e-3], dropout: [0.1]}
training: {max_epochs: 2, effective_batch_size: 16, warmup_steps: 3, max_steps: 40}
"""


def _project(root: Path, db_url: str, experiment: str = EXPERIMENT):
    project = init_project(root, database=db_url)
    rng = np.random.default_rng(1)
    rows = [(s, p, float(np.sin(p / 3) + 0.1 * rng.normal()), "abc"[p % 3]) for s in range(4) for p in range(60)]
    pl.DataFrame(rows, schema=["sequenceId", "itemPosition", "x", "k"], orient="row").write_csv(root / "data" / "events.csv")
    (root / "configs" / "seqx.yaml").write_text(experiment)
    engine = create_engine_for(db_url)
    register_experiment(engine, root / "configs" / "seqx.yaml")
    study = ensure_study(engine, project, experiment.split("\n")[0].split(": ")[1], "8k", 1)
    with engine.connect() as c:
        import sqlalchemy as sa

        trial_id = c.execute(sa.text("SELECT MIN(trial_id) FROM trial WHERE study_id = :s"), {"s": study.study_id}).scalar_one()
    return project, engine, trial_id


def test_export_maps_model_data_and_training_and_names_what_is_left_out(db_url, tmp_path):
    project, engine, trial_id = _project(tmp_path / "proj", db_url)
    out = tmp_path / "sq"
    res = run_cli_inprocess("--db", db_url, "--project", str(project.root), "trial", "export", str(trial_id), "--format", "sequifier", "--output", str(out))
    assert res.code == 0, res.err
    pre = yaml.safe_load((out / "configs" / "preprocess.yaml").read_text())
    train = yaml.safe_load((out / "configs" / "train.yaml").read_text())
    cfg = yaml.safe_load(run_cli_inprocess("--db", db_url, "trial", "export", str(trial_id), "--format", "yaml").out)
    assert pre["selected_columns"] == ["x", "k"] and pre["categorical_columns"] == ["k"] and pre["real_columns"] == ["x"]
    assert pre["split_ratios"] == [0.6, 0.2, 0.2] and pre["window_length"] == 9 and pre["max_target_offset"] == 1 and pre["window_stride"] == 4
    assert pre["preprocessing_data_path"] == str((project.root / "data" / "events.csv").resolve())
    g, arch = train["global_training"], train["model"]["backbone"]["architecture"]
    m = cfg["model"]
    assert (arch["dim_model"], arch["num_layers"], arch["attention"]["n_heads"], arch["feed_forward"]["dim"]) == (m["d_model"], m["n_layers"], m["n_head"], m["d_ff"])
    assert arch["feed_forward"]["activation"] == m["activation"] and arch["dropout"] == 0.1 and arch["position_encoding"]["type"] == m["positional"]
    assert g["learning_rate"] == 2e-3 and g["batch_size"] * g["accumulation_steps"] == 16 and g["context_length"] == 8 and g["target_offset"] == 1
    assert g["optimizer"]["name"] == "AdamW" and g["scheduler"]["name"] == "CosineAnnealingLR" and g["scheduler_step_on"] == "batch"
    assert train["training_plan"] == {"epochs": 2} and train["seed"] == cfg["seed"]
    assert train["dataset"]["criterion"] == {"x": "MSELoss", "k": "CrossEntropyLoss"}
    assert train["dataset"]["part"]["metadata_config_path"] == "configs/metadata_configs/events.json"
    assert train["model"]["interface"]["target_columns"] == ["x", "k"] and train["model"]["interface"]["decoder"]["prediction_length"] == 8
    assert "not carried over: training.warmup_steps 3" in res.out and "not carried over: training.max_steps 40" in res.out
    notes = (out / "SEQDB_EXPORT.md").read_text()
    assert "warmup_steps 3" in notes and "sequifier train --config-path configs/train.yaml" in notes
    assert oct((out / "configs" / "train.yaml").stat().st_mode & 0o777) == "0o644"


def test_a_derived_target_and_an_unknown_format_are_one_line_errors(db_url, tmp_path):
    direction = EXPERIMENT.replace("  - {column: x, task: regression}\n  - {column: k, task: next_category, name: k_next}\n",
                                   "  - {column: x, task: direction}\n")
    project, engine, trial_id = _project(tmp_path / "proj", db_url, direction)
    cli = ("--db", db_url, "--project", str(project.root), "trial", "export", str(trial_id))
    assert_one_line_error(run_cli_inprocess(*cli, "--format", "sequifier", "--output", str(tmp_path / "o")), "target 'x' is a direction target", "allowed:")
    assert not (tmp_path / "o").exists()
    assert_one_line_error(run_cli_inprocess(*cli, "--format", "onnx"), "--format 'onnx'", "allowed: json, yaml, sequifier")


def _sequifier_bin() -> str | None:
    """The peer's CLI, named by SEQUIFIER_BIN (as the benchmarks take it): ~2 min, so opt-in."""
    cand = os.environ.get("SEQUIFIER_BIN")
    return cand if cand and Path(cand).is_file() else None


@pytest.mark.slow
@pytest.mark.skipif(_sequifier_bin() is None, reason="set SEQUIFIER_BIN=/path/to/sequifier (see shared/PEERS.md) to train the export with it")
def test_sequifier_preprocesses_and_trains_the_export(tmp_path):
    project, engine, trial_id = _project(tmp_path / "proj", f"sqlite:///{tmp_path / 'proj.db'}")
    out = tmp_path / "sq"
    res = run_cli_inprocess("--project", str(project.root), "trial", "export", str(trial_id), "--format", "sequifier", "--output", str(out))
    assert res.code == 0, res.err
    train = yaml.safe_load((out / "configs" / "train.yaml").read_text())
    train["training_plan"]["epochs"] = 1
    (out / "configs" / "train.yaml").write_text(yaml.safe_dump(train, sort_keys=False))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    for step in ("preprocess", "train"):
        run = subprocess.run([_sequifier_bin(), step, "--config-path", f"configs/{step}.yaml"], cwd=out, env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, f"sequifier {step}: {run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    assert list((out / "models").glob("*.onnx")), "sequifier exported no model"
