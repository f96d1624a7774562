"""Each budget's selected search trial scored ONCE on the test split (`seqdb scaling --split test`).

The scaling curve on validation loss selects and scores on the same split (the best of many
trials looks better than it is). Here the best checkpoint of each selected trial is evaluated
on the test windows with the trainer's `evaluate` (the validation loss's definition) and kept
as a `test_loss` metric row of that trial; a trial that has one already is not evaluated
again, so the test split is looked at once per selection.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.db.engine import session_scope
from seqdb.db.models import Metric, Trial

TEST_METRIC = "test_loss"


def existing_scores(engine: Engine, trial_ids: Sequence[int]) -> dict[int, float]:
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Metric.trial_id, Metric.value).where(Metric.trial_id.in_(list(trial_ids)), Metric.name == TEST_METRIC))
        return {int(t): float(v) for t, v in rows}


def _score_one(engine: Engine, project: Any, trial_id: int, cache: dict) -> tuple[float, int]:
    """(test loss, step of the checkpoint) of one trial's best checkpoint."""
    from seqdb.config.trial import TrialConfig
    from seqdb.data.prepared import open_prepared
    from seqdb.errors import NotFoundError
    from seqdb.results.final import best_checkpoint, dataset_folder, load_model
    from seqdb.train.trainer import evaluate

    with session_scope(engine, write=False) as s:
        trial = s.get(Trial, trial_id)
        cfg, study_id = TrialConfig.model_validate(trial.config), trial.study_id
    key = (study_id, cfg.horizon)
    if key not in cache:
        cache[key] = open_prepared(dataset_folder(engine, project, study_id)).windows("test", cfg.horizon)
    test_set = cache[key]
    if len(test_set) == 0:
        raise NotFoundError(f"trial {trial_id}: the test split has no windows; prepare the data with a larger split.test")
    checkpoint = best_checkpoint(engine, trial_id)
    return float(evaluate(load_model(cfg, checkpoint), test_set, cfg.data)["loss"]), int(checkpoint.step)


def score_on_test(engine: Engine, project: Any, trial_ids: Sequence[int],
                  on_trial: Optional[Callable[[int], None]] = None) -> dict[int, float]:
    """trial_id -> test loss; evaluates (and records) only the trials not scored before."""
    scores = existing_scores(engine, trial_ids)
    cache: dict = {}
    for trial_id in (t for t in dict.fromkeys(trial_ids) if t not in scores):
        if on_trial is not None:
            on_trial(trial_id)
        loss, step = _score_one(engine, project, trial_id, cache)
        with session_scope(engine) as s:  # one row; a concurrent scorer's identical row wins
            if s.execute(sa.select(Metric.metric_id).where(Metric.trial_id == trial_id, Metric.name == TEST_METRIC)).first() is None:
                s.add(Metric(trial_id=trial_id, step=step, name=TEST_METRIC, value=loss, time=time.time()))
        scores[trial_id] = loss
    return scores
