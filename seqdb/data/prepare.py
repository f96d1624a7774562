"""Data preparation: long format -> memory-mapped arrays + meta.json, hashed and registered.

`prepare_dataset(engine, project, name)` is the whole step behind `seqdb data prepare`:

1. plan: resolve the data file, load precomputed id maps, and hash (file bytes + every
   preparation setting) -> `content_hash`. A dataset row with that hash whose folder is
   complete is returned at once (cache hit: nothing is read or written).
2. build (`build_prepared`): read and check the long format (polars), drop sequences shorter
   than context_length + max(horizons) (counted), split chronologically with a purge gap,
   fit id maps and normalisation statistics on the training rows only, encode, compute the
   targets of every horizon, and the window starts of each part.
3. write the arrays (.npy) and meta.json into a temporary folder and rename it into
   `<artifacts>/datasets/<hash[:16]>` (atomic: a folder with meta.json is always complete).
4. register the `dataset` row in one transaction (a concurrent identical prepare is fine:
   the unique hash makes the second insert re-read the first).

Task definitions at horizon h, for the row t (see docs/data.md):
- direction: 1 if x[t+1] + ... + x[t+h] > 0 else 0 (raw values of the target column);
- threshold: 1 if x[t+1] + ... + x[t+h] > threshold else 0;
- regression: x[t+h] (aggregate `last`, the default) or the h-step sum (aggregate `sum`),
  standardised with the training targets' mean and std (stored in statistics.targets);
- next_category: the id of the category at t+h (ids of the column's map; -1 where missing).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import polars as pl
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy import select

from seqdb.data import split as sp
from seqdb.data.prepared import META_FILE  # defined beside its reader (which must not import polars)
from seqdb.data.read import LINE, LongSpec, read_long
from seqdb.data.transform import (
    apply_nan_policy,
    build_id_maps,
    encode_categoricals,
    load_given_maps,
    missing_report,
    normalise,
    real_statistics,
    vocab_size,
)
from seqdb.db.engine import session_scope
from seqdb.db.models import Dataset
from seqdb.errors import DataError
from seqdb.experiment.schema import ExperimentConfig, TargetSection
from seqdb.project import Project
from seqdb.hashing import file_sha256

FORMAT_VERSION = 1

OnStep = Optional[Callable[[str], None]]
STEPS = 6  # reading, splitting, fitting, encoding, targets and windows, writing


def _silent(_name: str) -> None:
    return None


@dataclass
class Plan:
    """Everything that determines a prepared dataset, and its hash."""

    config: ExperimentConfig
    spec: LongSpec
    settings: dict
    given_maps: dict
    file_sha256: str
    content_hash: str


def prepare_dataset(engine: Engine, project: Project, experiment_name: str, *, on_step: OnStep = None) -> Dataset:
    """Prepare (or find cached) the dataset of an experiment; returns its `dataset` row.
    `on_step(name)` is called as each of the STEPS named steps starts (a progress bar)."""
    from seqdb.experiment.registry import get_experiment

    exp, config = get_experiment(engine, experiment_name)
    plan = plan_dataset(config, project.root)
    row = find_dataset(engine, plan.content_hash)
    if row is not None and (Path(row.path) / META_FILE).is_file():
        return row
    out = project.artifacts_root / "datasets" / plan.content_hash[:16]
    meta = read_meta(out)
    if meta is None or meta.get("content_hash") != plan.content_hash:
        meta = write_prepared(plan, out, on_step=on_step)
    return register_dataset(engine, exp.experiment_id, out, meta)


# ---- plan and hash -------------------------------------------------------------------------
def plan_dataset(config: ExperimentConfig, root: Path | str) -> Plan:
    root = Path(root)
    d = config.data
    spec = LongSpec(config.data_file(root), config.data_format(), d.sequence_column, d.position_column, dict(d.columns))
    if not spec.path.is_file():
        raise DataError(f"{spec.path}: data file not found (data.path {d.path!r} of experiment {config.name!r}, relative to {root}); allowed: an existing csv or parquet file")
    given = load_given_maps(d.id_maps, root, spec.cat_columns)
    settings = {
        "format_version": FORMAT_VERSION,
        "format": spec.format,
        "sequence_column": spec.sequence_column,
        "position_column": spec.position_column,
        "columns": dict(spec.columns),
        "targets": [t.model_dump(mode="json") | {"name": t.target_name, "aggregate": t.aggregation} for t in config.targets],
        "context_length": config.context_length,
        "horizons": list(config.horizons),
        "split": {"mode": config.split.mode, "validation": config.split.validation, "test": config.split.test, "gap": config.gap}
        | ({"by": config.split.by} if config.split.by else {}),  # without `by`: the hash of a dataset prepared before it existed
        "stride": d.stride,
        "eval_stride": config.eval_stride,
        "nan_policy": d.nan_policy,
        "rare_threshold": d.rare_threshold,
        "id_maps": given,
    }
    file_sha = file_sha256(spec.path)
    digest = hashlib.sha256(json.dumps({"file": file_sha, "settings": settings}, sort_keys=True).encode()).hexdigest()
    return Plan(config, spec, settings, given, file_sha, digest)



# ---- build ---------------------------------------------------------------------------------
@dataclass
class Built:
    """The prepared arrays (row-aligned, length T) and what describes them."""

    arrays: dict[str, np.ndarray]
    meta: dict


def build_prepared(plan: Plan, on_step: OnStep = None) -> Built:
    """Read, check, split, fit on train, encode, compute targets and windows (no I/O out)."""
    step = on_step or _silent
    cfg, spec = plan.config, plan.spec
    step("reading and checking")
    raw = read_long(spec)
    frame = apply_nan_policy(raw, spec, cfg.data.nan_policy)
    step("splitting")
    frame, layout, seq_codes, n_sequences = _split(frame, plan)
    train = layout.part == 0
    step("fitting maps and statistics on the training rows")
    # what the nan policy did, over the rows kept (too-short sequences are dropped first)
    kept = raw.filter(pl.col(LINE).is_in(frame[LINE].implode())) if raw.height != frame.height else raw
    stats = {"real": real_statistics(frame, spec.real_columns, train), "missing": missing_report(kept, frame, spec, cfg.data.nan_policy)}
    maps = build_id_maps(frame, spec, train, cfg.data.rare_threshold, plan.given_maps)
    step("encoding")
    arrays = {
        "real": normalise(frame, spec.real_columns, stats["real"]),
        "cat": encode_categoricals(frame, spec.cat_columns, maps),
        "positions": frame[spec.position_column].to_numpy().astype(np.int64),
        "sequence": seq_codes.astype(np.int32),
        "part": layout.part,
    }
    step("targets and windows")
    targets_meta, stats["targets"] = _targets(frame, plan, layout, arrays, stats["real"], maps)
    windows = _windows(plan, layout, arrays)
    meta = _meta(plan, frame, layout, arrays, stats, maps, targets_meta, windows, n_sequences)
    return Built(arrays, meta)


def _split(frame: pl.DataFrame, plan: Plan) -> tuple[pl.DataFrame, sp.Layout, np.ndarray, int]:
    """Drop too-short sequences (counted) and assign every kept row to a part."""
    cfg, spec = plan.config, plan.spec
    codes = frame.select(pl.col(spec.sequence_column).rle_id()).to_series().to_numpy()
    starts, ends = sp.sequence_bounds(codes)
    min_rows = cfg.context_length + max(cfg.horizons)
    keep_seq = (ends - starts) >= min_rows
    n_sequences = int(starts.shape[0])
    if not keep_seq.any():
        raise DataError(
            f"{spec.path}: all {n_sequences} sequences are shorter than context_length + max horizon ({min_rows} rows; longest {int((ends - starts).max())}); "
            "allowed: longer sequences or a smaller context_length / horizons"
        )
    if not keep_seq.all():
        keep_rows = np.repeat(keep_seq, ends - starts)
        frame = frame.filter(pl.Series(keep_rows))
        codes = codes[keep_rows]
        starts, ends = sp.sequence_bounds(codes)
    s = cfg.split
    times = frame[s.by].to_numpy().astype(np.float64) if s.by else None  # calendar-true cut (split.by)
    layout = sp.build_layout(starts, ends, mode=s.mode, validation=s.validation, test=s.test, gap=cfg.gap,
                             skipped=int((~keep_seq).sum()), times=times, by=f"{spec.path}: split.by {s.by!r}")
    dense = np.zeros(codes.shape[0], dtype=np.int64)
    np.cumsum(codes[1:] != codes[:-1], out=dense[1:])  # 0, 1, 2 ... per kept sequence
    return frame, layout, dense, n_sequences


def _targets(frame: pl.DataFrame, plan: Plan, layout: sp.Layout, arrays: dict, real_stats: dict, maps: dict) -> tuple[list[dict], dict]:
    """Add a `target{i}_h{h}` array per target and horizon; returns (targets meta, target stats)."""
    metas, tstats = [], {}
    for i, t in enumerate(plan.config.targets):
        if t.task == "next_category":  # ids of the column, as encoded
            source = arrays["cat"][:, plan.spec.cat_columns.index(t.column)]
            kind = {"kind": "categorical", "n_classes": vocab_size(maps[t.column])}
        else:  # raw values (missing ones already filled by the nan policy, else the train mean)
            source = frame[t.column].fill_null(real_stats[t.column]["mean"]).to_numpy().astype(np.float64)
            kind = {"kind": "real", "n_classes": 0} if t.task == "regression" else {"kind": "categorical", "n_classes": 2}
        for h in plan.config.horizons:
            y, stats = _target_at(t, source, h, layout)
            arrays[f"target{i}_h{h}"] = y
            if stats:
                tstats.setdefault(t.target_name, {})[str(h)] = stats
        metas.append({"name": t.target_name, "column": t.column, "task": t.task, "threshold": t.threshold, "aggregate": t.aggregation, "file_index": i, **kind})
    return metas, tstats


def _target_at(t: TargetSection, source: np.ndarray, h: int, layout: sp.Layout) -> tuple[np.ndarray, dict | None]:
    """[T] targets at horizon h (-1 / NaN = ignore) and, for regression, their train mean/std."""
    ok = sp.valid_mask(layout, h)
    if t.task == "next_category":
        y = sp.forward_value(source, h, 0)
        return np.where(ok & (y != 0), y, -1).astype(np.int64), None  # a missing category: ignore
    if t.task in ("direction", "threshold"):
        cut = 0.0 if t.task == "direction" else float(t.threshold)
        return np.where(ok, sp.forward_sum(source, h) > cut, -1).astype(np.int64), None
    raw = sp.forward_sum(source, h) if t.aggregation == "sum" else sp.forward_value(source, h, np.nan)
    fit = raw[ok & (layout.part == 0)]  # training targets only
    mean, std = (float(fit.mean()), float(fit.std())) if fit.size else (0.0, 1.0)
    std = std if std > 0 else 1.0
    return np.where(ok, (raw - mean) / std, np.nan).astype(np.float32), {"mean": mean, "std": std}


def _windows(plan: Plan, layout: sp.Layout, arrays: dict) -> dict[str, int]:
    cfg = plan.config
    counts = {}
    for p, name in enumerate(sp.PARTS):
        stride = cfg.data.stride if name == "train" else cfg.eval_stride
        arrays[f"starts_{name}"] = sp.window_starts(layout, p, cfg.context_length, stride, cover_end=True)
        counts[name] = int(arrays[f"starts_{name}"].shape[0])
    sp.check_parts(layout, counts, cfg.context_length, str(plan.spec.path))
    return counts


def _meta(plan, frame, layout, arrays, stats, maps, targets_meta, windows, n_sequences) -> dict:  # noqa: ANN001
    cfg, spec = plan.config, plan.spec
    positions, part = arrays["positions"], layout.part
    splits = {"mode": cfg.split.mode, "validation": cfg.split.validation, "test": cfg.split.test, "gap": cfg.gap}
    for p, name in enumerate(sp.PARTS):
        rows = part == p
        pos = positions[rows]
        splits[name] = {
            "rows": int(rows.sum()),
            "windows": windows[name],
            "sequences": int((layout.seg_part == p).sum()),  # one segment per (sequence, part)
            "position_range": [int(pos.min()), int(pos.max())] if pos.size else None,
        }
    splits["gap_rows"] = int((part == sp.GAP).sum())
    return {
        "format_version": FORMAT_VERSION,
        "content_hash": plan.content_hash,
        "experiment": cfg.name,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {"path": str(spec.path), "format": spec.format, "sha256": plan.file_sha256},
        "context_length": cfg.context_length,
        "horizons": list(cfg.horizons),
        "sequence_column": spec.sequence_column,
        "position_column": spec.position_column,
        "real_columns": spec.real_columns,
        "cat_columns": spec.cat_columns,
        "vocab_sizes": {c: vocab_size(maps[c]) for c in spec.cat_columns},
        "targets": targets_meta,
        "n_rows": int(frame.height),
        "n_sequences": n_sequences,
        "n_sequences_kept": int(arrays["sequence"][-1]) + 1,
        "skipped_sequences": layout.skipped,
        "nan_policy": cfg.data.nan_policy,
        "splits": splits,
        "statistics": stats,
        "id_maps": maps,
        "settings": plan.settings,
        "arrays": sorted(arrays),
    }


# ---- write and register ----------------------------------------------------------------------
def write_prepared(plan: Plan, out: Path, *, on_step: OnStep = None) -> dict:
    """Build and write the dataset folder atomically; returns its meta."""
    built = build_prepared(plan, on_step)
    (on_step or _silent)("writing arrays")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".tmp-{out.name}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        tmp.mkdir()
        for name, arr in built.arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr))
        (tmp / META_FILE).write_text(json.dumps(built.meta, indent=1, default=_json_default), encoding="utf-8")
        _publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return read_meta(out) or built.meta


def _publish(tmp: Path, out: Path) -> None:
    """Rename the finished folder into place; a complete folder already there wins."""
    if out.exists():
        if read_meta(out) is not None:
            return
        shutil.rmtree(out, ignore_errors=True)  # an incomplete leftover (no meta.json)
    try:
        os.rename(tmp, out)
    except OSError:
        if read_meta(out) is None:
            raise


def read_meta(folder: Path) -> dict | None:
    try:
        return json.loads((Path(folder) / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def find_dataset(engine: Engine, content_hash: str) -> Dataset | None:
    with session_scope(engine, write=False) as session:
        return session.scalars(select(Dataset).where(Dataset.content_hash == content_hash)).first()


def register_dataset(engine: Engine, experiment_id: int, out: Path, meta: dict) -> Dataset:
    """Insert the dataset row (or return the one a concurrent prepare inserted)."""
    row = Dataset(
        experiment_id=experiment_id,
        content_hash=meta["content_hash"],
        path=str(Path(out).resolve()),
        n_rows=meta["n_rows"],
        n_sequences=meta["n_sequences_kept"],
        settings=meta["settings"],
        splits=meta["splits"] | {"skipped_sequences": meta["skipped_sequences"]},
        statistics=meta["statistics"],
        id_maps=meta["id_maps"],
    )
    try:
        with session_scope(engine) as session:
            existing = session.scalars(select(Dataset).where(Dataset.content_hash == row.content_hash)).first()
            if existing is not None:
                if existing.path != row.path:
                    existing.path = row.path  # the old folder is gone; point at the new one
                    session.add(existing)
                return existing
            session.add(row)
            session.flush()
            return row
    except IntegrityError:
        found = find_dataset(engine, meta["content_hash"])
        if found is None:
            raise
        return found


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
