"""The seqdb schema: the SQLModel tables.

Conventions (see docs/schema.md for the diagram):
- singular table names, integer `<entity>_id` primary keys;
- configs and statistics in JSON columns (JSONB on Postgres);
- every timestamp is UTC; `metric.time` is seconds since the Unix epoch (a float, so that
  millions of rows insert cheaply);
- uniqueness wherever a duplicate would be a bug (a study per experiment x budget x horizon,
  a config hash per study, a metric per trial x name x step).

Schema changes go only through Alembic migrations in `seqdb/migrations/` (shipped in the package).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field, SQLModel

from seqdb.db.states import FINISHED_STATES, TrialState  # re-exported: defined there for light readers

# JSON on SQLite, JSONB on Postgres.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# 64-bit ids on Postgres; a plain INTEGER on SQLite so that the key stays the rowid alias.
BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTCDateTime = sa.DateTime(timezone=True)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _json(nullable: bool = True, default: Any = None) -> Any:
    return Field(default=default, sa_column=sa.Column(JSONType, nullable=nullable))


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime, nullable=nullable, index=index))


def _created() -> Any:
    return Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime, nullable=False))


# --------------------------------------------------------------------------------------
# experiment: one registered YAML definition
# --------------------------------------------------------------------------------------
class ExperimentBase(SQLModel):
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))
    yaml_text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    source_path: Optional[str] = Field(default=None, max_length=1000)
    content_hash: str = Field(max_length=64)


class Experiment(ExperimentBase, table=True):
    experiment_id: Optional[int] = Field(default=None, primary_key=True)
    config: dict = _json(nullable=False, default=None)
    created_at: datetime = _created()


# --------------------------------------------------------------------------------------
# dataset: prepared, hashed data registered once
# --------------------------------------------------------------------------------------
class DatasetBase(SQLModel):
    experiment_id: int = Field(foreign_key="experiment.experiment_id", index=True)
    content_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    path: str = Field(max_length=1000)
    n_rows: int = 0
    n_sequences: int = 0


class Dataset(DatasetBase, table=True):
    dataset_id: Optional[int] = Field(default=None, primary_key=True)
    settings: dict = _json(nullable=False, default=None)  # preparation settings that were hashed
    splits: dict = _json(nullable=False, default=None)  # per split: rows, windows, boundaries
    statistics: dict = _json(nullable=False, default=None)  # normalisation stats (train only)
    id_maps: dict = _json(nullable=False, default=None)  # categorical value -> id
    created_at: datetime = _created()


# --------------------------------------------------------------------------------------
# budget and architecture: parameter budgets and the grid of architectures that fit
# --------------------------------------------------------------------------------------
class BudgetBase(SQLModel):
    experiment_id: int = Field(foreign_key="experiment.experiment_id", index=True)
    label: str = Field(max_length=32)  # as written: "2M", "500k"
    n_params: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    tolerance: float = 0.25


class Budget(BudgetBase, table=True):
    __table_args__ = (sa.UniqueConstraint("experiment_id", "n_params", name="uq_budget_experiment_n_params"),)
    budget_id: Optional[int] = Field(default=None, primary_key=True)
    created_at: datetime = _created()


class ArchitectureBase(SQLModel):
    budget_id: int = Field(foreign_key="budget.budget_id", index=True)
    ordinal: int = 0  # deterministic order within the budget's grid
    d_model: int
    n_layers: int
    n_head: int
    n_kv_heads: int
    d_ff: int
    param_count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    non_embedding_params: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class Architecture(ArchitectureBase, table=True):
    __table_args__ = (
        sa.UniqueConstraint(
            "budget_id", "d_model", "n_layers", "n_head", "n_kv_heads", "d_ff", name="uq_architecture_shape"
        ),
    )
    architecture_id: Optional[int] = Field(default=None, primary_key=True)
    config: dict = _json(nullable=False, default=None)  # full model options used for the count


# --------------------------------------------------------------------------------------
# study: one search per (experiment, budget, horizon)
# --------------------------------------------------------------------------------------
class StudyBase(SQLModel):
    experiment_id: int = Field(foreign_key="experiment.experiment_id", index=True)
    budget_id: int = Field(foreign_key="budget.budget_id", index=True)
    horizon: int
    name: str = Field(sa_column=sa.Column(sa.String(300), nullable=False, unique=True))
    strategy: str = Field(max_length=32)  # grid | sample | tpe | ablation | multi
    n_trials: int
    max_epochs: int
    pruner: str = Field(default="none", max_length=32)
    kind: str = Field(default="search", max_length=16)  # search | final
    dataset_id: Optional[int] = Field(default=None, foreign_key="dataset.dataset_id")


class Study(StudyBase, table=True):
    __table_args__ = (
        sa.UniqueConstraint("experiment_id", "budget_id", "horizon", "kind", name="uq_study_experiment_budget_horizon"),
    )
    study_id: Optional[int] = Field(default=None, primary_key=True)
    objectives: list = _json(nullable=False, default=None)  # [{"name": "val_loss", "direction": "minimize"}]
    config: dict = _json(nullable=False, default=None)  # search settings: space, seed, effort
    state: str = Field(default="active", max_length=16)  # active | complete
    created_at: datetime = _created()


# --------------------------------------------------------------------------------------
# worker: one `seqdb run` process; stop_request: a request to stop one or all workers
# --------------------------------------------------------------------------------------
class WorkerBase(SQLModel):
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))  # host:pid:uuid
    host: str = Field(max_length=255)
    pid: int
    device: str = Field(default="cpu", max_length=32)
    study_id: Optional[int] = Field(default=None, foreign_key="study.study_id")


class Worker(WorkerBase, table=True):
    worker_id: Optional[int] = Field(default=None, primary_key=True)
    state: str = Field(default="running", max_length=16)  # running | stopped | dead
    started_at: datetime = _created()
    last_seen_at: Optional[datetime] = _ts(index=True)
    current_trial_id: Optional[int] = Field(default=None)  # no FK: trials point at workers
    tokens_per_s: Optional[float] = None
    info: Optional[dict] = _json()


class StopRequest(SQLModel, table=True):
    __tablename__ = "stop_request"
    stop_request_id: Optional[int] = Field(default=None, primary_key=True)
    worker_id: Optional[int] = Field(default=None, foreign_key="worker.worker_id", index=True)  # NULL: all
    reason: str = Field(default="", max_length=500)
    created_at: datetime = _created()


# --------------------------------------------------------------------------------------
# trial: one complete, standalone training configuration and its lifecycle
# --------------------------------------------------------------------------------------
class TrialBase(SQLModel):
    study_id: int = Field(foreign_key="study.study_id")
    number: int  # 0-based within the study
    config_hash: str = Field(max_length=64)
    architecture_id: Optional[int] = Field(default=None, foreign_key="architecture.architecture_id")
    label: Optional[str] = Field(default=None, max_length=200)  # ablation: "baseline", "dropout=0.2"
    param_count: Optional[int] = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))


class Trial(TrialBase, table=True):
    __table_args__ = (
        sa.UniqueConstraint("study_id", "config_hash", name="uq_trial_study_config_hash"),
        sa.UniqueConstraint("study_id", "number", name="uq_trial_study_number"),
        sa.Index("ix_trial_study_state", "study_id", "state"),
        sa.Index("ix_trial_state_lease", "state", "lease_expires_at"),
        # the queue's claim: the oldest runnable trial of a study, whatever the study's size
        sa.Index(
            "ix_trial_claimable",
            "study_id",
            "trial_id",
            sqlite_where=sa.text("state IN ('pending', 'stopped')"),
            postgresql_where=sa.text("state IN ('pending', 'stopped')"),
        ),
        # the scaling view's per-study aggregation, answered from the index alone
        sa.Index("ix_trial_scaling", "study_id", "state", "best_val_loss", "epochs_done", "step"),
    )
    trial_id: Optional[int] = Field(default=None, primary_key=True)
    config: dict = _json(nullable=False, default=None)  # complete standalone training config
    params: Optional[dict] = _json()  # the searched parameters only (flat), for the sampler and views
    state: str = Field(default=TrialState.pending.value, max_length=16)
    attempt: int = 0
    max_attempts: int = 3
    lease_owner: Optional[int] = Field(default=None, foreign_key="worker.worker_id")
    lease_expires_at: Optional[datetime] = _ts()
    heartbeat_at: Optional[datetime] = _ts()
    created_at: datetime = _created()
    started_at: Optional[datetime] = _ts()
    finished_at: Optional[datetime] = _ts()
    best_val_loss: Optional[float] = None
    best_step: Optional[int] = None
    values: Optional[list] = _json()  # objective values, in the study's objective order
    step: int = 0  # optimizer steps done (survives resumes)
    epochs_done: int = 0
    batch_config: Optional[dict] = _json()  # physical batch, accumulation, effective batch
    error: Optional[str] = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    seed: Optional[int] = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True, index=True))  # the trial's own seed
    replicate_of: Optional[int] = None  # trial_id this trial replicates with another seed (no FK: SQLite adds it in place)
    env: Optional[dict] = _json()  # where it ran: torch threads, torch / python / seqdb versions, git commit, host
    tokens: Optional[int] = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))  # tokens trained at finish
    flops: Optional[float] = None  # training FLOPs at finish (docs/training.md gives the formula)


# --------------------------------------------------------------------------------------
# checkpoint, metric, artifact
# --------------------------------------------------------------------------------------
class CheckpointBase(SQLModel):
    trial_id: int = Field(foreign_key="trial.trial_id", index=True)
    path: str = Field(max_length=1000)
    bytes: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    step: int
    epoch: int = 0
    val_loss: Optional[float] = None
    is_best: bool = False
    attempt: int = 0


class Checkpoint(CheckpointBase, table=True):
    checkpoint_id: Optional[int] = Field(default=None, primary_key=True)
    created_at: datetime = _created()


class MetricBase(SQLModel):
    trial_id: int = Field(foreign_key="trial.trial_id")
    step: int
    epoch: int = 0
    name: str = Field(max_length=64)
    value: float
    time: float  # seconds since the Unix epoch, UTC


class Metric(MetricBase, table=True):
    __table_args__ = (
        # learning curves: one trial, one metric name, ordered by step (also makes a
        # re-flushed batch after a reconnect idempotent).
        sa.UniqueConstraint("trial_id", "name", "step", name="uq_metric_trial_name_step"),
        sa.Index("ix_metric_name_trial", "name", "trial_id"),
    )
    metric_id: Optional[int] = Field(default=None, sa_column=sa.Column(BigIntId, primary_key=True, autoincrement=True))


class ArtifactBase(SQLModel):
    kind: str = Field(max_length=64)  # onnx_generative | onnx_embedding | report | export ...
    path: str = Field(max_length=1000)
    bytes: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    trial_id: Optional[int] = Field(default=None, foreign_key="trial.trial_id", index=True)
    study_id: Optional[int] = Field(default=None, foreign_key="study.study_id", index=True)
    dataset_id: Optional[int] = Field(default=None, foreign_key="dataset.dataset_id")


class Artifact(ArtifactBase, table=True):
    artifact_id: Optional[int] = Field(default=None, primary_key=True)
    meta: Optional[dict] = _json()
    created_at: datetime = _created()


TABLES = [
    "experiment",
    "dataset",
    "budget",
    "architecture",
    "study",
    "worker",
    "stop_request",
    "trial",
    "checkpoint",
    "metric",
    "artifact",
]
