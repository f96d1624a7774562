"""`seqdb demo --quick` end to end: real data, the real trainer, two worker processes."""

from __future__ import annotations

import math
from pathlib import Path

import sqlalchemy as sa

from seqdb.app.demo import STDLIB_EXPERIMENT, experiment_for, stdlib_experiment
from seqdb.data.stdlib_text import STDLIB_FILES, char_category, read_stdlib_texts, stdlib_frame
from seqdb.db.engine import create_engine_for
from seqdb.hashing import file_sha256
from tests.helpers import assert_one_line_error, run_cli


def test_demo_quick_runs_a_scaling_study_end_to_end(tmp_path):
    path = tmp_path / "demo"
    result = run_cli("demo", "--quick", "--path", str(path), timeout=300)
    assert result.code == 0, result.err[-2000:]
    assert "best validation loss per budget and horizon" in result.out and "standard-library" in result.out
    assert "fit L(N) =" in result.out and "no_interval" in result.out  # 3 budgets: the fit, no interval
    assert "scaling_points" in result.out and "seqdb --project" in result.out and "dashboard" in result.out
    engine = create_engine_for(f"sqlite:///{path / 'seqdb.db'}")
    with engine.connect() as c:
        trials = c.execute(sa.text("SELECT trial_id, state, step, best_val_loss, lease_owner, batch_config, tokens, flops, param_count "
                                   "FROM trial")).all()
        assert len(trials) == 3 and {t.state for t in trials} == {"completed"}
        assert all(t.step == 12 and 0 < t.best_val_loss < math.log(100) and t.batch_config for t in trials)
        assert all(t.tokens == 12 * 32 * 64 and t.flops > 6 * t.param_count * t.tokens for t in trials)  # 6 N D + attention
        workers = {w for (w,) in c.execute(sa.text("SELECT worker_id FROM worker"))}
        # two worker processes ran; which of them trains the 3 short trials is the queue's choice
        # (a worker that warmed up first may claim them all)
        assert len(workers) == 2 and {t.lease_owner for t in trials} <= workers
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


def test_the_full_demo_scales_with_equal_effort():
    from seqdb.config.trial import DataSpec, InputColumn, TargetSpec
    from seqdb.experiment.schema import ExperimentConfig
    from seqdb.search.study import plan_study, study_key

    exp = ExperimentConfig.model_validate(stdlib_experiment(quick=False))
    spec = DataSpec(context_length=64, inputs=[InputColumn(name="char", kind="categorical", vocab_size=99)],
                    targets=[TargetSpec(name="char", kind="categorical", n_classes=99)])  # 97 characters + unknown + other
    plans = [plan_study(exp, study_key(exp, b, 1), spec) for b in exp.budgets]
    counts = [p.trials[0].counts.total for p in plans]
    assert len(plans) >= 4 and counts == sorted(counts) and counts[-1] / counts[0] >= 30
    assert all(len(p.ctx.architectures) == 1 and p.n_trials == 3 for p in plans)  # equal effort: same grid per budget
    assert {t.config.training.max_steps for p in plans for t in p.trials} == {500}  # same tokens per trial
    assert experiment_for("sp500", quick=False)["target"]["task"] == "direction"
    assert stdlib_experiment(quick=False) == STDLIB_EXPERIMENT


def test_stdlib_text_is_a_fixed_subset_of_the_running_interpreters_own_files():
    texts = read_stdlib_texts()
    assert [name for name, _ in texts] == [f for f in STDLIB_FILES if f in dict(texts)] and len(texts) == len(STDLIB_FILES)
    frame = stdlib_frame(files=STDLIB_FILES[:8], max_chars=500)
    assert frame.height == 8 * 500 and frame["sequenceId"].n_unique() == 8
    first = dict(texts)[STDLIB_FILES[0]][:500]
    assert frame.filter(frame["sequenceId"] == 0)["char"].to_list() == [char_category(c) for c in first]
    assert [char_category(c) for c in " \n\tAé"] == ["space", "newline", "tab", "A", "other"]


def test_unknown_demo_data_is_one_line(tmp_path):
    assert_one_line_error(run_cli("demo", "--quick", "--data", "weather", "--path", str(tmp_path / "d"), timeout=120),
                          "--data 'weather'", "stdlib, sp500")
    assert not (tmp_path / "d").exists()  # nothing written


def test_sp500_demo_stays_available_and_says_direction_is_near_chance(tmp_path):
    result = run_cli("demo", "--quick", "--data", "sp500", "--workers", "1", "--path", str(tmp_path / "sp"), timeout=300)
    assert result.code == 0, result.err[-2000:]
    assert "S&P 500 daily" in result.out and "near chance" in result.out and "ln 2 = 0.693" in result.out
    assert "best validation loss per budget and horizon" in result.out and "no fit" in result.out  # 2 budgets: no fit
