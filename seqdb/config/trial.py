"""The typed, standalone configuration of one trial.

A trial's config flows one way: experiment YAML -> validated pydantic model
(`seqdb.experiment`) -> expanded by the search (`seqdb.search`) into a `TrialConfig` ->
stored as JSON in `trial.config` -> loaded back with `TrialConfig.model_validate(json)` and
handed as typed objects (`ModelConfig`, `TrainingConfig`, `DataSpec`) to the model and the
trainer. The trainer reads no YAML, no environment and no globals.

These classes are the contract between the search, the runner, the model and the trainer.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

Activation = Literal["swiglu", "gelu", "relu"]
Attention = Literal["mha", "mqa", "gqa"]
Positional = Literal["learned", "rope"]
Norm = Literal["rmsnorm", "layer_norm"]
Scheduler = Literal["cosine", "linear", "constant"]
TaskKind = Literal["direction", "threshold", "regression", "next_category"]


# Ranges of every numeric field (a value outside is a one-line error naming the field).
MAX_SEED = 2**32 - 1  # numpy / torch generators take 32-bit seeds
MAX_WIDTH = 65_536  # d_model, d_ff per layer, embedding sizes
MAX_LAYERS = 1_024
MAX_STEPS = 10**9
MAX_BATCH = 2**20
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class InputColumn(Strict):
    """One model input: a categorical column (embedded) or a real column (projected)."""

    name: str
    kind: Literal["categorical", "real"]
    vocab_size: int = Field(default=0, ge=0, le=2**31 - 1)  # categorical only: ids 0 (unknown/padding), 1 (other), 2+ values
    embedding_dim: Optional[int] = Field(default=None, ge=1, le=MAX_WIDTH)  # categorical only; None: d_model


class TargetSpec(Strict):
    """One training target at the study's horizon.

    kind `categorical`: cross-entropy over `n_classes` (ids; -1 in the data = ignore).
    kind `real`: mean squared error (NaN in the data = ignore).
    """

    name: str
    kind: Literal["categorical", "real"]
    n_classes: int = Field(default=0, ge=0, le=2**31 - 1)
    loss_weight: float = Field(default=1.0, ge=0, le=1e6)
    class_weights: Optional[list[Annotated[float, Field(ge=0, le=1e6)]]] = None


class DataSpec(Strict):
    """What the model needs to know about the prepared data."""

    dataset_hash: str = ""
    context_length: int = Field(gt=0, le=1_000_000)
    horizon: int = Field(default=1, gt=0, le=1_000_000)
    inputs: list[InputColumn]
    targets: list[TargetSpec]

    @model_validator(mode="after")
    def _check(self) -> "DataSpec":
        if not self.inputs:
            raise ValueError("at least one input column is required")
        if not self.targets:
            raise ValueError("at least one target is required")
        return self

    @property
    def real_inputs(self) -> list[InputColumn]:
        return [c for c in self.inputs if c.kind == "real"]

    @property
    def categorical_inputs(self) -> list[InputColumn]:
        return [c for c in self.inputs if c.kind == "categorical"]


class ModelConfig(Strict):
    """Architecture of the causal transformer (see seqdb/model/transformer.py)."""

    d_model: int = Field(gt=0, le=MAX_WIDTH)
    n_layers: int = Field(gt=0, le=MAX_LAYERS)
    n_head: int = Field(gt=0, le=MAX_WIDTH)
    n_kv_heads: Optional[int] = Field(default=None, ge=1, le=MAX_WIDTH)  # None: = n_head (mha); 1: mqa; else gqa
    d_ff: int = Field(gt=0, le=16 * MAX_WIDTH)
    activation: Activation = "swiglu"
    attention: Attention = "mha"
    positional: Positional = "learned"
    rope_theta: float = Field(default=10000.0, gt=0, le=1e12)
    norm: Norm = "rmsnorm"
    prenorm: bool = True
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    mlp_bias: bool = False  # biases in the feed-forward layers (as sequifier has)

    @model_validator(mode="after")
    def _check(self) -> "ModelConfig":
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")
        if self.positional == "rope" and (self.d_model // self.n_head) % 2:
            raise ValueError(f"rope needs an even head dimension, found {self.d_model // self.n_head}")
        return self

    @property
    def kv_heads(self) -> int:
        """Effective number of key/value heads (fallback to full MHA when it does not divide)."""
        if self.attention == "mqa":  # one shared key/value head, whatever n_kv_heads says
            return 1
        if self.attention == "mha" or self.n_kv_heads is None:
            return self.n_head
        if self.n_kv_heads <= 0 or self.n_head % self.n_kv_heads:
            return self.n_head
        return self.n_kv_heads


class EarlyStopping(Strict):
    patience: int = Field(default=10, ge=1, le=MAX_STEPS)
    min_delta: float = Field(default=0.0, ge=0.0, le=1e6)


class TrainingConfig(Strict):
    """Optimisation settings. `effective_batch_size` never changes; the physical batch and
    accumulation are chosen by the trainer (dynamic batching) and reported."""

    learning_rate: float = Field(default=3e-4, gt=0, le=10)
    weight_decay: float = Field(default=0.01, ge=0, le=10)
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.9, 0.95)
    scheduler: Scheduler = "cosine"
    warmup_steps: int = Field(default=0, ge=0, le=MAX_STEPS)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    grad_clip: float = Field(default=1.0, ge=0, le=1e6)  # 0: no clipping
    max_epochs: int = Field(default=10, ge=1, le=1_000_000)
    max_steps: Optional[int] = Field(default=None, ge=1, le=MAX_STEPS)  # optional cap on optimizer steps
    effective_batch_size: int = Field(default=128, ge=1, le=MAX_BATCH)
    batch_size: Optional[int] = Field(default=None, ge=1, le=MAX_BATCH)  # None: chosen per architecture
    early_stopping: EarlyStopping = EarlyStopping()
    eval_every_steps: Optional[int] = Field(default=None, ge=1, le=MAX_STEPS)  # None: once per epoch
    checkpoint_every_steps: Optional[int] = Field(default=None, ge=1, le=MAX_STEPS)  # None: at each evaluation
    max_eval_batches: Optional[int] = Field(default=None, ge=1, le=MAX_STEPS)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16/fp16 on CUDA, fp32 on CPU
    compile: bool = False
    seed: Seed = 0

    def steps_per_epoch(self, n_windows: int, world: int = 1) -> int:
        """Optimizer steps in one pass over `n_windows` training windows; every step needs at
        least one window per process, so a shorter tail step is dropped."""
        eff = self.effective_batch_size
        return max(1, n_windows // eff + (1 if n_windows % eff >= world else 0))

    def total_steps(self, n_windows: int, world: int = 1) -> int:
        """The optimizer steps a trial trains: max_epochs passes, capped by max_steps."""
        total = self.max_epochs * self.steps_per_epoch(n_windows, world)
        return min(total, self.max_steps) if self.max_steps else total


class TrialConfig(Strict):
    """A complete, standalone training configuration (exportable as YAML)."""

    experiment: str
    budget: str
    horizon: int = Field(gt=0, le=1_000_000)
    seed: Seed = 0
    data: DataSpec
    model: ModelConfig
    training: TrainingConfig
    label: Optional[str] = None  # ablation label

    def config_hash(self) -> str:
        return config_hash(self.model_dump(mode="json", exclude={"label"}))


def config_hash(config: dict) -> str:
    """A stable sha256 of a JSON-able config (sorted keys, compact separators)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
