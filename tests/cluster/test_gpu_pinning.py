"""One worker per GPU: each `--workers N` child gets its own CUDA_VISIBLE_DEVICES and trains
on `cuda:0`; the worker table records the GPU as the machine numbers it. Checked with real
worker processes and a model-free executor (no GPU needed); the GPU run is in
docs/cluster.md."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from seqdb.runner.gpus import parse_gpus, physical_device, plan_gpus
from seqdb.runner.pool import run_pool
from seqdb.runner.worker import WorkerSettings
from seqdb.errors import ConfigError
from seqdb.testing.synthetic import SyntheticExecutor, create_synthetic_study
from tests.helpers import assert_one_line_error, run_cli_inprocess


@dataclass
class SeenDevice(SyntheticExecutor):
    """Reports the GPU and device its process was given (as metrics `gpu`, `cuda_index`)."""

    def __call__(self, run):  # noqa: ANN001, ANN204
        run.reporter.writer.add(0, 0, {"gpu": float(os.environ.get("CUDA_VISIBLE_DEVICES", "-1")),
                                       "cuda_index": float(run.device.split(":")[1]) if ":" in run.device else -1.0})
        return super().__call__(run)


@pytest.mark.timeout(180)
def test_each_worker_is_pinned_to_one_listed_gpu(engine, db_url, tmp_path):
    study = create_synthetic_study(engine, 6)
    settings = WorkerSettings(database_url=db_url, study_ids=[study], artifacts_root=str(tmp_path), device="cuda",
                              lease_s=5, poll_s=0.1, progress=False, max_trials=2)
    summaries = run_pool(settings, 3, SeenDevice(steps=3), gpus=["0", "1", "3"])
    assert sorted(s.trials_done for s in summaries) == [2, 2, 2]
    with engine.connect() as c:
        rows = c.execute(sa.text("SELECT device, info FROM worker ORDER BY worker_id")).all()
        seen = c.execute(sa.text("SELECT name, value FROM metric WHERE name IN ('gpu', 'cuda_index')")).all()
    labels = {(json.loads(i) if isinstance(i, str) else i)["label"]: d for d, i in rows}
    assert labels == {"w0": "cuda:0", "w1": "cuda:1", "w2": "cuda:3"}
    assert {v for n, v in seen if n == "gpu"} == {0.0, 1.0, 3.0} and {v for n, v in seen if n == "cuda_index"} == {0.0}


def test_plans(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # as Slurm sets it for a task with 2 GPUs
    assert plan_gpus("cuda", 3) == ["2", "3", "2"] and plan_gpus("cpu", 2) == [None, None]
    assert plan_gpus("cuda:1", 2) == [None, None] and plan_gpus("cuda", 2, ["5"]) == ["5", "5"]
    assert physical_device("cuda:1") == "cuda:3" and physical_device("cuda") == "cuda:2" and physical_device("cpu") == "cpu"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ConfigError, match="no CUDA device is visible"):
        plan_gpus("cuda", 1)
    assert parse_gpus("0, 1,3") == ["0", "1", "3"]
    for bad in ("a", "0,0", "1,,2", "-1"):
        with pytest.raises(ConfigError, match="--gpus"):
            parse_gpus(bad)


@pytest.mark.parametrize("args, needles", [
    (["--gpus", "0,x"], ("--gpus '0,x'", "e.g. --gpus 0,1,3")),
    (["--gpus", "0", "--device", "cuda:1"], ("--gpus 0", "--device cuda:1")),
    (["--ddp", "2", "--workers", "2"], ("--ddp 2", "drop --workers 2")),
    (["--ddp", "3", "--gpus", "0,1"], ("--ddp 3 with --gpus 0,1", "exactly 3")),
])
def test_bad_device_options_fail_in_one_line(args, needles, tmp_path):
    assert_one_line_error(run_cli_inprocess("--project", str(tmp_path), "run", *args), *needles)
