"""Budgets -> architectures: the (d_model, n_layers, n_head, n_kv_heads, d_ff) that fit.

`enumerate_architectures(n_params, tolerance, data_spec, base, grid)` walks a grid, counts
every candidate exactly (`param_count`, closed form) and keeps those within
`n_params * (1 ± tolerance)` (total parameters, embeddings included).

Default grid (any axis can be replaced through `grid`, or fixed through `base`):
- d_model: multiples of 32 up to 512, of 64 up to 2048, of 128 up to 4096, of 256 up to 8192;
- n_layers: 1..48;
- n_head: one per d_model, head dim 128 (d_model >= 2048), 64 (>= 256), 32 (>= 64), else 16
  (the first of these that divides d_model; for gqa, preferring one whose head count
  n_kv_heads divides);
- d_ff: 2x, 3x, 4x d_model for gelu/relu; 2x, 8/3x, 4x for swiglu (rounded up to 32).

So that a study stays small and covers a spread of shapes, candidates are grouped by
d_model plus every axis given explicitly in `grid`; each group keeps the candidate closest
to the budget, and at most `max_candidates` (default 16) groups closest to the budget are
returned. The result is ordered by (total, d_model, n_layers, n_head, kv heads, d_ff).
Nothing in tolerance -> ConfigError naming the nearest achievable counts below and above.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Optional

from pydantic import ValidationError

from seqdb.config.trial import DataSpec, ModelConfig
from seqdb.errors import ConfigError
from seqdb.model.params import ParamCount, param_count

AXES = ("d_model", "n_layers", "n_head", "n_kv_heads", "d_ff")
FIXED = ("activation", "attention", "n_kv_heads", "positional", "rope_theta", "norm", "prenorm", "dropout", "mlp_bias")
MAX_CANDIDATES = 16


@dataclass(frozen=True)
class ArchCandidate:
    model: ModelConfig
    counts: ParamCount

    @property
    def n_params(self) -> int:
        return self.counts.total


def default_d_models() -> list[int]:
    steps = [(32, 32, 512), (64, 576, 2048), (128, 2176, 4096), (256, 4352, 8192)]
    return [d for step, lo, hi in steps for d in range(lo, hi + 1, step)]


def default_n_head(d_model: int, kv_heads: Optional[int] = None) -> int:
    """Head dim 128 (d >= 2048), 64 (>= 256), 32 (>= 64), else 16: the first that divides
    d_model and, for gqa, gives a head count that `kv_heads` divides (else the first)."""
    fits = [d_model // hd for min_d, hd in ((2048, 128), (256, 64), (64, 32), (0, 16)) if d_model >= min_d and d_model % hd == 0]
    grouped = [h for h in fits if kv_heads and h % kv_heads == 0]
    return (grouped or fits or [1])[0]


def default_d_ffs(d_model: int, activation: str) -> list[int]:
    ratios = (2.0, 8.0 / 3.0, 4.0) if activation == "swiglu" else (2.0, 3.0, 4.0)
    return sorted({32 * math.ceil(r * d_model / 32) for r in ratios})


def _axis_values(name: str, d_model: int, base: dict, grid: dict) -> list:
    if name in grid:
        return list(grid[name])
    if name in base:
        return [base[name]]
    if name == "d_model":
        return default_d_models()
    if name == "n_layers":
        return list(range(1, 49))
    if name == "n_head":
        kv = base.get("n_kv_heads") if base.get("attention") == "gqa" else None
        return [default_n_head(d_model, kv)]
    if name == "d_ff":
        return default_d_ffs(d_model, base.get("activation", "swiglu"))
    return [None]  # n_kv_heads: not set


def _check_keys(base: dict, grid: dict) -> None:
    for key in base:
        if key not in FIXED + AXES:
            raise ConfigError(f"unknown architecture option '{key}' in base; allowed: {', '.join(FIXED + AXES)}")
    for key, values in grid.items():
        if key not in AXES:
            raise ConfigError(f"unknown architecture grid axis '{key}'; allowed: {', '.join(AXES)}")
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"architecture grid axis '{key}' must be a non-empty list, got {values!r}")


def _candidates(data_spec: DataSpec, base: dict, grid: dict):
    """Yield (ModelConfig, ParamCount) for every valid grid point (unvalidated copies, fast)."""
    template = ModelConfig(d_model=64, n_layers=1, n_head=1, d_ff=64, **{k: base[k] for k in FIXED if k in base})
    for d in _axis_values("d_model", 0, base, grid):
        axes = [_axis_values(a, d, base, grid) for a in AXES[1:]]
        for n_layers, n_head, n_kv, d_ff in itertools.product(*axes):
            if n_head <= 0 or d % n_head or (template.positional == "rope" and (d // n_head) % 2):
                continue
            cfg = template.model_copy(
                update=dict(d_model=d, n_layers=n_layers, n_head=n_head, n_kv_heads=n_kv, d_ff=d_ff)
            )
            yield cfg, param_count(cfg, data_spec)


def _nearest_message(n_params: int, tolerance: float, seen: list[tuple[int, ModelConfig]]) -> str:
    below = max((s for s in seen if s[0] < n_params), default=None, key=lambda s: s[0])
    above = min((s for s in seen if s[0] > n_params), default=None, key=lambda s: s[0])
    parts = []
    for label, hit in (("largest below", below), ("smallest above", above)):
        if hit is not None:
            c = hit[1]
            parts.append(f"{label}: {hit[0]:,} (d_model={c.d_model}, n_layers={c.n_layers}, d_ff={c.d_ff})")
    nearest = "; ".join(parts) or "none (empty grid)"
    return f"no architecture within ±{tolerance:.0%} of {n_params:,} parameters; nearest achievable: {nearest}"


def enumerate_architectures(
    n_params: int,
    tolerance: float,
    data_spec: DataSpec,
    base: Optional[dict] = None,
    grid: Optional[dict] = None,
    *,
    max_candidates: int = MAX_CANDIDATES,
) -> list[ArchCandidate]:
    """Architectures whose exact total count is within n_params*(1±tolerance); see module doc."""
    base, grid = dict(base or {}), dict(grid or {})
    _check_keys(base, grid)
    if n_params <= 0 or not 0 <= tolerance < 1:
        raise ConfigError(f"budget must be > 0 and tolerance in [0, 1), got {n_params} and {tolerance}")
    lo, hi = n_params * (1 - tolerance), n_params * (1 + tolerance)
    group_axes = ["d_model"] + [a for a in AXES[1:] if a in grid]
    best: dict[tuple, tuple[float, ModelConfig, ParamCount]] = {}
    seen: list[tuple[int, ModelConfig]] = []
    for cfg, counts in _candidates(data_spec, base, grid):
        seen.append((counts.total, cfg))
        if not lo <= counts.total <= hi:
            continue
        err = abs(counts.total - n_params) / n_params
        key = tuple(getattr(cfg, a) for a in group_axes)
        if key not in best or (err, _order(cfg, counts)) < (best[key][0], _order(*best[key][1:])):
            best[key] = (err, cfg, counts)
    if not best:
        raise ConfigError(_nearest_message(n_params, tolerance, seen))
    chosen = sorted(best.values(), key=lambda b: (b[0], _order(b[1], b[2])))[:max_candidates]
    out = [ArchCandidate(model=_validated(cfg), counts=counts) for _err, cfg, counts in chosen]
    return sorted(out, key=lambda a: _order(a.model, a.counts))


def _order(cfg: ModelConfig, counts: ParamCount) -> tuple:
    return (counts.total, cfg.d_model, cfg.n_layers, cfg.n_head, cfg.kv_heads, cfg.d_ff)


def _validated(cfg: ModelConfig) -> ModelConfig:
    try:
        return ModelConfig.model_validate(cfg.model_dump())
    except ValidationError as exc:  # pragma: no cover - the grid filters invalid points first
        raise ConfigError(f"invalid architecture {cfg.model_dump()}: {exc.errors()[0]['msg']}") from exc
