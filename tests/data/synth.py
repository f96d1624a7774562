"""Synthetic long-format data and a tiny seqdb project for the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import yaml

from seqdb.project import Project

CATS = ["a", "b", "c", "d"]


def long_frame(n_seq: int = 3, n_rows: int = 60, seed: int = 0, lengths: list[int] | None = None) -> pl.DataFrame:
    """`n_seq` sequences (ids 10, 11, ...) of random walks x, y, z and a category c."""
    rng = np.random.default_rng(seed)
    lengths = lengths or [n_rows] * n_seq
    seq = np.concatenate([np.full(n, 10 + i) for i, n in enumerate(lengths)])
    pos = np.concatenate([np.arange(n) * 2 + 100 for n in lengths])  # gaps in positions are fine
    total = int(sum(lengths))
    return pl.DataFrame(
        {
            "sequenceId": seq,
            "itemPosition": pos,
            "x": rng.normal(size=total),
            "y": rng.normal(3.0, 2.0, size=total),
            "z": rng.uniform(size=total),
            "c": np.asarray(CATS)[rng.integers(0, len(CATS), size=total)],
        }
    )


def experiment(**over) -> dict:
    cfg = {
        "name": "synth",
        "seed": 1,
        "data": {"path": "data/long.csv", "columns": {"x": "real", "y": "real", "z": "real", "c": "categorical"}},
        "target": {"column": "x", "task": "direction"},
        "context_length": 8,
        "horizons": [1, 3],
        "split": {"validation": 0.2, "test": 0.2},
        "budgets": ["10k"],
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def make_project(root: Path, db_url: str) -> Project:
    """A project folder whose seqdb.yaml points at `db_url`."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "configs").mkdir(exist_ok=True)
    (root / "seqdb.yaml").write_text(f"database: {db_url}\nartifacts_root: artifacts\n", encoding="utf-8")
    return Project(root=root.resolve(), database_url=db_url, artifacts_root=(root / "artifacts").resolve())


def write_experiment(project: Project, cfg: dict, name: str = "exp.yaml") -> Path:
    path = project.root / "configs" / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path
