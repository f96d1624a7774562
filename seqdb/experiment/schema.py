"""The experiment YAML as a validated pydantic model (`ExperimentConfig`).

An experiment says *what* is tested: the data and its column types, the target and task, the
context length, the horizons, the chronological split, the parameter budgets, the search
space and the fixed training/model options. Every section forbids unknown keys. Cross-field
rules live in `ExperimentConfig._cross_checks` and raise messages that start with the full
dotted field path, so the loader can turn them into `<file>: <path>: <found>; allowed: ...`.

See docs/experiment.md for every key with its default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from seqdb.config.trial import Activation, Attention, ModelConfig, Norm, Positional, TaskKind, TrainingConfig
from seqdb.errors import ConfigError
from seqdb.experiment.budgets import ACCEPTED_FORMS, format_budget, parse_budget
from seqdb.experiment.ladder import LADDER_KEYS, parse_flops
from seqdb.config.search import SearchSpec

ColumnKind = Literal["real", "categorical"]
NanPolicy = Literal["error", "ffill", "zero"]
SplitMode = Literal["within", "sequences"]
Aggregate = Literal["sum", "last"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


MAX_LENGTH = 1_000_000  # context length, horizons, strides


def _ordered_columns(value: Any) -> Any:
    """`columns:` as written (a mapping), or as stored (a list of [name, kind] pairs: JSONB
    reorders object keys, a list keeps the order, and the order is the model's input order)."""
    if not isinstance(value, list):
        return value
    pairs = [tuple(p) if isinstance(p, (list, tuple)) and len(p) == 2 else next(iter(p.items())) if isinstance(p, dict) and len(p) == 1 else None
             for p in value]
    if any(p is None for p in pairs):
        raise ValueError("found a list that is not [name, kind] pairs; allowed: a mapping of column name to real or categorical")
    names = [str(p[0]) for p in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"found the same column twice in {names[:10]}; allowed: distinct column names")
    return {str(k): v for k, v in pairs}


OrderedColumns = Annotated[dict[str, ColumnKind], BeforeValidator(_ordered_columns)]


class DataSection(Section):
    """Where the long-format data is and what its columns are."""

    path: str = Field(min_length=1)  # relative paths resolve against the project root
    format: Optional[Literal["csv", "parquet"]] = None  # None: from the file suffix
    sequence_column: str = "sequenceId"
    position_column: str = "itemPosition"
    columns: OrderedColumns = Field(min_length=1, max_length=10_000)  # feature columns (model inputs), in input order
    # precomputed categorical maps: {column: {value: id>=2}} or {column: "maps/col.json"}
    id_maps: Optional[dict[str, Union[dict[str, int], str]]] = None
    nan_policy: NanPolicy = "error"  # NaN/inf/null in a real column: error | ffill | zero
    rare_threshold: int = Field(default=1, ge=1, le=2**31 - 1)  # values seen fewer times in train -> 1 (other)
    stride: int = Field(default=1, ge=1, le=MAX_LENGTH)  # step between training windows
    eval_stride: Optional[int] = Field(default=None, ge=1, le=MAX_LENGTH)  # validation/test; None: context_length


class TargetSection(Section):
    """What the model predicts at each horizon h (see docs/data.md for exact definitions)."""

    column: str
    task: TaskKind
    name: Optional[str] = None  # target name in the prepared data; None: the column name
    threshold: Optional[float] = None  # task threshold: class 1 when the h-step return > threshold
    aggregate: Optional[Aggregate] = None  # regression: sum (h-step sum) or last (value at t+h)

    @property
    def target_name(self) -> str:
        return self.name or self.column

    @property
    def aggregation(self) -> Aggregate:
        """direction/threshold always sum over t+1..t+h; regression defaults to the value at t+h."""
        if self.task in ("direction", "threshold"):
            return "sum"
        return self.aggregate or "last"


class SplitSection(Section):
    """Chronological split. `within`: each sequence is cut by position into train | gap |
    validation | gap | test. `sequences`: whole sequences, in sequence-id order. `by`: a time
    column shared by all sequences (the position column or a real column): `within` then cuts
    every sequence at the same two times (calendar-true; seqdb/data/split.py)."""

    validation: float = Field(default=0.15, gt=0, lt=1)
    test: float = Field(default=0.15, gt=0, lt=1)
    mode: SplitMode = "within"
    gap: Optional[int] = Field(default=None, ge=0, le=MAX_LENGTH)  # purge rows between parts; None: max horizon
    by: Optional[str] = Field(default=None, min_length=1, max_length=200)  # time column: cut all sequences at shared times


class ModelDefaults(Section):
    """Fixed architecture options (names as in seqdb.config.trial.ModelConfig)."""

    activation: Activation = "swiglu"
    attention: Attention = "mha"
    n_kv_heads: Optional[int] = Field(default=None, ge=1, le=65_536)
    positional: Positional = "learned"
    rope_theta: float = Field(default=10000.0, gt=0, le=1e12)
    norm: Norm = "rmsnorm"
    prenorm: bool = True
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)


