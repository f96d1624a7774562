"""Budgets -> architectures: exact counts within tolerance, deterministic, errors name the nearest."""

from __future__ import annotations

import pytest

from seqdb.config.trial import DataSpec, InputColumn, TargetSpec
from seqdb.errors import ConfigError
from seqdb.model.grid import enumerate_architectures
from seqdb.model.params import param_count
from seqdb.model.transformer import CausalTransformer

SPEC = DataSpec(
    context_length=32,
    inputs=[InputColumn(name="tok", kind="categorical", vocab_size=50), InputColumn(name="x", kind="real")],
    targets=[TargetSpec(name="y", kind="categorical", n_classes=2)],
)


@pytest.mark.parametrize("budget", [50_000, 2_000_000, 20_000_000, 2_000_000_000])
def test_every_candidate_is_within_tolerance_and_exact(budget):
    cands = enumerate_architectures(budget, 0.25, SPEC, {"activation": "swiglu"})
    assert 1 <= len(cands) <= 16
    for c in cands:
        assert 0.75 * budget <= c.counts.total <= 1.25 * budget
        assert c.counts == param_count(c.model, SPEC)
        assert c.model.d_model % c.model.n_head == 0
        assert 16 <= c.model.d_model // c.model.n_head <= 128
        assert 1 <= c.model.n_layers <= 48
    totals = [c.counts.total for c in cands]
    assert totals == sorted(totals)
    assert len({c.model.d_model for c in cands}) == len(cands)  # a spread of shapes


def test_small_candidates_build_to_their_count():
    for c in enumerate_architectures(60_000, 0.25, SPEC, {"activation": "gelu", "positional": "rope"}):
        assert sum(p.numel() for p in CausalTransformer(c.model, SPEC).parameters()) == c.counts.total


def test_order_is_deterministic_and_base_options_are_kept():
    base = {"activation": "relu", "attention": "gqa", "n_kv_heads": 2, "norm": "layer_norm", "prenorm": False}
    a = enumerate_architectures(1_000_000, 0.2, SPEC, base)
    b = enumerate_architectures(1_000_000, 0.2, SPEC, dict(reversed(list(base.items()))))
    assert [x.model for x in a] == [x.model for x in b]
    assert all(x.model.activation == "relu" and x.model.norm == "layer_norm" and not x.model.prenorm for x in a)
    assert any(x.model.kv_heads == 2 for x in a)


def test_explicit_grid_axes_are_enumerated():
    grid = {"d_model": [64, 128], "n_layers": [2, 4], "n_head": [2, 4], "d_ff": [128, 256]}
    cands = enumerate_architectures(400_000, 0.9, SPEC, {"activation": "gelu"}, grid, max_candidates=100)
    assert {(c.model.n_head) for c in cands} == {2, 4}
    assert all(c.model.d_model in (64, 128) and c.model.n_layers in (2, 4) for c in cands)
    assert len(cands) == len({(c.model.d_model, c.model.n_layers, c.model.n_head, c.model.d_ff) for c in cands})


def test_nothing_fits_names_the_nearest_counts():
    with pytest.raises(ConfigError) as err:
        enumerate_architectures(1_000, 0.25, SPEC, {})
    assert "nearest achievable" in err.value.message and "smallest above" in err.value.message
    with pytest.raises(ConfigError, match="largest below"):
        enumerate_architectures(10**9, 0.01, SPEC, {}, {"d_model": [64], "n_layers": [1, 2]})


def test_bad_keys_are_config_errors():
    with pytest.raises(ConfigError, match="unknown architecture grid axis 'width'"):
        enumerate_architectures(10**6, 0.25, SPEC, {}, {"width": [1]})
    with pytest.raises(ConfigError, match="unknown architecture option 'colour'"):
        enumerate_architectures(10**6, 0.25, SPEC, {"colour": "red"})


def test_gqa_prefers_head_counts_the_kv_heads_divide():
    cands = enumerate_architectures(2_000_000, 0.25, SPEC, {"attention": "gqa", "n_kv_heads": 4})
    for c in cands:
        d = c.model.d_model
        possible = any(d % hd == 0 and (d // hd) % 4 == 0 for hd in (16, 32, 64, 128))
        assert (c.model.kv_heads == 4) == possible  # else the documented fallback to mha
    assert sum(c.model.kv_heads == 4 for c in cands) >= len(cands) // 2
