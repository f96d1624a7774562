"""Dynamic batching: tiers, exact gradient accumulation, out-of-memory halving."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch

from seqdb.config.trial import ModelConfig, TrainingConfig, TrialConfig
from seqdb.model.transformer import CausalTransformer
from seqdb.train.batching import BatchConfig, initial_batch_config, micro_batches, tier_batch_size
from seqdb.train.data import Selector
from seqdb.train.reporter import MemoryReporter
from seqdb.train.trainer import accumulate_gradients, train
from tests.train.synth import make_windows, spec

WINDOWS = make_windows(8, 60, 8, seed=2)  # 424 windows


@pytest.mark.parametrize(
    "d_model,n_layers,expected",
    [(256, 4, 128), (1024, 48, 64), (2048, 24, 64), (2048, 48, 32), (4096, 32, 16), (8192, 16, 8), (4096, 2, 128)],
)
def test_memory_score_tiers(d_model, n_layers, expected):  # score d^2 L / 1e9
    cfg = ModelConfig(d_model=d_model, n_layers=n_layers, n_head=8, d_ff=4 * d_model)
    assert tier_batch_size(cfg) == expected
    bc = initial_batch_config(cfg, 128, None)
    assert (bc.batch_size, bc.accumulation, bc.effective_batch_size) == (expected, 128 // expected, 128)


def test_batch_is_capped_by_the_effective_batch_and_shared_by_processes():
    cfg = ModelConfig(d_model=64, n_layers=2, n_head=4, d_ff=128)
    assert initial_batch_config(cfg, 20, None) == BatchConfig(20, 1, 20)
    assert initial_batch_config(cfg, 100, 32, world_size=2) == BatchConfig(32, 2, 100)
    assert [len(c) for c in micro_batches(np.arange(100), 32)] == [32, 32, 32, 4]
    assert BatchConfig(32, 4, 128).halve(128) == BatchConfig(16, 8, 128, 1)


def _grads(batch_size: int) -> list[torch.Tensor]:
    s = spec(targets=("up", "nxt", "tok_next"), class_weights=[1.0, 2.5])
    torch.manual_seed(0)
    model = CausalTransformer(
        ModelConfig(d_model=16, n_layers=2, n_head=4, n_kv_heads=2, attention="gqa", d_ff=24, positional="rope"), s
    ).double()
    idx = np.random.default_rng(0).permutation(len(WINDOWS))[:128]
    accumulate_gradients(model, Selector(s, WINDOWS), idx, batch_size, s)
    return [p.grad.clone() for p in model.parameters()]


def test_gradient_is_the_same_for_any_split_float64():
    full = _grads(128)  # 128 x 1
    for batch_size in (32, 48):  # 32 x 4; 48 + 48 + 32 (an uneven last micro-batch)
        for g_full, g in zip(full, _grads(batch_size)):
            torch.testing.assert_close(g, g_full, rtol=1e-6, atol=1e-9)


def _cfg(**training) -> TrialConfig:
    t = dict(learning_rate=3e-3, max_epochs=1, max_steps=4, effective_batch_size=32, batch_size=32)
    return TrialConfig(
        experiment="e", budget="1k", horizon=1, data=spec(),
        model=ModelConfig(d_model=16, n_layers=1, n_head=2, d_ff=32), training=TrainingConfig(**(t | training)),
    )


def test_injected_out_of_memory_halves_the_batch_and_continues(tmp_path):
    ref_rep = MemoryReporter()
    ref = train(_cfg(), WINDOWS, WINDOWS, ref_rep, checkpoint_dir=tmp_path / "ref")
    original = CausalTransformer.forward
    calls = {"n": 0}

    def flaky(self, real, cat):
        calls["n"] += 1
        if calls["n"] == 3:  # during the second optimizer step
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, real, cat)

    rep = MemoryReporter()
    with mock.patch.object(CausalTransformer, "forward", flaky):
        res = train(_cfg(), WINDOWS, WINDOWS, rep, checkpoint_dir=tmp_path / "oom")
    assert res.status == "completed" and res.step == ref.step
    assert res.batch_config == {"batch_size": 16, "accumulation": 2, "effective_batch_size": 32, "oom_retries": 1}
    a, b = [v for _s, v in ref_rep.series("train_loss")], [v for _s, v in rep.series("train_loss")]
    np.testing.assert_allclose(b, a, rtol=1e-5)  # same effective batch -> same optimisation


def test_out_of_memory_every_time_fails_after_three_retries(tmp_path):
    def always(self, real, cat):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with mock.patch.object(CausalTransformer, "forward", always):
        res = train(_cfg(), WINDOWS, WINDOWS, MemoryReporter(), checkpoint_dir=tmp_path)
    assert res.status == "failed" and "out of memory at batch size 4 after 3 retries" in res.error
    assert res.batch_config["oom_retries"] == 3 and res.batch_config["effective_batch_size"] == 32
