"""`seqdb trial retry`: put failed trials back in the queue, their history kept.

A retried trial becomes `pending` again and resumes from its newest valid checkpoint. Its
metrics and checkpoints stay; its last error is kept in `error` as `retried after: ...`.
`attempt + 1` fences off any old writer (every leaseholder write checks the attempt), and the
trial gets a fresh budget of lease expiries: the experiment's `max_attempts` from here on.
"""

from __future__ import annotations

from typing import Optional, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.config.study import study_config
from seqdb.db.engine import session_scope
from seqdb.db.models import Study, Trial, TrialState
from seqdb.errors import ConfigError, NotFoundError

FAILED = TrialState.failed.value


def _chosen(s, trial_ids: Optional[Sequence[int]], study_id: Optional[int]) -> list[Trial]:  # noqa: ANN001
    """The trials to retry: those named (each must exist and be failed), else every failed one."""
    if trial_ids is None:
        stmt = sa.select(Trial).where(Trial.state == FAILED).order_by(Trial.trial_id)
        return list(s.execute(stmt if study_id is None else stmt.where(Trial.study_id == study_id)).scalars())
    rows = {t.trial_id: t for t in s.execute(sa.select(Trial).where(Trial.trial_id.in_(list(trial_ids)))).scalars()}
    for trial_id in trial_ids:
        trial = rows.get(trial_id)
        if trial is None:
            raise NotFoundError(f"trial {trial_id} does not exist; see `seqdb trial list --study ...`")
        if trial.state != FAILED:
            raise ConfigError(f"trial {trial_id} is {trial.state}; allowed: failed trials only (see `seqdb trial list --state failed`)")
    return [rows[i] for i in dict.fromkeys(trial_ids)]


# Compare-and-set on state = 'failed': a trial retried twice at once is retried once.
RETRY = sa.text(
    """
    UPDATE trial
       SET state = 'pending', attempt = attempt + 1, max_attempts = attempt + 1 + :budget,
           lease_owner = NULL, lease_expires_at = NULL, finished_at = NULL,
           error = 'retried after: ' || COALESCE(error, 'failed')
     WHERE trial_id = :trial_id AND state = 'failed'
    """
)


def retry_trials(engine: Engine, trial_ids: Optional[Sequence[int]] = None, *, study_id: Optional[int] = None) -> list[int]:
    """Put failed trials back as pending (all named ones, or every failed one of `study_id`,
    or of every study); returns the ids retried. All or nothing: one transaction."""
    with session_scope(engine) as s:
        trials = _chosen(s, trial_ids, study_id)
        budgets: dict[int, int] = {}
        for trial in trials:
            if trial.study_id not in budgets:
                ctx = study_config(s.get(Study, trial.study_id)).context
                budgets[trial.study_id] = ctx.max_attempts if ctx is not None else 3
        done = [t.trial_id for t in trials
                if s.execute(RETRY, {"trial_id": t.trial_id, "budget": budgets[t.study_id]}).rowcount == 1]
    return done


__all__ = ["retry_trials"]
