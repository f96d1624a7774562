"""From a flat searched configuration to a complete, standalone `TrialConfig`.

`StudyContext` holds what every trial of one study shares (the experiment's training and
model defaults, the epoch limit, the budget, the base `DataSpec`, the budget's
architectures); `build_trial(ctx, params)` applies the searched parameters on top and counts
the parameters exactly. The context is stored in the study's typed config
(`seqdb.config.study.StudyConfig.context`), so a sampler in any process rebuilds trials
exactly as the study's creator did.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

from pydantic import ValidationError

from seqdb.config.study import StudyContext
from seqdb.config.trial import DataSpec, ModelConfig, TrainingConfig, TrialConfig
from seqdb.errors import ConfigError
from seqdb.model.params import ParamCount, param_count
from seqdb.config.search import MODEL_OPTION_KEYS, SHAPE_KEYS, TRAINING_KEYS


@dataclass(frozen=True)
class BuiltTrial:
    config: TrialConfig
    counts: ParamCount
    params: dict
    architecture: int  # ordinal in the budget's grid
    label: Optional[str] = None


def canonical_attention(model: dict) -> dict:
    """One spelling per attention layout, so equal models hash equally.

    mqa -> 1 kv head; a given n_kv_heads means grouped attention; n_kv_heads that does not
    divide n_head (or equals it) falls back to full multi-head attention (sequifier's rule)."""
    m = dict(model)
    heads, kv, attention = m["n_head"], m.get("n_kv_heads"), m.get("attention", "mha")
    if attention == "mqa":
        kv = 1
    elif kv is not None:
        attention = "gqa"
    if attention == "gqa" and (kv is None or kv <= 0 or heads % kv or kv == heads):
        attention, kv = "mha", None
    if attention == "gqa" and kv == 1:
        attention = "mqa"
    m["attention"], m["n_kv_heads"] = attention, (None if attention == "mha" else kv)
    return m


def subset_spec(base: DataSpec, input_columns: Optional[tuple] = None, embedding_dims: Optional[tuple] = None) -> DataSpec:
    """The base spec restricted to `input_columns` (kept in data order) with the given
    categorical embedding sizes ((column, dim) pairs)."""
    names = set(input_columns) if input_columns else {c.name for c in base.inputs}
    dims = dict(embedding_dims or ())
    inputs = []
    for col in base.inputs:  # data order, as seqdb.data.prepared.PreparedData.data_spec
        if col.name not in names:
            continue
        if col.name in dims and col.kind == "categorical":
            col = col.model_copy(update={"embedding_dim": int(dims[col.name])})
        inputs.append(col)
    return base.model_copy(update={"inputs": inputs})


@lru_cache(maxsize=256)
def _spec_cached(base_json: str, input_columns: Optional[tuple], embedding_dims: Optional[tuple]) -> DataSpec:
    return subset_spec(DataSpec.model_validate_json(base_json), input_columns, embedding_dims)


def trial_data_spec(ctx: StudyContext, params: dict, arch: dict) -> DataSpec:
    import json

    dims = dict(arch.get("embedding_dims") or {})
    dims.update(params.get("embedding_dims") or {})
    dims.update({k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("embedding_dim.")})
    columns = params.get("input_columns")
    key_cols = tuple(columns) if columns else None
    key_dims = tuple(sorted(dims.items())) if dims else None
    return _spec_cached(json.dumps(ctx.data_spec, sort_keys=True), key_cols, key_dims)


def build_trial(ctx: StudyContext, params: dict, label: Optional[str] = None) -> BuiltTrial:
    """A flat configuration -> a validated TrialConfig with its exact parameter count.

    Raises ConfigError when the combination is not a valid model (e.g. rope with an odd
    head dimension)."""
    ordinal = int(params.get("architecture", 0))
    arch = ctx.architectures[ordinal]
    model = {**arch["config"], **{k: params[k] for k in SHAPE_KEYS if k in params}}
    model.update({k: params[k] for k in MODEL_OPTION_KEYS if k in params})
    training = {**ctx.training, **{k: params[k] for k in TRAINING_KEYS if k in params and k != "epochs"}}
    training["max_epochs"] = int(params.get("epochs", ctx.max_epochs))
    training["seed"] = ctx.seed
    try:
        config = TrialConfig(
            experiment=ctx.experiment,
            budget=ctx.budget,
            horizon=ctx.horizon,
            seed=ctx.seed,
            data=trial_data_spec(ctx, params, arch),
            model=ModelConfig(**canonical_attention(model)),
            training=TrainingConfig(**training),
            label=label,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"configuration {_brief(params)} is invalid: {where + ': ' if where else ''}{err['msg']}") from None
    return BuiltTrial(config, param_count(config.model, config.data), dict(params), ordinal, label)


def _brief(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items() if k not in SHAPE_KEYS)[:160] or "(defaults)"
