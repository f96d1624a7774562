"""Trial states, in a module of their own so that light readers (`seqdb status`) need not
import the table definitions. `seqdb.db.models` re-exports both names."""

from __future__ import annotations

from enum import Enum


class TrialState(str, Enum):
    pending = "pending"
    running = "running"
    completed = "completed"
    pruned = "pruned"
    failed = "failed"
    stopped = "stopped"


FINISHED_STATES = (TrialState.completed.value, TrialState.pruned.value, TrialState.failed.value)
