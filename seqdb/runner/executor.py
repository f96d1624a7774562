"""The seam between the worker loop and whatever trains a claimed trial.

The worker hands an `Executor` object a `TrialRun` and records the `TrialOutcome` it returns.
The real one is `seqdb.runner.execute.TrainExecutor`; `seqdb.testing.synthetic` has a
model-free one for fault-injection tests. Executors are plain picklable objects, so
`--workers N` sends the same one to every child process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol

from sqlalchemy.engine import Engine

from seqdb.runner.progress import Progress
from seqdb.runner.queue import Lease, TrialOutcome
from seqdb.runner.reporter import DbReporter, Pruner, ResumePoint


@dataclass
class TrialRun:
    """What an executor gets for one claimed trial."""

    engine: Engine
    lease: Lease
    reporter: DbReporter
    checkpoint_dir: Path
    resume: Optional[ResumePoint]
    device: str
    progress: Progress


class Executor(Protocol):
    def __call__(self, run: TrialRun) -> TrialOutcome: ...

    def pruner(self, engine: Engine, lease: Lease) -> Optional[Pruner]: ...


class SetupError(Exception):
    """Raised by an executor when the trial cannot even start for a reason that is not the
    trial's fault (missing dataset, unreadable config): the worker leaves the trial runnable
    and exits with the cause."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


EventSink = Callable[..., None]
"""Called with keyword fields (kind=claim|finish|lost|reap|exit, trial=, worker=, ...) at each
queue event; `seqdb.testing.events.EventLog` writes them to a JSONL file for the soak tests."""


def no_events(**_event) -> None:
    return None
