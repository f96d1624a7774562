"""`seqdb demo --quick` end to end: real data, the real trainer, two worker processes."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from seqdb.db.engine import create_engine_for
from seqdb.hashing import file_sha256
from tests.helpers import run_cli


def test_demo_quick_runs_a_scaling_study_end_to_end(tmp_path):
    path = tmp_path / "demo"
    result = run_cli("demo", "--quick", "--path", str(path), timeout=300)
    assert result.code == 0, result.err[-2000:]
    assert "best validation loss per budget and horizon" in result.out
    assert "scaling_points" in result.out and "seqdb --project" in result.out and "dashboard" in result.out
    engine = create_engine_for(f"sqlite:///{path / 'seqdb.db'}")
    with engine.connect() as c:
        trials = c.execute(sa.text("SELECT trial_id, state, step, best_val_loss, lease_owner, batch_config FROM trial")).all()
        assert len(trials) == 2 and {t.state for t in trials} == {"completed"}
        assert all(t.step == 12 and 0 < t.best_val_loss < 2 and t.batch_config for t in trials)
        assert len({t.lease_owner for t in trials}) == 2, "both workers should have trained"
        for t in trials:
            steps = c.execute(sa.text("SELECT COUNT(DISTINCT step) FROM metric WHERE trial_id = :t AND name = 'train_loss'"), {"t": t.trial_id}).scalar_one()
            assert steps == 12
            assert c.execute(sa.text("SELECT COUNT(*) FROM metric WHERE trial_id = :t AND name = 'val_loss'"), {"t": t.trial_id}).scalar_one() >= 1
        ckpts = c.execute(sa.text("SELECT path, sha256, bytes FROM checkpoint")).all()
        assert ckpts
        live = [k for k in ckpts if (path / "artifacts").resolve() in Path(k.path).resolve().parents]
        assert len(live) == len(ckpts)
        kept = [k for k in ckpts if Path(k.path).is_file()]
        assert kept and all(file_sha256(Path(k.path)) == k.sha256 for k in kept)
        assert {w for (w,) in c.execute(sa.text("SELECT state FROM worker"))} == {"stopped"}
    engine.dispose()
    again = run_cli("demo", "--quick", "--path", str(path), timeout=300)  # rerun: nothing left to do, same table
    assert again.code == 0 and "best validation loss" in again.out, again.err[-2000:]
