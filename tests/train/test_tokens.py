"""Tokens and FLOPs as a training axis: recorded at every evaluation, carried across a resume."""

from __future__ import annotations

from seqdb.config.trial import ModelConfig, TrainingConfig, TrialConfig
from seqdb.train.reporter import MemoryReporter
from seqdb.train.trainer import flops_per_token, train
from tests.train.synth import make_windows, spec

TRAIN, VAL = make_windows(6, 40, 8, seed=0), make_windows(2, 40, 8, seed=1)  # 198 training windows of 8
MODEL = ModelConfig(d_model=16, n_layers=2, n_head=2, d_ff=32)


def config(epochs: int) -> TrialConfig:
    return TrialConfig(experiment="synthetic", budget="10k", horizon=1, seed=7, data=spec(), model=MODEL,
                       training=TrainingConfig(learning_rate=3e-3, max_epochs=epochs, effective_batch_size=32, batch_size=16))


def test_every_evaluation_reports_tokens_and_flops_seen_so_far(tmp_path):
    rep = MemoryReporter()
    res = train(config(3), TRAIN, VAL, rep, checkpoint_dir=tmp_path)
    per_epoch = len(TRAIN) * 8  # every window once per epoch, the short tail step included
    tokens = [v for _s, v in rep.series("tokens")]
    assert tokens == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert [s for s, _v in rep.series("tokens")] == [s for s, _v in rep.series("val_loss")]  # one per evaluation
    from seqdb.model.transformer import CausalTransformer

    n = sum(p.numel() for p in CausalTransformer(MODEL, spec()).parameters())
    fpt = flops_per_token(MODEL, n, 8)
    assert fpt == 6 * n + 6 * 2 * 8 * 16
    assert [v for _s, v in rep.series("flops")] == [t * fpt for t in tokens]
    assert res.tokens == 3 * per_epoch and res.flops == 3 * per_epoch * fpt


def test_a_resumed_run_counts_the_tokens_before_the_resume(tmp_path):
    first = train(config(1), TRAIN, VAL, MemoryReporter(), checkpoint_dir=tmp_path)
    rep = MemoryReporter()
    second = train(config(2), TRAIN, VAL, rep, checkpoint_dir=tmp_path, resume_from=first.latest_checkpoint)
    assert first.tokens == len(TRAIN) * 8 and second.tokens == 2 * len(TRAIN) * 8
    assert [v for _s, v in rep.series("tokens")] == [2 * len(TRAIN) * 8]
