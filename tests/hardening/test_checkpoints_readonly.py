"""Checkpoints after a lost lease and with corrupt files; read-only commands that must not
touch a database file; the same YAML building the same model on both backends."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import torch

from seqdb.config.trial import ModelConfig, TrainingConfig, TrialConfig
from seqdb.db.engine import dispose_engines
from seqdb.errors import TrainingError
from seqdb.train.checkpoint import SIDECAR, list_checkpoints, load_resumable
from seqdb.train.reporter import MemoryReporter
from seqdb.train.trainer import train
from tests.helpers import assert_one_line_error, run_cli_inprocess
from tests.train.synth import make_windows, spec

torch.set_num_threads(1)
TRAIN, VAL = make_windows(6, 40, 8, seed=0), make_windows(2, 40, 8, seed=1)


def _cfg(max_epochs: int = 2) -> TrialConfig:
    return TrialConfig(
        experiment="e", budget="1k", horizon=1, seed=1, data=spec(),
        model=ModelConfig(d_model=16, n_layers=1, n_head=2, d_ff=32),
        training=TrainingConfig(learning_rate=3e-3, max_epochs=max_epochs, effective_batch_size=32, batch_size=16, eval_every_steps=2,
                                checkpoint_every_steps=2),
    )


@dataclass
class LosingReporter(MemoryReporter):
    """Registration fails from the `lose_at`-th checkpoint on (another worker took the trial)."""

    lose_at: int = 2

    def on_checkpoint(self, info):  # noqa: ANN001, ANN201
        self.checkpoints.append(info)
        return len(self.checkpoints) < self.lose_at


def test_no_pruning_after_a_failed_registration(tmp_path):
    train(_cfg(), TRAIN, VAL, LosingReporter(lose_at=2), checkpoint_dir=tmp_path)
    steps = [s for s, _ in list_checkpoints(tmp_path)]
    assert steps[0] == 2 and len(steps) >= 3  # the first (registered) one and every later one stay
    pruned = tmp_path / "pruned"
    train(_cfg(), TRAIN, VAL, MemoryReporter(), checkpoint_dir=pruned)
    assert len(list_checkpoints(pruned)) <= 2  # with registrations working, only best + latest stay


@pytest.mark.parametrize("damage", ["garbage sidecar", "corrupt file", "sidecar not a hash"])
def test_corrupt_newest_checkpoint_falls_back(tmp_path, damage, caplog):
    train(_cfg(), TRAIN, VAL, LosingReporter(lose_at=1), checkpoint_dir=tmp_path)  # nothing registered: every checkpoint kept
    (s_old, old), (s_new, newest) = list_checkpoints(tmp_path)[-2:]
    if damage == "garbage sidecar":
        newest.with_name(newest.name + SIDECAR).write_bytes(b"\x00garbage{")
    elif damage == "corrupt file":
        data = bytearray(newest.read_bytes())
        data[len(data) // 2] ^= 0xFF
        newest.write_bytes(bytes(data))
    else:
        newest.with_name(newest.name + SIDECAR).write_text('{"sha256": "not-a-hash"}')
    with caplog.at_level("WARNING", logger="seqdb.train"):
        path, state = load_resumable(newest)
    assert path == old and state["progress"]["step"] == s_old
    assert any("falling back" in r.getMessage() for r in caplog.records)
    result = train(_cfg(max_epochs=3), TRAIN, VAL, MemoryReporter(), checkpoint_dir=tmp_path, resume_from=newest)
    assert result.status == "completed" and result.step > s_new


def test_no_valid_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "step-00000002.pt"
    bad.write_bytes(b"junk")
    bad.with_name(bad.name + SIDECAR).write_text("junk")
    with pytest.raises(TrainingError) as exc:
        load_resumable(bad)
    assert "step-00000002.pt" in exc.value.message and "\n" not in exc.value.message


# ---- read-only commands never create or modify a database file ------------------------
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_status_on_a_missing_path_creates_nothing(tmp_path):
    res = run_cli_inprocess("--db", f"sqlite:///{tmp_path / 'nope.db'}", "status")
    dispose_engines()
    assert_one_line_error(res, "does not exist")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind", ["zero-byte", "old revision", "rollback journal"])
def test_read_only_commands_leave_the_file_alone(tmp_path, old_revision_db, kind):
    import sqlite3

    db = tmp_path / "x.db"
    if kind == "zero-byte":
        db.write_bytes(b"")
    elif kind == "old revision":
        shutil.copy(old_revision_db, db)
    else:  # a current database in the rollback-journal mode (not WAL)
        from seqdb.db.engine import create_engine_for
        from seqdb.db.migrate import upgrade

        eng = create_engine_for(f"sqlite:///{db}")
        upgrade(eng)
        eng.dispose()
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode = DELETE")
        con.close()
    before = _digest(db)
    for args in (["status"], ["db", "current"], ["trial", "list", "--study", "1"], ["worker", "list"]):
        run_cli_inprocess("--db", f"sqlite:///{db}", *args)
        dispose_engines()
    assert _digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir() if not (p.name.endswith("-wal") and p.stat().st_size == 0)
                  and not p.name.endswith("-shm")) == ["x.db"]
    if kind != "zero-byte":
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        assert con.execute("PRAGMA journal_mode").fetchone()[0] != "wal"
        con.close()


# ---- the same YAML builds the same model on SQLite and Postgres -------------------------
def test_same_yaml_same_model_on_both_backends(tmp_path, pg_url):
    from seqdb.app.demo import demo_experiment, setup_project
    from seqdb.model.transformer import CausalTransformer
    from seqdb.runner import queue as q
    from seqdb.search.study import ensure_study

    exp = demo_experiment(quick=True)
    exp["name"], exp["budgets"], exp["max_attempts"] = "order-exp", ["10k"], 7
    # columns whose names JSONB would reorder (it sorts keys by length, then bytes)
    exp["data"]["columns"] = {"weekday": "categorical", "log_volume_change": "real", "log_range": "real", "log_return": "real"}
    shapes = {}
    for backend, url in (("sqlite", None), ("postgres", pg_url)):
        project, engine, _ = setup_project(tmp_path / backend, True, database_url=url, experiment=exp)
        study = ensure_study(engine, project, exp["name"], "10k", 1)
        lease = q.claim_trial(engine, q.register_worker(engine).worker_id, [study.study_id])
        cfg = TrialConfig.model_validate(lease.config)
        with engine.connect() as c:  # the experiment's max_attempts reached the trial rows
            assert c.execute(sa.text("SELECT DISTINCT max_attempts FROM trial")).scalars().all() == [7]
        torch.manual_seed(0)
        model = CausalTransformer(cfg.model, cfg.data)
        shapes[backend] = ([c.name for c in cfg.data.inputs], [(n, tuple(p.shape)) for n, p in model.named_parameters()])
        engine.dispose()
    dispose_engines()
    # real inputs first, categorical after, each in the order the YAML wrote them
    assert shapes["sqlite"][0] == ["log_volume_change", "log_range", "log_return", "weekday"]
    assert shapes["sqlite"] == shapes["postgres"]
