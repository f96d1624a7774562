"""Exact, closed-form parameter counts of `CausalTransformer` (no model is built).

`embedding` counts the lookup tables (categorical embedding tables and the learned
positional table); `non_embedding` is everything else (projections, blocks, norms, heads),
the N of Kaplan-style scaling laws. `total == sum(p.numel() for p in model.parameters())`
for every option combination (property-tested in tests/model/test_params.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from seqdb.config.trial import DataSpec, ModelConfig


@dataclass(frozen=True)
class ParamCount:
    total: int
    embedding: int
    non_embedding: int


def norm_params(kind: str, d: int) -> int:
    return d if kind == "rmsnorm" else 2 * d  # rmsnorm: weight; layer_norm: weight + bias


def block_params(cfg: ModelConfig) -> int:
    """One transformer block: attention, MLP and its two norms."""
    d, head_dim = cfg.d_model, cfg.d_model // cfg.n_head
    attention = 2 * d * d + 2 * d * cfg.kv_heads * head_dim  # q, o; k, v
    mlp = (3 if cfg.activation == "swiglu" else 2) * d * cfg.d_ff
    if cfg.mlp_bias:
        mlp += (2 * cfg.d_ff if cfg.activation == "swiglu" else cfg.d_ff) + d
    return attention + mlp + 2 * norm_params(cfg.norm, d)


def input_params(cfg: ModelConfig, spec: DataSpec) -> tuple[int, int]:
    """(embedding tables, projections) of the input layer."""
    d, tables, projections = cfg.d_model, 0, 0
    for col in spec.categorical_inputs:
        e = col.embedding_dim or d
        tables += col.vocab_size * e
        projections += 0 if e == d else e * d
    n_real = len(spec.real_inputs)
    projections += n_real * d + d if n_real else 0
    if cfg.positional == "learned":
        tables += spec.context_length * d
    return tables, projections


def head_params(cfg: ModelConfig, spec: DataSpec) -> int:
    outputs = [t.n_classes if t.kind == "categorical" else 1 for t in spec.targets]
    return sum(cfg.d_model * n + n for n in outputs)


def param_count(model_cfg: ModelConfig, data_spec: DataSpec) -> ParamCount:
    tables, projections = input_params(model_cfg, data_spec)
    final_norm = norm_params(model_cfg.norm, model_cfg.d_model) if model_cfg.prenorm else 0
    non_embedding = (
        projections + model_cfg.n_layers * block_params(model_cfg) + final_norm + head_params(model_cfg, data_spec)
    )
    return ParamCount(total=tables + non_embedding, embedding=tables, non_embedding=non_embedding)
