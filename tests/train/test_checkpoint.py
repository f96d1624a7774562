"""Checkpoints: atomic and hashed, corruption detected, resume bit-identical on CPU."""

from __future__ import annotations

import json

import pytest
import torch

from seqdb.config.trial import ModelConfig, TrainingConfig, TrialConfig
from seqdb.errors import TrainingError
from seqdb.train.checkpoint import file_sha256, latest_checkpoint, load_checkpoint, save_checkpoint
from seqdb.train.reporter import MemoryReporter
from seqdb.train.trainer import train
from tests.train.synth import make_windows, spec

TRAIN, VAL = make_windows(6, 40, 8, seed=0), make_windows(2, 40, 8, seed=1)


def _cfg(**model) -> TrialConfig:
    m = dict(d_model=16, n_layers=2, n_head=2, d_ff=32, dropout=0.1, positional="rope")
    return TrialConfig(
        experiment="e", budget="1k", horizon=1, seed=1, data=spec(),
        model=ModelConfig(**(m | model)),
        training=TrainingConfig(learning_rate=3e-3, max_epochs=3, effective_batch_size=32, batch_size=12,
                                warmup_steps=3, eval_every_steps=2),
    )


def test_save_is_atomic_and_hashed(tmp_path):
    path, size, sha = save_checkpoint({"w": torch.arange(5)}, tmp_path, 7)
    assert path.name == "step-00000007.pt" and path.stat().st_size == size
    assert sha == file_sha256(path)
    assert json.loads((tmp_path / "step-00000007.pt.sha256").read_text())["sha256"] == sha
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000007.pt", "step-00000007.pt.sha256"]
    assert torch.equal(load_checkpoint(path, verify_sha256=sha)["w"], torch.arange(5))
    assert latest_checkpoint(tmp_path) == path
    save_checkpoint({"w": 1}, tmp_path, 12)
    (tmp_path / "step-00000012.pt.sha256").unlink()  # a checkpoint without its hash is incomplete
    assert latest_checkpoint(tmp_path) == path
    assert latest_checkpoint(tmp_path / "missing") is None


def test_corruption_is_detected_and_named(tmp_path):
    path, _size, sha = save_checkpoint({"w": torch.ones(100)}, tmp_path, 1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(TrainingError, match=f"checkpoint {path} is corrupt"):
        load_checkpoint(path)
    with pytest.raises(TrainingError, match="is corrupt"):
        load_checkpoint(path, verify_sha256=sha)
    with pytest.raises(TrainingError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "step-00000001.pt.sha256").unlink()  # no hash to check: a truncated file still fails
    path.write_bytes(bytes(data[:-40]))
    with pytest.raises(TrainingError, match=f"checkpoint {path} cannot be read"):
        load_checkpoint(path)


def test_resume_is_bit_identical(tmp_path):
    full_rep = MemoryReporter()
    full = train(_cfg(), TRAIN, VAL, full_rep, checkpoint_dir=tmp_path / "full")
    assert full.status == "completed"

    first = MemoryReporter(stop_after_step=5)  # stop between evaluations: the stop writes step 5
    stopped = train(_cfg(), TRAIN, VAL, first, checkpoint_dir=tmp_path / "split")
    assert stopped.status == "stopped" and stopped.step == 5
    resume = latest_checkpoint(tmp_path / "split")
    assert resume.name == "step-00000005.pt"

    second = MemoryReporter()
    done = train(_cfg(), TRAIN, VAL, second, checkpoint_dir=tmp_path / "split", resume_from=resume)
    assert done.status == "completed" and done.step == full.step
    strip = lambda rows: [r for r in rows if r[2] not in ("tokens_per_s", "memory_mb")]  # noqa: E731
    assert strip(first.rows) + strip(second.rows) == strip(full_rep.rows)
    a = load_checkpoint(full.latest_checkpoint)["model"]
    b = load_checkpoint(done.latest_checkpoint)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (done.best_step, done.best_val_loss) == (full.best_step, full.best_val_loss)


def test_resume_checks_the_config_and_the_hash(tmp_path):
    res = train(_cfg(), TRAIN, VAL, MemoryReporter(stop_after_step=2), checkpoint_dir=tmp_path)
    path = res.latest_checkpoint
    with pytest.raises(TrainingError, match="different model"):
        train(_cfg(d_model=32), TRAIN, VAL, MemoryReporter(), checkpoint_dir=tmp_path, resume_from=path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(TrainingError, match=str(path)):
        train(_cfg(), TRAIN, VAL, MemoryReporter(), checkpoint_dir=tmp_path, resume_from=path)
