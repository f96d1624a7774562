"""Categorical id maps, missing-value policy and normalisation — fitted on training rows only.

Id maps: 0 = unknown / padding / missing, 1 = other (a value not in the map, or seen fewer
than `rare_threshold` times in the training rows), 2+ = values in sorted order. Precomputed
maps (ids >= 2) are used as given for their columns.

Normalisation: each real column becomes (x - mean) / std with the mean and (population)
standard deviation of the training rows; a constant column gets std 1.

Missing values in real columns (null, NaN, +-inf), by `nan_policy`: `error` (default: a
one-line DataError naming column and line), `ffill` (the previous value of the same sequence;
a leading gap gets the training mean), `zero` (the training mean, i.e. 0 after normalising).
What a policy did is counted per column (`missing_report`) and stored with the dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from seqdb.data.read import LINE, LongSpec
from seqdb.errors import DataError

UNKNOWN, OTHER, FIRST_ID = 0, 1, 2


# ---- missing values ------------------------------------------------------------------------
def missing_expr(col: str) -> pl.Expr:
    return pl.col(col).is_null() | pl.col(col).is_nan() | pl.col(col).is_infinite()


def apply_nan_policy(frame: pl.DataFrame, spec: LongSpec, policy: str) -> pl.DataFrame:
    """Error on, or mark as null, every missing real value (filled after the statistics)."""
    if policy == "error":
        for col in spec.real_columns:
            bad = frame.filter(missing_expr(col))
            if bad.height:
                r = bad.row(0, named=True)
                raise DataError(
                    f"{spec.path}: {spec.where} {r[LINE]}: column {col!r} is {_show(r[col])} (sequence {r[spec.sequence_column]!r}, position {r[spec.position_column]}); "
                    "allowed: finite numbers, or set data.nan_policy to ffill or zero"
                )
        return frame
    return mark_missing(frame, spec.real_columns, spec.sequence_column, policy)


def mark_missing(frame: pl.DataFrame, columns: list[str], sequence_column: str, policy: str) -> pl.DataFrame:
    """Missing real values (null, NaN, +-inf) -> null; with `ffill`, the previous value of the
    same sequence (rows sorted by position). Nulls left become the mean in `normalise`."""
    if not columns:
        return frame
    frame = frame.with_columns([pl.when(missing_expr(c)).then(None).otherwise(pl.col(c)).alias(c) for c in columns])
    if policy == "ffill":
        frame = frame.with_columns([pl.col(c).forward_fill().over(sequence_column) for c in columns])
    return frame


def missing_report(raw: pl.DataFrame, marked: pl.DataFrame, spec: LongSpec, policy: str) -> dict[str, dict[str, int]]:
    """What the nan policy did, per column with anything missing (`raw`: as read; `marked`:
    after `apply_nan_policy`): real columns {missing, ffill, mean} — values filled from the
    previous row of the sequence, and those left to the training mean (a leading gap, or
    every one under `zero`); categorical columns {missing, unknown_id} — read as id 0."""
    report: dict[str, dict[str, int]] = {}
    for col in spec.real_columns:
        missing = int(raw.select(missing_expr(col).sum()).item())
        if missing:
            to_mean = int(marked[col].is_null().sum())
            report[col] = {"missing": missing, "ffill": missing - to_mean if policy == "ffill" else 0, "mean": to_mean}
    for col in spec.cat_columns:
        missing = int(raw[col].is_null().sum())
        if missing:
            report[col] = {"missing": missing, "unknown_id": missing}
    return report


def describe_missing(report: dict[str, dict[str, int]], policy: str) -> list[str]:
    """One line per column of a `missing_report`, for the user."""
    lines = []
    for col, r in report.items():
        if "unknown_id" in r:
            lines.append(f"{col}: {r['missing']:,} missing value(s) read as id 0 (unknown)")
            continue
        done = [f"{r['ffill']:,} filled forward within the sequence"] if r["ffill"] else []
        done += [f"{r['mean']:,} set to the training mean"] if r["mean"] else []
        lines.append(f"{col}: {r['missing']:,} missing value(s) (nan_policy {policy}): {', '.join(done)}")
    return lines


def _show(value: object) -> str:
    return "empty" if value is None else repr(value)


# ---- statistics ----------------------------------------------------------------------------
def real_statistics(frame: pl.DataFrame, columns: list[str], train_mask: np.ndarray) -> dict[str, dict[str, float]]:
    """{column: {mean, std, n}} over the training rows (missing values left out)."""
    mask = pl.Series(train_mask)
    stats = {}
    for col in columns:
        s = frame[col].filter(mask).drop_nulls()
        mean = float(s.mean()) if s.len() else 0.0
        std = float(s.std(ddof=0)) if s.len() else 0.0
        stats[col] = {"mean": mean, "std": std if std > 0 and np.isfinite(std) else 1.0, "n": int(s.len())}
    return stats


def normalise(frame: pl.DataFrame, columns: list[str], stats: dict) -> np.ndarray:
    """float32 [T, n_real]: (x - mean) / std; missing values (null after the policy) -> 0."""
    if not columns:
        return np.zeros((frame.height, 0), dtype=np.float32)
    exprs = [((pl.col(c) - stats[c]["mean"]) / stats[c]["std"]).fill_null(0.0).cast(pl.Float32).alias(c) for c in columns]
    return frame.select(exprs).to_numpy(order="c").astype(np.float32, copy=False)


# ---- categorical id maps -------------------------------------------------------------------
def build_id_maps(frame: pl.DataFrame, spec: LongSpec, train_mask: np.ndarray, rare_threshold: int, given: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """{column: {value: id}} from the training rows (or the precomputed map)."""
    maps = {}
    mask = pl.Series(train_mask)
    for col in spec.cat_columns:
        distinct = frame[col].drop_nulls().n_unique()
        if distinct < 2:
            raise DataError(f"{spec.path}: categorical column {col!r} has {distinct} distinct value(s); allowed: at least 2 values (or drop it from data.columns)")
        if col in given:
            maps[col] = given[col]
            continue
        counts = frame[col].filter(mask).drop_nulls().value_counts()
        kept = counts.filter(pl.col("count") >= rare_threshold)[col].sort().to_list()
        maps[col] = {value: FIRST_ID + i for i, value in enumerate(kept)}
    return maps


def encode_categoricals(frame: pl.DataFrame, columns: list[str], maps: dict[str, dict[str, int]]) -> np.ndarray:
    """int64 [T, n_cat]: mapped ids (missing -> 0, unseen -> 1); values compared as strings."""
    if not columns:
        return np.zeros((frame.height, 0), dtype=np.int64)
    exprs = []
    for c in columns:
        keys, vals = _map_series(maps[c])
        text = pl.col(c).cast(pl.Utf8, strict=False)
        mapped = text.replace_strict(keys, vals, default=OTHER, return_dtype=pl.Int64)
        exprs.append(pl.when(text.is_null()).then(UNKNOWN).otherwise(mapped).alias(c))
    return frame.select(exprs).to_numpy(order="c").astype(np.int64, copy=False)


def count_unseen(frame: pl.DataFrame, columns: list[str], maps: dict[str, dict[str, int]]) -> dict[str, int]:
    """{column: number of present values the id map does not know} (they were encoded as 1)."""
    counts = {}
    for c in columns:
        text = frame[c].cast(pl.Utf8, strict=False)
        known = text.is_in(_map_series(maps[c])[0].implode())
        counts[c] = int((text.is_not_null() & ~known).sum())
    return counts


def _map_series(mapping: dict[str, int]) -> tuple[pl.Series, pl.Series]:
    return pl.Series("k", list(mapping), dtype=pl.Utf8), pl.Series("v", list(mapping.values()), dtype=pl.Int64)


def vocab_size(mapping: dict[str, int]) -> int:
    return max([FIRST_ID - 1, *mapping.values()]) + 1


def load_given_maps(id_maps: object, root: Path, columns: list[str]) -> dict[str, dict[str, int]]:
    """Precomputed maps from the YAML: inline mappings, per-column JSON files, or a folder of
    `<column>.json` files. Ids must be integers >= 2 and distinct."""
    if not id_maps:
        return {}
    if isinstance(id_maps, str):
        folder = _resolve(id_maps, root)
        if not folder.is_dir():
            raise DataError(f"{folder}: id_maps folder not found (data.id_maps); allowed: a folder of <column>.json files")
        id_maps = {c: str(folder / f"{c}.json") for c in columns if (folder / f"{c}.json").is_file()}
    maps = {}
    for col, value in id_maps.items():
        where = f"data.id_maps.{col}"
        if isinstance(value, str):
            path = _resolve(value, root)
            try:
                value = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DataError(f"{path}: cannot read the id map ({where}): {str(exc).splitlines()[0]}; allowed: a JSON object value -> id") from None
        maps[col] = _check_map(value, where)
    return maps


def _check_map(mapping: object, where: str) -> dict[str, int]:
    if not isinstance(mapping, dict) or not mapping:
        raise DataError(f"{where}: found {type(mapping).__name__}; allowed: a non-empty mapping value -> id (ids >= 2)")
    out = {}
    for key, value in mapping.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < FIRST_ID:
            raise DataError(f"{where}.{key}: id {value!r}; allowed: integers >= 2 (0 = unknown and 1 = other are reserved)")
        out[str(key)] = value
    if len(set(out.values())) != len(out):
        raise DataError(f"{where}: two values share an id; allowed: distinct ids >= 2")
    return out


def _resolve(path: str, root: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else root / p
