"""DistributedDataParallel on CPU (gloo): 2 processes match 1 process at the same effective batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from seqdb.config.trial import ModelConfig, TrainingConfig, TrialConfig
from seqdb.train.reporter import MemoryReporter
from seqdb.train.trainer import train
from tests.train.synth import make_windows, spec


def _cfg() -> TrialConfig:
    return TrialConfig(
        experiment="e", budget="1k", horizon=1, seed=5, data=spec(),
        model=ModelConfig(d_model=16, n_layers=1, n_head=2, d_ff=32),
        training=TrainingConfig(learning_rate=3e-3, max_epochs=1, max_steps=4, effective_batch_size=32,
                                batch_size=8, eval_every_steps=2),
    )


def _run(out: Path) -> dict:
    rep = MemoryReporter()
    res = train(_cfg(), make_windows(4, 40, 8, seed=0), make_windows(2, 40, 8, seed=1), rep, checkpoint_dir=out / "ckpt")
    return {"status": res.status, "train": rep.series("train_loss"), "val": rep.series("val_loss"),
            "batch": res.batch_config, "ckpts": len(rep.checkpoints)}


def _worker(rank: int, world: int, tmp: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/pg", rank=rank, world_size=world)
    try:
        result = _run(Path(tmp) / f"rank{rank}")
        Path(tmp, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one(tmp_path):
    single = _run(tmp_path / "single")
    mp.start_processes(_worker, args=(2, str(tmp_path)), nprocs=2, join=True, start_method="fork")  # no re-imports
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    assert rank0["status"] == rank1["status"] == "completed"
    for key in ("train", "val"):
        steps = [s for s, _v in single[key]]
        assert [s for s, _v in rank0[key]] == steps
        for (_s, a), (_t, b) in zip(single[key], rank0[key]):
            assert b == pytest.approx(a, rel=1e-5)
    assert rank0["batch"] == {"batch_size": 8, "accumulation": 2, "effective_batch_size": 32, "oom_retries": 0}
    assert rank0["ckpts"] > 0 and rank1["ckpts"] == 0 and rank1["train"] == []  # rank 0 reports and saves


@pytest.mark.timeout(180)
def test_under_torchrun(tmp_path):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(root / "tests" / "train" / "torchrun_worker.py"), str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr[-2000:]
    single = _run(tmp_path / "single")
    rank0 = json.loads((tmp_path / "torchrun0.json").read_text())
    assert rank0["world"] == 2 and rank0["device"] == "cpu" and rank0["status"] == "completed"
    for (_s, a), (_t, b) in zip(single["val"], rank0["val"], strict=True):
        assert b == pytest.approx(a, rel=1e-5)


def _resume_worker(rank: int, world: int, tmp: str) -> None:
    """Both ranks: stop after step 2 (rank 0's decision), then resume from the checkpoint rank
    0 wrote in the shared folder and train to the end."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/pg-resume", rank=rank, world_size=world)
    try:
        train_set, val_set, shared = make_windows(4, 40, 8, seed=0), make_windows(2, 40, 8, seed=1), Path(tmp) / "shared"
        first = train(_cfg(), train_set, val_set, MemoryReporter(stop_after_step=2), checkpoint_dir=shared)
        ckpt = sorted(shared.glob("*.pt"))[-1] if rank == 0 else None
        path = [str(ckpt) if ckpt else None]
        dist.broadcast_object_list(path, src=0)
        rep = MemoryReporter()
        res = train(_cfg(), train_set, val_set, rep, checkpoint_dir=shared, resume_from=Path(path[0]))
        out = {"stopped": [first.status, first.step], "status": res.status, "val": rep.series("val_loss"), "train": rep.series("train_loss")}
        Path(tmp, f"resume{rank}.json").write_text(json.dumps(out))
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_two_gloo_processes_resume_from_rank_zeros_checkpoint(tmp_path):
    """Every rank restores the one checkpoint rank 0 wrote: the resumed DDP run continues
    exactly where the uninterrupted single-process run is at the same step."""
    single = _run(tmp_path / "single")
    mp.start_processes(_resume_worker, args=(2, str(tmp_path)), nprocs=2, join=True, start_method="fork")
    rank0 = json.loads((tmp_path / "resume0.json").read_text())
    assert rank0["stopped"] == ["stopped", 2] and rank0["status"] == "completed"
    assert [s for s, _ in rank0["train"]] == [3, 4]
    for (s, a), (t, b) in zip(single["train"][2:], rank0["train"], strict=True):
        assert s == t and b == pytest.approx(a, rel=1e-5)
    assert rank0["val"][-1][1] == pytest.approx(single["val"][-1][1], rel=1e-5)
