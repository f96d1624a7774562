"""Small experiments and data specs for the search tests (no data preparation needed)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.config.trial import DataSpec, InputColumn, TargetSpec
from seqdb.db.engine import session_scope
from seqdb.db.lookup import find_or_raise
from seqdb.db.models import Experiment, Study, Trial
from seqdb.experiment.schema import ExperimentConfig

COLUMNS = {"log_return": "real", "log_range": "real", "weekday": "categorical"}


def base_spec(horizon: int = 1) -> DataSpec:
    return DataSpec(
        dataset_hash="test",
        context_length=16,
        horizon=horizon,
        inputs=[
            InputColumn(name="log_return", kind="real"),
            InputColumn(name="log_range", kind="real"),
            InputColumn(name="weekday", kind="categorical", vocab_size=7, embedding_dim=None),
        ],
        targets=[TargetSpec(name="log_return", kind="categorical", n_classes=2)],
    )


def experiment_config(search: dict | None = None, **over) -> ExperimentConfig:
    data = {
        "name": over.pop("name", "exp"),
        "seed": 7,
        "data": {"path": "data/x.csv", "columns": COLUMNS},
        "target": {"column": "log_return", "task": "direction"},
        "context_length": 16,
        "horizons": [1, 3],
        "budgets": over.pop("budgets", ["20k", "60k"]),
        "search": search or {},
        "training": {"max_epochs": 3},
        **over,
    }
    return ExperimentConfig.model_validate(data)


def register(engine, cfg: ExperimentConfig) -> Experiment:
    with session_scope(engine) as s:
        row = Experiment(name=cfg.name, yaml_text="{}", content_hash="0" * 64, config=cfg.model_dump(mode="json"))
        s.add(row)
        s.flush()
        return row


def study_complete(engine: Engine, study_id: int) -> bool:
    """True when the study needs no more work: every trial it will ever have is finished
    (tpe / nsga2: n_trials created and all finished)."""
    finished = ("completed", "pruned", "failed")
    with session_scope(engine, write=False) as s:
        study = find_or_raise(s, Study, study_id)
        rows = s.execute(sa.select(Trial.state, sa.func.count()).where(Trial.study_id == study_id).group_by(Trial.state)).all()
    counts = dict(rows)
    total = sum(counts.values())
    done = sum(counts.get(state, 0) for state in finished)
    if study.state == "complete":
        return done == total
    return total >= study.n_trials and done == total
