"""The trainer end to end on tiny synthetic data: learning, determinism, metrics, control."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqdb.config.trial import EarlyStopping, InputColumn, ModelConfig, TrainingConfig, TrialConfig
from seqdb.errors import ConfigError, DataError
from seqdb.train.checkpoint import list_checkpoints
from seqdb.train.reporter import MemoryReporter
from seqdb.train.trainer import evaluate, lr_factor, train
from tests.train.synth import make_windows, spec

TRAIN, VAL = make_windows(6, 40, 8, seed=0), make_windows(2, 40, 8, seed=1)


def config(targets=("up", "nxt"), model=None, **training) -> TrialConfig:
    defaults = dict(learning_rate=3e-3, max_epochs=2, effective_batch_size=32, batch_size=16, warmup_steps=2)
    return TrialConfig(
        experiment="synthetic", budget="10k", horizon=1, seed=7, data=spec(targets=targets),
        model=model or ModelConfig(d_model=16, n_layers=1, n_head=2, d_ff=32),
        training=TrainingConfig(**(defaults | training)),
    )


def test_learns_and_reports_every_metric(tmp_path):
    rep = MemoryReporter()
    cfg = config(targets=("up", "nxt", "tok_next"), max_epochs=6, eval_every_steps=5)
    res = train(cfg, TRAIN, VAL, rep, checkpoint_dir=tmp_path)
    assert res.status == "completed" and res.error is None
    assert res.step == 6 * math.ceil(len(TRAIN) / 32) and res.epoch == 6
    names = {k for _s, _e, k, _v in rep.rows}
    for name in ("train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "memory_mb", "train_loss_up",
                 "val_loss_nxt", "val_accuracy_up", "val_mae_nxt", "val_top5_accuracy_tok_next"):
        assert name in names, name
    val = [v for _s, v in rep.series("val_loss")]
    assert val[-1] < 0.8 * val[0]
    assert res.best_val_loss == min(val) and res.best_metrics["loss"] == res.best_val_loss
    assert res.batch_config == {"batch_size": 16, "accumulation": 2, "effective_batch_size": 32, "oom_retries": 0}
    assert res.tokens_per_s > 0


def test_same_seed_same_losses_other_seed_differs(tmp_path):
    runs = []
    for i, seed in enumerate((3, 3, 4)):
        rep = MemoryReporter()
        cfg = config(model=ModelConfig(d_model=16, n_layers=1, n_head=2, d_ff=32, dropout=0.1), seed=seed)
        train(cfg, TRAIN, VAL, rep, checkpoint_dir=tmp_path / str(i))
        runs.append(rep.series("train_loss") + rep.series("val_loss"))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_early_stopping_ends_the_run(tmp_path):
    cfg = config(max_epochs=20, eval_every_steps=1, early_stopping=EarlyStopping(patience=2, min_delta=10.0))
    res = train(cfg, TRAIN, VAL, MemoryReporter(), checkpoint_dir=tmp_path)
    assert res.status == "completed" and res.early_stopped
    assert res.step == 3 and res.best_step == 1


def test_prune_and_stop_answers(tmp_path):
    rep = MemoryReporter(prune_when=lambda step, m: step >= 3)
    res = train(config(), TRAIN, VAL, rep, checkpoint_dir=tmp_path / "p")
    assert res.status == "pruned" and res.step == 3

    rep = MemoryReporter(stop_after_step=2)
    res = train(config(), TRAIN, VAL, rep, checkpoint_dir=tmp_path / "s")
    assert res.status == "stopped" and res.step == 2
    assert rep.checkpoints[-1].step == 2 and res.latest_checkpoint == rep.checkpoints[-1].path


def test_non_finite_loss_fails_without_crashing(tmp_path):
    bad = make_windows(6, 40, 8, seed=0)
    bad.targets["nxt"][~np.isnan(bad.targets["nxt"])] = np.inf
    res = train(config(), bad, VAL, MemoryReporter(), checkpoint_dir=tmp_path)
    assert res.status == "failed"
    assert "non-finite training loss" in res.error and "step 1" in res.error


def test_only_best_and_latest_checkpoints_are_kept(tmp_path):
    rep = MemoryReporter()
    res = train(config(max_epochs=4, eval_every_steps=1), TRAIN, VAL, rep, checkpoint_dir=tmp_path)
    kept = {step for step, _p in list_checkpoints(tmp_path)}
    assert kept == {res.step, res.best_step}
    assert len(rep.checkpoints) >= res.step - 1  # one per evaluation (each was reported)
    assert any(c.is_best for c in rep.checkpoints)
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_inputs_are_selected_by_name(tmp_path):
    cfg = config()
    subset = cfg.data.model_copy(update={"inputs": [InputColumn(name="noise", kind="real")]})
    res = train(cfg.model_copy(update={"data": subset}), TRAIN, VAL, MemoryReporter(), checkpoint_dir=tmp_path)
    assert res.status == "completed"
    missing = cfg.data.model_copy(update={"inputs": [InputColumn(name="price", kind="real")]})
    with pytest.raises(DataError, match="input column 'price'"):
        train(cfg.model_copy(update={"data": missing}), TRAIN, VAL, MemoryReporter(), checkpoint_dir=tmp_path)


def test_bad_class_weights_are_a_config_error(tmp_path):
    cfg = config()
    data = cfg.data.model_copy(update={"targets": [spec(class_weights=[1.0, 2.0, 3.0]).targets[0]]})
    with pytest.raises(ConfigError, match="class_weights has 3 entries"):
        train(cfg.model_copy(update={"data": data}), TRAIN, VAL, MemoryReporter(), checkpoint_dir=tmp_path)


def test_evaluate_matches_a_direct_computation():
    torch.manual_seed(0)
    from seqdb.model.transformer import CausalTransformer

    s = spec(targets=("up",), class_weights=[1.0, 3.0])
    model = CausalTransformer(ModelConfig(d_model=16, n_layers=1, n_head=2, d_ff=16), s)
    m = evaluate(model, VAL, s, batch_size=7)
    rows = VAL.window_rows(np.arange(len(VAL)))
    real = torch.from_numpy(VAL.real[rows][..., [0]])
    cat = torch.from_numpy(VAL.cat[rows][..., [0]])
    y = torch.from_numpy(VAL.targets["up"][rows])
    with torch.no_grad():
        logits = model(real, cat)["up"]
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 2), y.reshape(-1), weight=torch.tensor([1.0, 3.0]), ignore_index=-1)
    assert m["loss"] == pytest.approx(float(ce), rel=1e-5)
    valid = y >= 0
    assert m["accuracy_up"] == pytest.approx(float((logits.argmax(-1) == y)[valid].float().mean()), rel=1e-6)


def test_learning_rate_schedules():
    assert lr_factor(0, 4, 100, "cosine", 0.1) == 0.25
    assert lr_factor(3, 4, 100, "cosine", 0.1) == 1.0
    assert lr_factor(4, 4, 100, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_factor(100, 4, 100, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_factor(52, 4, 100, "linear", 0.0) == pytest.approx(0.5)
    assert lr_factor(90, 0, 100, "constant", 0.1) == 1.0


def test_bf16_autocast_runs_and_stays_close_to_fp32(tmp_path):
    losses = {}
    for precision in ("fp32", "bf16"):
        rep = MemoryReporter()
        res = train(config(precision=precision, max_steps=3), TRAIN, VAL, rep, checkpoint_dir=tmp_path / precision)
        assert res.status == "completed"
        losses[precision] = [v for _s, v in rep.series("train_loss")]
    np.testing.assert_allclose(losses["bf16"], losses["fp32"], rtol=0.05)


def test_outside_torchrun_there_is_no_process_group(monkeypatch):
    from seqdb.train.distributed import DistContext, init_from_torchrun

    monkeypatch.delenv("RANK", raising=False)
    ctx, device = init_from_torchrun()
    assert ctx == DistContext() and not ctx.active and device in ("cpu", "cuda")