PositiveInts = Optional[list[Annotated[int, Field(gt=0, le=1_048_576)]]]


class ArchitectureGrid(Section):
    """Candidate values the budget grid may use instead of its defaults (None: default)."""

    d_model: PositiveInts = None
    n_layers: PositiveInts = None
    n_head: PositiveInts = None
    n_kv_heads: PositiveInts = None
    d_ff: PositiveInts = None


def _budget_item(value: Any) -> str:
    """Keep a budget as written (an int becomes its short form); reject what does not parse."""
    try:
        n = parse_budget(value)
    except ConfigError:
        raise ValueError(f"found {value!r}; allowed: {ACCEPTED_FORMS}") from None
    return format_budget(n) if isinstance(value, int) else str(value).strip()


BudgetText = Annotated[str, BeforeValidator(_budget_item)]
FlopsValue = Annotated[float, BeforeValidator(parse_flops)]


def _as_list(value: Any) -> Any:
    """`target:` may be one mapping or a list of them."""
    return [value] if isinstance(value, dict) else value


class ExperimentConfig(Section):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    data: DataSection
    target: Annotated[list[TargetSection], BeforeValidator(_as_list)] = Field(min_length=1)  # one or a list
    context_length: int = Field(gt=0, le=MAX_LENGTH)
    horizons: list[Annotated[int, Field(gt=0, le=MAX_LENGTH)]] = Field(min_length=1, max_length=1_000)
    split: SplitSection = SplitSection()
    budgets: list[BudgetText] = Field(min_length=1, max_length=1_000)
    # the (size, tokens) ladder, at most one of these (seqdb/experiment/ladder.py, docs/experiment.md)
    tokens: Optional[list[BudgetText]] = Field(default=None, min_length=1)  # training tokens per trial: [2M, 8M]
    tokens_per_param: Optional[list[Annotated[float, Field(gt=0)]]] = Field(default=None, min_length=1)  # D = r x N
    compute: Optional[list[FlopsValue]] = Field(default=None, min_length=1)  # FLOP budgets: D = C / (6 N) per budget
    tolerance: float = Field(default=0.25, gt=0, lt=1)
    max_attempts: int = Field(default=3, ge=1, le=100)  # lease expiries (lost workers) before a trial fails for good
    search: SearchSpec = Field(default_factory=SearchSpec)  # owned by seqdb.config.search
    training: TrainingConfig = TrainingConfig()
    model: ModelDefaults = ModelDefaults()
    architecture_grid: ArchitectureGrid = ArchitectureGrid()
    description: str = ""

    # ---- derived views -------------------------------------------------------------
    @property
    def targets(self) -> list[TargetSection]:
        return list(self.target)

    @property
    def budget_params(self) -> list[int]:
        """The budgets as integers, in the order written."""
        return [parse_budget(b) for b in self.budgets]

    @property
    def budget_pairs(self) -> list[tuple[str, int]]:
        """(label as written, parameter count) per budget."""
        return [(b, parse_budget(b)) for b in self.budgets]

    @property
    def gap(self) -> int:
        """Purge rows between split parts (default: the largest horizon)."""
        if self.split.gap is not None:
            return self.split.gap
        return max(self.horizons) if self.split.mode == "within" else 0

    @property
    def eval_stride(self) -> int:
        return self.data.eval_stride or self.context_length

    def data_file(self, root: Path | str) -> Path:
        """The data path, resolved against the project root when relative."""
        path = Path(self.data.path).expanduser()
        return path if path.is_absolute() else Path(root) / path

    def data_format(self) -> str:
        if self.data.format:
            return self.data.format
        suffix = Path(self.data.path).suffix.lower()
        return "parquet" if suffix in (".parquet", ".pq") else "csv"

    # ---- cross-field rules ---------------------------------------------------------
    @model_validator(mode="after")
    def _cross_checks(self) -> "ExperimentConfig":
        d = self.data
        cols = sorted(d.columns)
        for key in ("sequence_column", "position_column"):
            if getattr(d, key) in d.columns:
                _fail(f"data.columns.{getattr(d, key)}", f"{key} {getattr(d, key)!r} listed as a feature", "feature columns other than the sequence and position columns")
        if d.sequence_column == d.position_column:
            _fail("data.position_column", f"same as sequence_column {d.sequence_column!r}", "two different columns")
        if Path(d.path).suffix.lower() not in (".csv", ".parquet", ".pq") and d.format is None:
            _fail("data.format", f"not set and {d.path!r} has no .csv/.parquet suffix", "csv, parquet")
        for col in d.id_maps or {}:
            if d.columns.get(col) != "categorical":
                _fail(f"data.id_maps.{col}", "not a categorical column", f"categorical columns: {_names(c for c in cols if d.columns[c] == 'categorical')}")
        self._check_targets(cols)
        if len(set(self.horizons)) != len(self.horizons):
            _fail("horizons", f"duplicates in {self.horizons}", "distinct positive integers")
        if self.split.mode == "sequences" and self.split.gap:
            _fail("split.gap", f"{self.split.gap} with mode sequences", "a gap only with mode within (whole sequences need none)")
        if self.split.validation + self.split.test >= 1:
            _fail("split", f"validation {self.split.validation} + test {self.split.test} >= 1", "fractions that leave a training part (sum < 1)")
        if self.split.by is not None:
            self._check_split_by()
        counts = [parse_budget(b) for b in self.budgets]
        if len(set(counts)) != len(counts):
            _fail("budgets", f"the same parameter count twice in {list(self.budgets)}", "distinct budgets")
        self._check_search(cols)
        self._check_ladder()
        return self

    def _check_split_by(self) -> None:
        by, d = self.split.by, self.data
        times = [d.position_column, *(c for c in sorted(d.columns) if d.columns[c] == "real")]
        if self.split.mode != "within":
            _fail("split.by", f"{by!r} with mode {self.split.mode}", "split.by only with mode within (whole sequences have no cut time)")
        if by not in times:
            _fail("split.by", f"{by!r} is not the position column or a real column", f"one of {_names(times)}")

    def _check_ladder(self) -> None:
        given = [k for k in LADDER_KEYS if getattr(self, k) is not None]
        if len(given) > 1:
            _fail(given[1], f"given together with {given[0]}", "one of tokens, tokens_per_param, compute")
        if given and self.search.is_sampled:
            _fail(given[0], f"a ladder with strategy {self.search.strategy}", "strategy grid, sample or ablation (every rung gets the same configurations)")

    def _check_search(self, cols: list[str]) -> None:
        """Names the search section refers to must exist in this experiment."""
        for key in ("max_epochs_per_budget", "n_trials_per_budget"):
            for label in getattr(self.search, key):
                if label not in self.budgets:
                    _fail(f"search.{key}.{label}", "not one of the budgets", _names(self.budgets))
        space = self.search.space
        if space is None:
            return
        for i, subset in enumerate(space.input_columns if isinstance(space.input_columns, list) else []):
            for col in subset:
                if col not in self.data.columns:
                    _fail(f"search.space.input_columns.{i}", f"{col!r} is not in data.columns", _names(cols))
        for name, value in space.given().items():
            _check_space_range(name, value)
        cats = [c for c in cols if self.data.columns[c] == "categorical"]
        for col in space.embedding_dim or {}:
            if col not in cats:
                _fail(f"search.space.embedding_dim.{col}", "not a categorical column", _names(cats))

    def _check_targets(self, cols: list[str]) -> None:
        names = [t.target_name for t in self.targets]
        if len(set(names)) != len(names):
            _fail("target", f"duplicate target names {names}", "distinct `name`s per target")
        for i, t in enumerate(self.targets):
            path = "target" if len(self.targets) == 1 else f"target.{i}"
            kind = self.data.columns.get(t.column)
            if kind is None:
                _fail(f"{path}.column", f"{t.column!r} is not in data.columns", _names(cols))
            need = "categorical" if t.task == "next_category" else "real"
            if kind != need:
                _fail(f"{path}.task", f"{t.task} on {kind} column {t.column!r}", f"a {need} column for {t.task} (direction/threshold/regression: real; next_category: categorical)")
            if t.task == "threshold" and t.threshold is None:
                _fail(f"{path}.threshold", "missing for task threshold", "a number (class 1 when the h-step return exceeds it)")
            if t.task != "threshold" and t.threshold is not None:
                _fail(f"{path}.threshold", f"set for task {t.task}", "threshold only with task: threshold")
            if t.aggregate is not None and t.task != "regression":
                _fail(f"{path}.aggregate", f"set for task {t.task}", "aggregate only with task: regression")


