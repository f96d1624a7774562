"""One seeded SQLite database per module for the dashboard tests (the pages only read).

The AppTest pages run on SQLite only: they exercise the dashboard's code, and every view they
query is checked on SQLite AND Postgres by tests/views. Running the Streamlit pages twice cost
minutes on a loaded machine without checking anything new.

Besides tests/views/seed.py's fixture, experiment `hp` has one study searched over three
parameters (learning_rate, d_model, dropout: slice and contour plots) whose trials record
losses, throughput and a learning rate (the learning-curve axes).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from seqdb.db.engine import create_engine_for, dispose_engines, session_scope
from seqdb.db.models import Budget, Experiment, Metric, Study, Trial, utcnow
from tests.views.seed import migrate_and_seed, trial_config

HP_TRIALS = 10  # numbers 0..9; 7 and 8 pruned, the rest completed
HP_PRUNED = {7, 8}


def hp_loss(lr: float, d_model: int, dropout: float) -> float:
    return 1.0 + abs(lr - 3e-3) * 50 + 32 / d_model + dropout


def _hp_metrics(s, trial_id: int, final: float, steps: int = 6) -> None:
    for k in range(1, steps + 1):
        rows = {"train_loss": final + 1.0 / k, "val_loss": final + 0.5 / k, "tokens_per_s": 40_000.0 + 100 * k,
                "lr": 1e-3 * k / steps}
        for name, value in rows.items():
            s.add(Metric(trial_id=trial_id, step=10 * k, epoch=k, name=name, value=value, time=1.7e9 + 60 * k))


def seed_hp(url: str) -> dict[int, float]:
    """Add experiment `hp` (see the module docstring); {trial number: best_val_loss}."""
    eng = create_engine_for(url)
    losses = {}
    with session_scope(eng) as s:
        exp = Experiment(name="hp", yaml_text="name: hp", content_hash="h" * 64, config={})
        s.add(exp)
        s.flush()
        b = Budget(experiment_id=exp.experiment_id, label="2M", n_params=2_000_000)
        s.add(b)
        s.flush()
        st = Study(experiment_id=exp.experiment_id, budget_id=b.budget_id, horizon=1, name="hp/2M/h1", strategy="tpe",
                   n_trials=12, max_epochs=6, objectives=[{"name": "val_loss", "direction": "minimize"}], config={})
        s.add(st)
        s.flush()
        for n in range(HP_TRIALS):
            lr, d_model, dropout = 1e-3 * (1 + n % 4), 32 * (1 + n % 3), 0.05 * (n % 2)
            losses[n] = hp_loss(lr, d_model, dropout)
            state = "pruned" if n in HP_PRUNED else "completed"
            t = Trial(study_id=st.study_id, number=n, config_hash=f"hp-{n}", param_count=1_950_000 + n,
                      config=trial_config(d_model, lr, 1, "2M"), params={"learning_rate": lr, "d_model": d_model, "dropout": dropout},
                      state=state, best_val_loss=losses[n], values=[losses[n]], epochs_done=6, step=60,
                      started_at=utcnow() - timedelta(minutes=60 - 5 * n), finished_at=utcnow() - timedelta(minutes=58 - 5 * n))
            s.add(t)
            s.flush()
            _hp_metrics(s, t.trial_id, losses[n])
    eng.dispose()
    return losses


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory):
    """(url, Seeded, hp losses) of a migrated, seeded SQLite database; read-only tests only."""
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'seqdb.db'}"
    seeded = migrate_and_seed(url)
    yield url, seeded, seed_hp(url)
    dispose_engines()
