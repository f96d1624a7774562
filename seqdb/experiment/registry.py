"""Experiments in the database: register (idempotent), look up, list.

An experiment row keeps the YAML text as written, the validated config as JSON (defaults
filled in) and the sha256 of that config. Adding the same content again is a no-op; other
content under an existing name is refused, unless `replace=True` and no study exists for it
yet (then the row is updated and its budgets/architectures, derived from the old config, are
dropped in the same transaction).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from seqdb.db.engine import session_scope
from seqdb.db.models import Architecture, Budget, Experiment, Study
from seqdb.errors import ConfigError, NotFoundError
from seqdb.experiment.loader import config_json, content_hash, read_yaml, validate_experiment
from seqdb.experiment.schema import ExperimentConfig


def register_experiment(engine: Engine, path: Path | str, *, replace: bool = False) -> tuple[Experiment, bool]:
    """Validate and store the YAML at `path`; returns (row, created_or_replaced). Two
    processes adding the same name at once (Postgres): the loser sees the winner's row."""
    text, data = read_yaml(path)
    config = validate_experiment(data, source=str(path))
    digest = content_hash(config)
    try:
        return _store(engine, path, text, config, digest, replace)
    except IntegrityError:  # a concurrent `experiment add` inserted the same name first
        return _store(engine, path, text, config, digest, replace)


def _store(engine: Engine, path: Path | str, text: str, config: ExperimentConfig, digest: str, replace: bool) -> tuple[Experiment, bool]:
    with session_scope(engine) as session:
        row = session.scalars(select(Experiment).where(Experiment.name == config.name)).first()
        if row is not None and row.content_hash == digest:
            return row, False
        if row is not None:
            _replace(session, row, path, replace)
            row.yaml_text, row.config, row.content_hash, row.source_path = text, config_json(config), digest, str(path)
            session.add(row)
            session.flush()
            return row, True
        row = Experiment(name=config.name, yaml_text=text, source_path=str(path), content_hash=digest, config=config_json(config))
        session.add(row)
        session.flush()
        return row, True


def _replace(session, row: Experiment, path: Path | str, replace: bool) -> None:  # noqa: ANN001
    """Allow replacing an experiment's content only with `replace` and while no study uses it."""
    n_studies = session.scalar(select(sa.func.count()).select_from(Study).where(Study.experiment_id == row.experiment_id))
    if not replace:
        raise ConfigError(
            f"{path}: name: experiment {row.name!r} is already registered with different content (hash {row.content_hash[:12]}); "
            f"allowed: a new `name:` for the changed definition{', or `seqdb experiment add --replace` (no study exists yet)' if not n_studies else ''}"
        )
    if n_studies:
        raise ConfigError(
            f"{path}: name: experiment {row.name!r} already has {n_studies} studies and cannot be replaced; allowed: a new `name:` for the changed definition"
        )
    budget_ids = select(Budget.budget_id).where(Budget.experiment_id == row.experiment_id)
    session.execute(sa.delete(Architecture).where(Architecture.budget_id.in_(budget_ids)))
    session.execute(sa.delete(Budget).where(Budget.experiment_id == row.experiment_id))


def get_experiment(engine: Engine, name: str) -> tuple[Experiment, ExperimentConfig]:
    """The row and its validated config; NotFoundError listing the known names."""
    with session_scope(engine, write=False) as session:
        row = session.scalars(select(Experiment).where(Experiment.name == name)).first()
        if row is None:
            known = session.scalars(select(Experiment.name).order_by(Experiment.name)).all()
            raise NotFoundError(f"experiment {name!r} is not registered; known: {', '.join(known) or '(none; run `seqdb experiment add FILE`)'}")
    return row, validate_experiment(row.config, source=f"experiment {name!r} (stored config)")


def list_experiments(engine: Engine) -> list[Experiment]:
    """All experiments, oldest first."""
    with session_scope(engine, write=False) as session:
        return list(session.scalars(select(Experiment).order_by(Experiment.experiment_id)).all())
