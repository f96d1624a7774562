"""Open a prepared dataset folder: memory-mapped windows for training, the DataSpec for the
model, and the stored maps/statistics to transform new raw data for inference.

    data = open_prepared(dataset.path)
    train = data.windows("train", horizon=3)        # WindowSet over memory-mapped arrays
    spec = data.data_spec(3, input_columns=["log_return", "weekday"])
    real, cat, seq_ids, positions = data.transform_raw(new_long_frame)

The folder is self-describing (meta.json + .npy arrays); nothing is re-parsed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from seqdb.config.trial import DataSpec, InputColumn, TargetSpec
from seqdb.data.windows import WindowSet
from seqdb.errors import DataError

if TYPE_CHECKING:  # polars (~0.8 s to import) only for encoding raw rows: a worker's trials never load it
    import polars as pl

META_FILE = "meta.json"  # the prepared folder's description (written by seqdb.data.prepare)

SPLITS = ("train", "validation", "test")


@dataclass
class RawTransformed:
    """New long-format data encoded like the training data (rows sorted by sequence, position)."""

    real: np.ndarray  # float32 [T, n_real], normalised with the training statistics
    cat: np.ndarray  # int64 [T, n_cat], ids from the stored maps (unseen -> 1, missing -> 0)
    sequence_ids: list  # [S] original sequence ids, in row order
    sequence_index: np.ndarray  # int64 [T] index into sequence_ids
    positions: np.ndarray  # int64 [T]

    def __iter__(self):  # allows `real, cat, seq_ids, positions = data.transform_raw(df)`
        return iter((self.real, self.cat, self.sequence_ids, self.positions))


class PreparedData:
    """A prepared dataset folder (see seqdb.data.prepare for its layout)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._arrays: dict[str, np.ndarray] = {}
        try:
            self.meta: dict = json.loads((self.path / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.path}: not a prepared dataset ({exc.__class__.__name__}: {str(exc).splitlines()[0]}); allowed: a folder written by `seqdb data prepare`") from None

    # ---- what is registered ----------------------------------------------------------------
    @property
    def content_hash(self) -> str:
        return self.meta["content_hash"]

    @property
    def id_maps(self) -> dict[str, dict[str, int]]:
        return self.meta["id_maps"]

    @property
    def statistics(self) -> dict:
        return self.meta["statistics"]

    @property
    def context_length(self) -> int:
        return int(self.meta["context_length"])

    @property
    def horizons(self) -> list[int]:
        return list(self.meta["horizons"])

    @property
    def real_columns(self) -> list[str]:
        return list(self.meta["real_columns"])

    @property
    def cat_columns(self) -> list[str]:
        return list(self.meta["cat_columns"])

    @property
    def targets(self) -> list[dict]:
        return list(self.meta["targets"])

    # ---- arrays ------------------------------------------------------------------------------
    def array(self, name: str) -> np.ndarray:
        """One stored array, memory-mapped read-only."""
        return self._arrays[name] if name in self._arrays else self._load(name)

    def _load(self, name: str) -> np.ndarray:
        file = self.path / f"{name}.npy"
        try:
            arr = np.load(file, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise DataError(f"{file}: cannot open prepared array ({str(exc).splitlines()[0]}); allowed: run `seqdb data prepare` again") from None
        self._arrays[name] = arr
        return arr

    def windows(self, split: str, horizon: int) -> WindowSet:
        """The windows of one split at one horizon (arrays shared, memory-mapped)."""
        if split not in SPLITS:
            raise DataError(f"split {split!r}; allowed: {', '.join(SPLITS)}")
        self._check_horizon(horizon)
        targets = {t["name"]: self.array(f"target{t['file_index']}_h{horizon}") for t in self.targets}
        return WindowSet(
            real=self.array("real"),
            cat=self.array("cat"),
            targets=targets,
            starts=self.array(f"starts_{split}"),
            context_length=self.context_length,
            real_columns=self.real_columns,
            cat_columns=self.cat_columns,
        )

    def _check_horizon(self, horizon: int) -> None:
        if int(horizon) not in self.horizons:
            raise DataError(f"{self.path}: horizon {horizon} was not prepared; allowed: {', '.join(map(str, self.horizons))}")

    # ---- the model's view ----------------------------------------------------------------------
    def data_spec(self, horizon: int, input_columns: list[str] | None = None, embedding_dims: dict[str, int] | None = None) -> DataSpec:
        """The DataSpec of a trial: inputs (all columns, or `input_columns` in data order) and
        targets (direction/threshold: 2 classes; regression: real; next_category: the vocab)."""
        self._check_horizon(horizon)
        kinds = {c: "real" for c in self.real_columns} | {c: "categorical" for c in self.cat_columns}
        chosen = list(kinds) if input_columns is None else list(input_columns)
        unknown = [c for c in chosen if c not in kinds] + [c for c in (embedding_dims or {}) if kinds.get(c) != "categorical"]
        if unknown:
            raise DataError(f"input column {unknown[0]!r} is not a prepared {'categorical ' if unknown[0] in (embedding_dims or {}) else ''}column; allowed: {', '.join(kinds)}")
        inputs = [self._input(c, kinds[c], (embedding_dims or {}).get(c)) for c in kinds if c in chosen]
        targets = [TargetSpec(name=t["name"], kind=t["kind"], n_classes=t["n_classes"]) for t in self.targets]
        return DataSpec(dataset_hash=self.content_hash, context_length=self.context_length, horizon=int(horizon), inputs=inputs, targets=targets)

    def _input(self, name: str, kind: str, dim: int | None) -> InputColumn:
        if kind == "real":
            return InputColumn(name=name, kind="real")
        return InputColumn(name=name, kind="categorical", vocab_size=int(self.meta["vocab_sizes"][name]), embedding_dim=dim)

    # ---- inference -------------------------------------------------------------------------------
    def transform_raw(self, frame: "pl.DataFrame") -> RawTransformed:
        """Encode new raw long-format rows exactly like the training data: sort by (sequence,
        position), apply the nan policy, the training normalisation and the stored id maps."""
        import polars as pl

        from seqdb.data.read import LINE, LongSpec
        from seqdb.data.transform import apply_nan_policy, encode_categoricals, normalise

        seq, pos = self.meta["sequence_column"], self.meta["position_column"]
        spec = LongSpec(Path("<raw data>"), "parquet", seq, pos, {c: "real" for c in self.real_columns} | {c: "categorical" for c in self.cat_columns})
        missing = [c for c in (seq, pos, *spec.columns) if c not in frame.columns]
        if missing:
            raise DataError(f"raw data: column {missing[0]!r} missing; allowed: a frame with {', '.join((seq, pos, *spec.columns))}")
        frame = frame.select(
            pl.col(seq), pl.col(pos).cast(pl.Int64), *[pl.col(c).cast(pl.Float64) for c in self.real_columns], *[pl.col(c).cast(pl.Utf8) for c in self.cat_columns]
        ).with_row_index(LINE, offset=1)
        frame = apply_nan_policy(frame.sort([seq, pos], maintain_order=True), spec, self.meta["nan_policy"])
        codes = frame.select(pl.col(seq).rle_id()).to_series().to_numpy().astype(np.int64)
        first = np.concatenate([[True], codes[1:] != codes[:-1]]) if codes.size else np.zeros(0, bool)
        return RawTransformed(
            real=normalise(frame, self.real_columns, self.statistics["real"]),
            cat=encode_categoricals(frame, self.cat_columns, self.id_maps),
            sequence_ids=frame[seq].filter(pl.Series(first)).to_list(),
            sequence_index=codes,
            positions=frame[pos].to_numpy().astype(np.int64),
        )

    def denormalise_target(self, name: str, horizon: int, values: np.ndarray) -> np.ndarray:
        """Regression predictions back in the target column's units."""
        st = self.statistics["targets"][name][str(int(horizon))]
        return np.asarray(values, dtype=np.float64) * st["std"] + st["mean"]

    def decode_category(self, column: str) -> dict[int, str]:
        """id -> value for a categorical column (0 and 1 as `<unknown>` / `<other>`)."""
        return {0: "<unknown>", 1: "<other>"} | {i: v for v, i in self.id_maps[column].items()}


def resolve_dataset_path(path: Path | str, artifacts_root: Path | str | None, project_root: Path | str | None = None) -> Path:
    """A registered `dataset.path`: absolute as it is; relative, under the artifacts root or
    else the project root where it exists there; otherwise the path as given."""
    p = Path(path)
    if p.is_absolute():
        return p
    for root in (artifacts_root, project_root):
        if root is not None and (Path(root) / p).exists():
            return Path(root) / p
    return p


def open_prepared(path: Path | str) -> PreparedData:
    """Open a prepared dataset folder (as registered in `dataset.path`)."""
    return PreparedData(path)
