"""The causal transformer: one readable file, nanoGPT-style.

Inputs at every position t of a window: categorical columns (each through its own embedding
table, projected to d_model when its embedding_dim differs) and real columns (one linear
projection of the real vector). The per-position input vectors are summed, a learned
positional table is added (or RoPE is applied inside attention), then n_layers blocks of
causal self-attention (mha / mqa / gqa via n_kv_heads) and an MLP (swiglu / gelu / relu),
with rmsnorm or layer_norm, pre- or post-norm. One linear head per target reads the final
hidden state at every position: logits for categorical targets, a scalar for real ones.

Every parameter is created here and nowhere else, so `seqdb.model.params.param_count` can
count them in closed form (tests check equality with sum(p.numel())).

ONNX: attention is `scaled_dot_product_attention(is_causal=True)`; kv heads are expanded
with `repeat_interleave` (no `enable_gqa`), RMSNorm is written out with elementwise ops and
RoPE uses precomputed cos/sin buffers sliced to the sequence length, so
`torch.onnx.export` works with a dynamic batch (and sequence) dimension.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from seqdb.config.trial import DataSpec, ModelConfig


class RMSNorm(nn.Module):
    """x / rms(x) * weight, written with elementwise ops (exports to any ONNX opset)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def make_norm(kind: str, dim: int) -> nn.Module:
    return RMSNorm(dim) if kind == "rmsnorm" else nn.LayerNorm(dim)


def rope_tables(head_dim: int, length: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [length, head_dim/2] for rotary embeddings."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = torch.outer(torch.arange(length, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :h/2], x[..., h/2:]) of x [B, H, L, hd] by position angles."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # [L, hd/2] broadcasts over B, H
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head, self.n_kv = cfg.n_head, cfg.kv_heads
        self.head_dim = cfg.d_model // cfg.n_head
        self.q_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.kv_proj = nn.Linear(cfg.d_model, 2 * self.n_kv * self.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.dropout = cfg.dropout
        self.rope = cfg.positional == "rope"

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        B, L, D = x.shape
        q = self.q_proj(x).view(B, L, self.n_head, self.head_dim).transpose(1, 2)  # [B, H, L, hd]
        kv = self.kv_proj(x).view(B, L, 2, self.n_kv, self.head_dim)
        k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)  # [B, Hkv, L, hd]
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if self.n_kv != self.n_head:  # mqa / gqa: share each kv head across a group of q heads
            k = k.repeat_interleave(self.n_head // self.n_kv, dim=1)
            v = v.repeat_interleave(self.n_head // self.n_kv, dim=1)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # [B, H, L, hd]
        return self.o_proj(y.transpose(1, 2).reshape(B, L, D))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.swiglu = cfg.activation == "swiglu"
        n_in = 2 * cfg.d_ff if self.swiglu else cfg.d_ff  # swiglu: gate and value in one matmul
        self.up = nn.Linear(cfg.d_model, n_in, bias=cfg.mlp_bias)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.mlp_bias)
        self.act = {"gelu": F.gelu, "relu": F.relu}.get(cfg.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)  # [B, L, d_ff] or [B, L, 2 d_ff]
        if self.swiglu:
            gate, value = h.chunk(2, dim=-1)
            h = F.silu(gate) * value
        else:
            h = self.act(h)
        return self.down(h)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.prenorm = cfg.prenorm
        self.norm1, self.norm2 = make_norm(cfg.norm, cfg.d_model), make_norm(cfg.norm, cfg.d_model)
        self.attn, self.mlp = CausalSelfAttention(cfg), MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, rope) -> torch.Tensor:
        if self.prenorm:  # x + f(norm(x))
            x = x + self.drop(self.attn(self.norm1(x), rope))
            return x + self.drop(self.mlp(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attn(x, rope)))  # post-norm: norm(x + f(x))
        return self.norm2(x + self.drop(self.mlp(x)))


class InputEmbedding(nn.Module):
    """Sum of per-column categorical embeddings and a projection of the real columns."""

    def __init__(self, cfg: ModelConfig, spec: DataSpec):
        super().__init__()
        d = cfg.d_model
        self.tables = nn.ModuleList()
        self.projections = nn.ModuleList()  # Identity where embedding_dim == d_model
        for col in spec.categorical_inputs:
            e = col.embedding_dim or d
            self.tables.append(nn.Embedding(col.vocab_size, e))
            self.projections.append(nn.Identity() if e == d else nn.Linear(e, d, bias=False))
        n_real = len(spec.real_inputs)
        self.real_proj = nn.Linear(n_real, d) if n_real else None
        self.pos = nn.Embedding(spec.context_length, d) if cfg.positional == "learned" else None

    def forward(self, real: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        x = self.real_proj(real) if self.real_proj is not None else None  # [B, L, d]
        for j, (table, proj) in enumerate(zip(self.tables, self.projections)):
            e = proj(table(cat[..., j]))  # [B, L, d]
            x = e if x is None else x + e
        if self.pos is not None:
            x = x + self.pos.weight[: x.shape[1]]  # [L, d] broadcasts over B
        return x


class CausalTransformer(nn.Module):
    """forward(real [B, L, R], cat [B, L, C]) -> {target: logits [B, L, n_classes] | pred [B, L]}.

    R and C are the DataSpec's real and categorical inputs, in DataSpec order.
    """

    def __init__(self, model_cfg: ModelConfig, data_spec: DataSpec):
        super().__init__()
        self.cfg, self.spec = model_cfg, data_spec
        self.embed = InputEmbedding(model_cfg, data_spec)
        self.drop = nn.Dropout(model_cfg.dropout)
        self.blocks = nn.ModuleList(Block(model_cfg) for _ in range(model_cfg.n_layers))
        self.final_norm = make_norm(model_cfg.norm, model_cfg.d_model) if model_cfg.prenorm else nn.Identity()
        self.heads = nn.ModuleDict(
            {t.name: nn.Linear(model_cfg.d_model, t.n_classes if t.kind == "categorical" else 1) for t in data_spec.targets}
        )
        if model_cfg.positional == "rope":
            cos, sin = rope_tables(model_cfg.d_model // model_cfg.n_head, data_spec.context_length, model_cfg.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale residual output projections
            if name.endswith("o_proj.weight") or name.endswith("down.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * model_cfg.n_layers))

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def hidden(self, real: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        """Final hidden states [B, L, d_model] (after the final norm)."""
        x = self.drop(self.embed(real, cat))
        rope = None
        if self.cfg.positional == "rope":
            L = x.shape[1]
            rope = (self.rope_cos[:L], self.rope_sin[:L])
        for block in self.blocks:
            x = block(x, rope)
        return self.final_norm(x)

    def forward(self, real: torch.Tensor, cat: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.hidden(real, cat)
        out = {}
        for t in self.spec.targets:
            y = self.heads[t.name](h)
            out[t.name] = y if t.kind == "categorical" else y.squeeze(-1)
        return out