# searched name -> (the model, its field) whose range every searched value must keep
SPACE_RANGES = {
    **{name: (ModelConfig, name) for name in ("d_model", "n_head", "n_layers", "d_ff", "n_kv_heads", "rope_theta", "dropout")},
    **{name: (TrainingConfig, name) for name in ("learning_rate", "weight_decay", "warmup_steps", "min_lr_ratio", "grad_clip", "effective_batch_size")},
    "epochs": (TrainingConfig, "max_epochs"),
}


def _check_space_range(name: str, value: Any) -> None:
    """Each value of search.space.<name> (list items, a range's low and high, a scalar) is
    checked against the trial config's own field: `learning_rate: [-0.1]` fails here, at
    `experiment add`, not in a trial."""
    from pydantic import TypeAdapter, ValidationError

    if name not in SPACE_RANGES:
        return
    model, field = SPACE_RANGES[name]
    info = model.model_fields[field]
    adapter = TypeAdapter(Annotated[info.annotation, Field(**{k: v for k, v in _bounds(info).items()})])
    values = [value.low, value.high] if hasattr(value, "low") else (value if isinstance(value, list) else [value])
    for v in values:
        try:
            adapter.validate_python(v)
        except ValidationError as exc:
            _fail(f"search.space.{name}", f"{v!r}", exc.errors()[0]["msg"].removeprefix("Input should be ").lower())


def _bounds(info: Any) -> dict:
    """gt / ge / lt / le of a pydantic field (from its metadata)."""
    out = {}
    for m in info.metadata:
        for key in ("gt", "ge", "lt", "le"):
            if getattr(m, key, None) is not None:
                out[key] = getattr(m, key)
    return out


def _names(items) -> str:  # noqa: ANN001
    items = list(items)
    return ", ".join(items) if items else "(none)"


class CrossFieldError(ValueError):
    """A cross-field rule failed; the message is `<dotted.path>: <found>; allowed: <allowed>`."""


def _fail(path: str, found: str, allowed: str) -> None:
    raise CrossFieldError(f"{path}: {found}; allowed: {allowed}")
