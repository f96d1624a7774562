"""param_count equals sum(p.numel()) of the built model for every option combination."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from seqdb.config.trial import DataSpec, InputColumn, ModelConfig, TargetSpec
from seqdb.model.params import param_count
from seqdb.model.transformer import CausalTransformer


@st.composite
def configs(draw):
    head_dim = draw(st.sampled_from([2, 4, 8]))
    n_head = draw(st.integers(1, 4))
    attention = draw(st.sampled_from(["mha", "mqa", "gqa"]))
    model = ModelConfig(
        d_model=head_dim * n_head,
        n_layers=draw(st.integers(1, 3)),
        n_head=n_head,
        n_kv_heads=draw(st.one_of(st.none(), st.integers(1, 5))),  # non-divisors fall back to mha
        d_ff=draw(st.integers(1, 40)),
        activation=draw(st.sampled_from(["swiglu", "gelu", "relu"])),
        attention=attention,
        positional=draw(st.sampled_from(["learned", "rope"])),
        norm=draw(st.sampled_from(["rmsnorm", "layer_norm"])),
        prenorm=draw(st.booleans()),
        dropout=draw(st.sampled_from([0.0, 0.1])),
        mlp_bias=draw(st.booleans()),
    )
    n_cat, n_real = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    if n_cat + n_real == 0:
        n_real = 1
    inputs = [
        InputColumn(
            name=f"c{i}",
            kind="categorical",
            vocab_size=draw(st.integers(3, 20)),
            embedding_dim=draw(st.one_of(st.none(), st.integers(1, 12))),
        )
        for i in range(n_cat)
    ] + [InputColumn(name=f"r{i}", kind="real") for i in range(n_real)]
    targets = [
        TargetSpec(name=f"t{i}", kind=kind, n_classes=draw(st.integers(2, 9)) if kind == "categorical" else 0)
        for i, kind in enumerate(draw(st.lists(st.sampled_from(["categorical", "real"]), min_size=1, max_size=3)))
    ]
    spec = DataSpec(context_length=draw(st.integers(1, 24)), inputs=inputs, targets=targets)
    return model, spec


@settings(max_examples=150, deadline=None)
@given(configs())
def test_param_count_is_exact(cfg_spec):
    model_cfg, spec = cfg_spec
    model = CausalTransformer(model_cfg, spec)
    counts = param_count(model_cfg, spec)
    assert counts.total == sum(p.numel() for p in model.parameters())
    tables = sum(m.weight.numel() for m in model.embed.tables) + (
        model.embed.pos.weight.numel() if model.embed.pos is not None else 0
    )
    assert counts.embedding == tables
    assert counts.non_embedding == counts.total - counts.embedding


def test_counts_of_a_known_model():
    # d=64, 2 layers, mha, gelu, d_ff 256, layer_norm, pre-norm, learned positions (ctx 8),
    # one real input, one 3-class target: the textbook 12*d^2*L plus the small terms.
    spec = DataSpec(context_length=8, inputs=[InputColumn(name="r", kind="real")], targets=[TargetSpec(name="y", kind="categorical", n_classes=3)])
    cfg = ModelConfig(d_model=64, n_layers=2, n_head=4, d_ff=256, activation="gelu", norm="layer_norm")
    blocks = 2 * (4 * 64 * 64 + 2 * 64 * 256 + 4 * 64)
    expected = (1 * 64 + 64) + 8 * 64 + blocks + 2 * 64 + (64 * 3 + 3)
    assert param_count(cfg, spec).total == expected
    assert param_count(cfg, spec).embedding == 8 * 64
