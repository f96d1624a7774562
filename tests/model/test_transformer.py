"""The network: every option runs, is causal, learns, and exports to ONNX."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

from seqdb.config.trial import DataSpec, InputColumn, ModelConfig, TargetSpec
from seqdb.model.transformer import CausalTransformer

SPEC = DataSpec(
    context_length=12,
    inputs=[
        InputColumn(name="tok", kind="categorical", vocab_size=11, embedding_dim=8),
        InputColumn(name="day", kind="categorical", vocab_size=7),
        InputColumn(name="ret", kind="real"),
        InputColumn(name="vol", kind="real"),
    ],
    targets=[TargetSpec(name="up", kind="categorical", n_classes=3), TargetSpec(name="ret_next", kind="real")],
)
OPTIONS = list(
    itertools.product(["swiglu", "gelu", "relu"], ["mha", "mqa", "gqa"], ["learned", "rope"], ["rmsnorm", "layer_norm"], [True, False])
)


def inputs(batch: int, length: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(batch, length, 2, generator=g)
    cat = torch.stack([torch.randint(0, 11, (batch, length), generator=g), torch.randint(0, 7, (batch, length), generator=g)], -1)
    return real, cat


@pytest.mark.parametrize("activation,attention,positional,norm,prenorm", OPTIONS)
def test_every_option_is_causal_and_shaped(activation, attention, positional, norm, prenorm):
    torch.manual_seed(0)
    cfg = ModelConfig(
        d_model=16, n_layers=2, n_head=4, n_kv_heads=2, d_ff=24, activation=activation, attention=attention,
        positional=positional, norm=norm, prenorm=prenorm,
    )
    model = CausalTransformer(cfg, SPEC).eval()
    real, cat = inputs(3)
    out = model(real, cat)
    assert out["up"].shape == (3, 12, 3) and out["ret_next"].shape == (3, 12)
    assert model.hidden(real, cat).shape == (3, 12, 16)
    real2, cat2 = real.clone(), cat.clone()
    real2[:, 7:] += 5.0  # change the future only
    cat2[:, 7:, 0] = (cat2[:, 7:, 0] + 1) % 11
    out2 = model(real2, cat2)
    torch.testing.assert_close(out["up"][:, :7], out2["up"][:, :7], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out["up"][:, 7:], out2["up"][:, 7:])


def test_kv_heads_change_the_attention_shapes():
    for attention, n_kv, expected in [("mha", None, 4), ("mqa", None, 1), ("gqa", 2, 2), ("gqa", 3, 4)]:
        cfg = ModelConfig(d_model=16, n_layers=1, n_head=4, n_kv_heads=n_kv, d_ff=16, attention=attention)
        attn = CausalTransformer(cfg, SPEC).blocks[0].attn
        assert attn.kv_proj.out_features == 2 * expected * 4


def test_dropout_is_active_in_training_only():
    cfg = ModelConfig(d_model=16, n_layers=1, n_head=2, d_ff=16, dropout=0.5)
    model = CausalTransformer(cfg, SPEC)
    real, cat = inputs(2)
    model.train()
    a, b = model(real, cat)["ret_next"], model(real, cat)["ret_next"]
    assert not torch.equal(a, b)
    model.eval()
    assert torch.equal(model(real, cat)["ret_next"], model(real, cat)["ret_next"])


def test_shorter_sequences_are_accepted():
    for positional in ("learned", "rope"):
        cfg = ModelConfig(d_model=16, n_layers=1, n_head=2, d_ff=16, positional=positional)
        model = CausalTransformer(cfg, SPEC).eval()
        real, cat = inputs(2)
        full = model(real, cat)["up"]
        torch.testing.assert_close(model(real[:, :5], cat[:, :5])["up"], full[:, :5], rtol=1e-5, atol=1e-6)


def test_onnx_export_with_dynamic_batch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    cfg = ModelConfig(d_model=16, n_layers=2, n_head=4, n_kv_heads=2, attention="gqa", d_ff=24, positional="rope")
    model = CausalTransformer(cfg, SPEC).eval()
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, inputs(2), str(path), input_names=["real", "cat"], output_names=["up", "ret_next"],
            dynamo=False, dynamic_axes={"real": {0: "batch"}, "cat": {0: "batch"}},
        )
    real, cat = inputs(5, seed=3)
    up, ret = ort.InferenceSession(str(path)).run(None, {"real": real.numpy(), "cat": cat.numpy()})
    ref = model(real, cat)
    np.testing.assert_allclose(up, ref["up"].detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(ret, ref["ret_next"].detach().numpy(), atol=1e-5)
