"""`seqdb scaling --split test`: each budget's selected trial scored once on the test split."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from seqdb.config.trial import TrialConfig
from seqdb.data.prepared import open_prepared
from seqdb.db.engine import session_scope
from seqdb.db.models import Checkpoint, Metric, Trial
from seqdb.model.transformer import CausalTransformer
from seqdb.results.final import dataset_folder
from seqdb.results.test_scores import TEST_METRIC, score_on_test
from seqdb.train.checkpoint import save_checkpoint
from seqdb.train.trainer import evaluate
from tests.helpers import run_cli_inprocess
from tests.results.test_final import toy_project


def _checkpointed_best(engine, tmp_path) -> tuple[int, TrialConfig, CausalTransformer]:
    """Give the toy study's completed trial a best checkpoint of a (random) model."""
    with session_scope(engine) as s:
        trial = s.execute(sa.select(Trial).where(Trial.state == "completed")).scalars().one()
        cfg = TrialConfig.model_validate(trial.config)
        model = CausalTransformer(cfg.model, cfg.data).eval()
        path, size, sha = save_checkpoint({"model": model.state_dict()}, tmp_path / "ckpt", step=5)
        s.add(Checkpoint(trial_id=trial.trial_id, path=str(path), bytes=size, sha256=sha, step=5, epoch=1, val_loss=0.69, is_best=True))
        return trial.trial_id, cfg, model


def test_selected_trial_is_scored_once_on_test(db_url, tmp_path, monkeypatch):
    project, engine = toy_project(tmp_path / "proj", db_url)
    trial_id, cfg, model = _checkpointed_best(engine, tmp_path)
    test_set = open_prepared(dataset_folder(engine, project, _study_of(engine, trial_id))).windows("test", 1)
    expected = evaluate(model, test_set, cfg.data)["loss"]
    seen = []
    assert score_on_test(engine, project, [trial_id], on_trial=seen.append) == {trial_id: pytest.approx(expected, rel=1e-6)}
    assert seen == [trial_id]

    def no_second_look(*a, **k):  # noqa: ANN002, ANN003 - fault injection: the test split must not be evaluated again
        raise AssertionError("evaluated twice")

    monkeypatch.setattr("seqdb.train.trainer.evaluate", no_second_look)
    assert score_on_test(engine, project, [trial_id]) == {trial_id: pytest.approx(expected, rel=1e-6)}
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Metric).where(Metric.trial_id == trial_id, Metric.name == TEST_METRIC)).scalars().all()
    assert len(rows) == 1 and rows[0].step == 5

    out = run_cli_inprocess("--project", str(tmp_path / "proj"), "scaling", "--split", "test", "--json")
    assert out.code == 0, out.err
    (hs,) = json.loads(out.out)
    assert hs["split"] == "test" and hs["points"][0]["test_loss"] == pytest.approx(expected, rel=1e-6)
    assert hs["fit"] is None and "at least 3" in hs["message"]  # one budget: the points only
    text = run_cli_inprocess("--project", str(tmp_path / "proj"), "scaling", "--split", "test")
    assert text.code == 0 and "test losses of the trials selected on validation" in text.out
    bad = run_cli_inprocess("--project", str(tmp_path / "proj"), "scaling", "--split", "train")
    assert bad.code != 0 and "--split 'train'" in bad.err
    engine.dispose()


def _study_of(engine, trial_id: int) -> int:
    with session_scope(engine, write=False) as s:
        return s.get(Trial, trial_id).study_id
