"""A valid experiment mapping to start from; tests change one thing and write it out."""

from __future__ import annotations

import copy

import pytest
import yaml

BASE = {
    "name": "exp-a",
    "seed": 7,
    "data": {
        "path": "data/series.csv",
        "sequence_column": "sequenceId",
        "position_column": "itemPosition",
        "columns": {"x": "real", "y": "real", "c": "categorical"},
    },
    "target": {"column": "x", "task": "direction"},
    "context_length": 8,
    "horizons": [1, 2],
    "split": {"validation": 0.2, "test": 0.2},
    "budgets": ["10k", "30k"],
    "search": {"strategy": "grid", "space": {"learning_rate": [1.0e-3, 3.0e-3]}},
    "training": {"max_epochs": 2},
}


def base_config(**changes) -> dict:
    """BASE with dotted-path changes: base_config(**{"data.columns.x": "real"})."""
    cfg = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return cfg


class _Delete:
    pass


_DELETE = _Delete()


@pytest.fixture
def write_yaml(tmp_path):
    def write(cfg: dict | str, name: str = "exp.yaml"):
        path = tmp_path / name
        path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        return path

    return write


DELETE = _DELETE
