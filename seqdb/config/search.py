"""The `search:` section of an experiment YAML, validated.

    search:
      strategy: tpe                  # grid | sample | tpe | nsga2 | ablation
      n_trials: 20                   # tpe / nsga2: trials per study
      objectives: [val_loss]         # or [{name: val_loss, direction: minimize}, latency_ms]
      pruner: median                 # median | hyperband | none (or {name: median, n_warmup_steps: 2})
      space:
        learning_rate: {low: 1.0e-4, high: 1.0e-3, log: true}
        dropout: [0.0, 0.1, 0.2]
        embedding_dim: {weekday: [4, 8]}

Search-space semantics follow the sequifier hyperparameter search:
- a list is a set of values; a scalar is one fixed value;
- linked-by-index groups vary together (anchor first): `d_model` with `n_head` and
  `embedding_dims`; `learning_rate` with `epochs` and `scheduler`; `input_columns` with
  `column_types`. When the anchor is a list, every linked list must have the same length
  (a linked scalar is used for every index); every other list is a Cartesian factor;
- `n_kv_heads` that does not divide `n_head` falls back to full multi-head attention;
- Optuna-style distributions `{low, high, log, step}` (float or int) and `{choices: [...]}`
  (the seed's `{type: log_uniform | uniform | int | categorical, ...}` is accepted too);
- per-column embedding sizes: `embedding_dim: {column: values or distribution}`.

The sequifier names (`dim_model`, `num_layers`, `dim_feedforward`, `activation_fn`,
`attention_type`, `normalization`, `norm_first`, `positional_encoding`,
`feature_embedding_dims`) are accepted as aliases of the seqdb names.

Every model here has `extra="forbid"` and defaults, so `SearchSpec()` is valid: a grid over
the budget's architectures with the experiment's training settings.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Optional

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

Strategy = Literal["grid", "sample", "tpe", "nsga2", "ablation"]
Direction = Literal["minimize", "maximize"]
PrunerName = Literal["median", "hyperband", "none"]

# objective name -> default direction; `val_top<k>_accuracy` is matched by pattern.
OBJECTIVES: dict[str, str] = {
    "val_loss": "minimize",
    "train_loss": "minimize",
    "latency_ms": "minimize",
    "param_count": "minimize",
    "non_embedding_params": "minimize",
    "tokens_per_s": "maximize",
    "val_accuracy": "maximize",
}
TOP_K_OBJECTIVE = re.compile(r"^val_top(\d+)_accuracy$")

# Linked-by-index groups: anchor -> linked members (sequifier's coupling).
LINKED_GROUPS: dict[str, tuple[str, ...]] = {
    "d_model": ("n_head", "embedding_dims"),
    "learning_rate": ("epochs", "scheduler"),
    "input_columns": ("column_types",),
}
# Parameters that define an architecture's shape (its row in the budget's grid).
SHAPE_KEYS = ("d_model", "n_head", "n_layers", "d_ff", "n_kv_heads")
MODEL_OPTION_KEYS = ("activation", "attention", "norm", "prenorm", "positional", "rope_theta", "dropout")
TRAINING_KEYS = (
    "learning_rate", "epochs", "scheduler", "weight_decay", "warmup_steps", "min_lr_ratio", "grad_clip",
    "effective_batch_size",
)  # fmt: skip
DATA_KEYS = ("input_columns", "column_types", "embedding_dims", "embedding_dim")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


# --------------------------------------------------------------------------------------
# one searched parameter: a list of values, a distribution, or one fixed value
# --------------------------------------------------------------------------------------
class Distribution(Strict):
    """A numeric range for Bayesian search (Optuna's Float/IntDistribution).

    `int` is inferred when low, high (and step) are integers, or forced by `type: int`.
    Fields are validated in the order written here, so each check sees the ones above it.
    """

    type: Optional[Literal["float", "int", "uniform", "log_uniform", "loguniform", "int_uniform"]] = None
    log: bool = Field(default=False, validate_default=True)
    step: Optional[float] = None
    high: float
    low: float

    @field_validator("log", mode="before")
    @classmethod
    def _log_from_type(cls, value: Any, info: ValidationInfo) -> Any:
        return True if info.data.get("type") in ("log_uniform", "loguniform") else value

    @field_validator("step")
    @classmethod
    def _step(cls, value: Optional[float], info: ValidationInfo) -> Optional[float]:
        if value is not None and value <= 0:
            raise ValueError(f"step must be > 0, found {value}")
        if value is not None and info.data.get("log"):
            raise ValueError("step cannot be combined with log: true")
        return value

    @field_validator("low")
    @classmethod
    def _low(cls, value: float, info: ValidationInfo) -> float:
        high = info.data.get("high")
        if high is not None and value > high:
            raise ValueError(f"low {value:g} is above high {high:g}")
        if info.data.get("log") and value <= 0:
            raise ValueError(f"log: true needs low > 0, found {value:g}")
        return value

    @property
    def is_int(self) -> bool:
        if self.type in ("int", "int_uniform"):
            return True
        if self.type is not None:
            return False
        return all(float(v).is_integer() for v in (self.low, self.high, self.step if self.step else 1))

    def grid_values(self, name: str) -> list:
        """The discrete values of this range (grid / ablation need them)."""
        if self.is_int and self.log:
            raise ValueError(f"{name}: a log range has no grid; give a list of values")
        if not self.is_int and self.step is None:
            raise ValueError(f"{name}: a float range without `step` has no grid; give a list or a step")
        step = self.step or 1
        n = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        values = [self.low + i * step for i in range(n)]
        return [int(round(v)) for v in values] if self.is_int else [round(v, 12) for v in values]


def _parse_param(value: Any) -> Any:
    """Raw YAML -> a list of values, a Distribution, or a scalar (errors keep their dotted path)."""
    if isinstance(value, dict):
        if "choices" in value:
            extra = set(value) - {"choices", "type"}
            if extra or value.get("type", "categorical") != "categorical":
                raise ValueError(f"a categorical takes only `choices`, found {sorted(value)}")
            value = value["choices"]
        else:
            if value.get("type") == "categorical":
                raise ValueError("type: categorical needs `choices`")
            return Distribution.model_validate(value)
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            raise ValueError("empty list; give at least one value")
        return list(value)
    return value


Param = Annotated[Any, BeforeValidator(_parse_param)]


def _alias(*names: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(*names))


# --------------------------------------------------------------------------------------
# the search space
# --------------------------------------------------------------------------------------
class SearchSpace(Strict):
    """Every searchable parameter; an unknown name is an error (extra="forbid")."""

    # architecture shape (the budget's stored grid when none is given)
    d_model: Param = _alias("d_model", "dim_model")
    n_head: Param = None
    n_layers: Param = _alias("n_layers", "num_layers")
    d_ff: Param = _alias("d_ff", "dim_feedforward")
    n_kv_heads: Param = None
    # model options
    activation: Param = _alias("activation", "activation_fn")
    attention: Param = _alias("attention", "attention_type")
    norm: Param = _alias("norm", "normalization")
    prenorm: Param = _alias("prenorm", "norm_first")
    positional: Param = _alias("positional", "positional_encoding")
    rope_theta: Param = None
    dropout: Param = None
    # training (TrainingConfig names; `epochs` sets training.max_epochs)
    learning_rate: Param = None
    epochs: Param = None
    scheduler: Param = None
    weight_decay: Param = None
    warmup_steps: Param = None
    min_lr_ratio: Param = None
    grad_clip: Param = None
    effective_batch_size: Param = None
    # data: feature subsets and embedding sizes
    input_columns: Param = None  # list of column lists
    column_types: Param = None  # list of {column: categorical|real}, linked to input_columns
    embedding_dims: Param = _alias("embedding_dims", "feature_embedding_dims")  # list of {column: dim}, linked to d_model
    embedding_dim: Optional[dict[str, Param]] = None  # {column: values or distribution}, independent per column

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            raise ValueError("the search space is empty; name at least one parameter, or leave `space` out to search the architectures only")
        return data

    @field_validator("input_columns")
    @classmethod
    def _input_columns(cls, value: Any) -> Any:
        if value is None:
            return value
        sets = value if isinstance(value, list) and all(isinstance(v, list) for v in value) else None
        if sets is None:
            raise ValueError("input_columns takes a list of column lists, e.g. [[a], [a, b]]")
        if any(not s for s in sets):
            raise ValueError("an input column set is empty")
        return value

    @field_validator("n_kv_heads")
    @classmethod
    def _kv_heads(cls, value: Any, info: ValidationInfo) -> Any:
        heads = _numbers(info.data.get("n_head"))
        for kv in _numbers(value):
            if kv is not None and kv <= 0:
                raise ValueError(f"n_kv_heads must be > 0 (or null for full attention), found {kv}")
            if kv is not None and heads and kv > max(heads):
                raise ValueError(f"n_kv_heads {kv} is above every n_head {sorted(heads)}")
        return value

    @field_validator("n_head", "embedding_dims", "epochs", "scheduler", "column_types")
    @classmethod
    def _linked_lengths(cls, value: Any, info: ValidationInfo) -> Any:
        anchor = next(a for a, members in LINKED_GROUPS.items() if info.field_name in members)
        check_linked(anchor, info.data.get(anchor), info.field_name, value)
        return value

    def given(self) -> dict[str, Any]:
        """The parameters that were set (name -> list, Distribution, scalar or column dict)."""
        return {k: v for k, v in self if v is not None}


def _numbers(value: Any) -> list:
    if isinstance(value, list):
        return [v for v in value if v is None or isinstance(v, (int, float))]
    if isinstance(value, Distribution):
        return [value.low, value.high]
    return [value] if isinstance(value, (int, float)) else []


def check_linked(anchor: str, anchor_value: Any, member: str, member_value: Any) -> None:
    """Sequifier's rule: a list anchor pairs index i with index i of each linked list."""
    if member_value is None or not isinstance(anchor_value, list):
        return
    group = f"linked group {anchor} ({', '.join((anchor, *LINKED_GROUPS[anchor]))})"
    if isinstance(member_value, Distribution):
        raise ValueError(f"{group}: {member} is a range but {anchor} is a list; give {member} as a list of {len(anchor_value)} values")
    if isinstance(member_value, list) and len(member_value) != len(anchor_value):
        raise ValueError(
            f"{group}: {anchor} has {len(anchor_value)} values but {member} has {len(member_value)}; "
            "linked lists are paired by index and must have the same length"
        )


# --------------------------------------------------------------------------------------
# objectives, pruner, the whole section
# --------------------------------------------------------------------------------------
class Objective(Strict):
    name: str
    direction: Optional[Direction] = None  # None: the objective's natural direction

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in OBJECTIVES and not TOP_K_OBJECTIVE.match(value):
            raise ValueError(f"unknown objective {value!r}; allowed: {', '.join(OBJECTIVES)}, val_top<k>_accuracy")
        return value

    @model_validator(mode="after")
    def _direction(self) -> "Objective":
        if self.direction is None:
            natural = OBJECTIVES.get(self.name, "maximize")  # top-k accuracy: maximize
            object.__setattr__(self, "direction", natural)
        return self


def _parse_objective(value: Any) -> Any:
    """`val_loss`, `{val_loss: minimize}` or `{name: val_loss, direction: minimize}`."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict) and len(value) == 1 and "name" not in value:
        ((name, direction),) = value.items()
        return {"name": name, "direction": direction}
    return value


class Pruner(Strict):
    name: PrunerName = "none"
    n_startup_trials: int = Field(default=5, ge=0)  # median: finished trials before pruning starts
    n_warmup_steps: int = Field(default=0, ge=0)  # median: steps of a trial before it can be pruned
    min_resource: int = Field(default=1, ge=1)  # hyperband (in reported steps)
    reduction_factor: int = Field(default=3, ge=2)  # hyperband


def _parse_pruner(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class SearchSpec(Strict):
    """The `search:` section of an experiment (imported by `seqdb.experiment.schema`)."""

    strategy: Strategy = "grid"
    n_trials: Optional[int] = Field(default=None, ge=1)  # tpe / nsga2 (default 20); not for grid/ablation
    n_samples: Optional[int] = Field(default=None, ge=1, validate_default=True)  # sample: required
    seed: Optional[int] = Field(default=None, ge=0, le=2**32 - 1)  # None: the experiment's seed
    n_startup_trials: Optional[int] = Field(default=None, ge=0)  # tpe: random trials first (Optuna's default 10)
    objectives: list[Annotated[Objective, BeforeValidator(_parse_objective)]] = Field(
        default_factory=lambda: [Objective(name="val_loss")], min_length=1
    )
    pruner: Annotated[Pruner, BeforeValidator(_parse_pruner)] = Field(default_factory=Pruner)
    equal_effort: bool = True  # same trials and epochs for every budget of the experiment
    max_epochs: Optional[int] = Field(default=None, ge=1)  # None: training.max_epochs
    max_epochs_per_budget: dict[str, int] = Field(default_factory=dict)  # needs equal_effort: false
    n_trials_per_budget: dict[str, int] = Field(default_factory=dict)  # needs equal_effort: false
    baseline: Optional[dict[str, Any]] = None  # ablation: the reference values
    space: Optional[SearchSpace] = None  # None: search the budget's architectures only

    @field_validator("n_trials")
    @classmethod
    def _n_trials(cls, value: Optional[int], info: ValidationInfo) -> Optional[int]:
        strategy = info.data.get("strategy")
        if value is not None and strategy in ("grid", "ablation"):
            raise ValueError(f"n_trials does not apply to strategy {strategy} (it runs every configuration); use strategy: sample with n_samples for a subset")
        return value

    @field_validator("n_samples")
    @classmethod
    def _n_samples(cls, value: Optional[int], info: ValidationInfo) -> Optional[int]:
        strategy = info.data.get("strategy")
        if strategy == "sample" and value is None:
            raise ValueError("strategy sample needs n_samples (the number of configurations to draw)")
        if strategy != "sample" and value is not None:
            raise ValueError(f"n_samples applies to strategy sample only, not {strategy}")
        return value

    @field_validator("objectives")
    @classmethod
    def _unique_objectives(cls, value: list[Objective]) -> list[Objective]:
        names = [o.name for o in value]
        if len(set(names)) != len(names):
            raise ValueError(f"objectives repeat a name: {names}")
        return value

    @field_validator("max_epochs_per_budget", "n_trials_per_budget")
    @classmethod
    def _per_budget(cls, value: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        if value and info.data.get("equal_effort", True):
            raise ValueError(f"{info.field_name} gives budgets different effort; set equal_effort: false to allow it")
        for label, n in value.items():
            if not isinstance(n, int) or n < 1:
                raise ValueError(f"{label}: expected a positive integer, found {n!r}")
        return value

    @model_validator(mode="after")
    def _ablation(self) -> "SearchSpec":
        if self.strategy == "ablation" and self.space is None:
            raise ValueError("strategy ablation needs a space: the factors to vary one at a time around the baseline")
        if self.baseline is not None and self.strategy != "ablation":
            raise ValueError(f"baseline applies to strategy ablation only, not {self.strategy}")
        return self

    # ---- derived settings ------------------------------------------------------------
    @property
    def is_sampled(self) -> bool:
        """Configurations are asked one at a time from Optuna (tpe / nsga2)."""
        return self.strategy in ("tpe", "nsga2")

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    def trials_for(self, budget_label: str) -> Optional[int]:
        """Trials per study for tpe/nsga2/sample (grid and ablation: the expansion's size)."""
        if budget_label in self.n_trials_per_budget:
            return self.n_trials_per_budget[budget_label]
        if self.strategy == "sample":
            return self.n_samples
        if self.is_sampled:
            return self.n_trials or 20
        return None

    def epochs_for(self, budget_label: str, default: int) -> int:
        """Epoch limit of every trial of this budget (equal across budgets by default)."""
        return self.max_epochs_per_budget.get(budget_label, self.max_epochs or default)


__all__ = [
    "SearchSpec", "SearchSpace", "Distribution", "Objective", "Pruner", "OBJECTIVES", "LINKED_GROUPS",
    "SHAPE_KEYS", "MODEL_OPTION_KEYS", "TRAINING_KEYS", "DATA_KEYS", "check_linked",
]  # fmt: skip
