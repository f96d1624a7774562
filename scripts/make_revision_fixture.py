"""Write tests/db/fixtures/<revision>.db: a SQLite database at the current head with a few
rows in every table. Run once per released revision and commit the file; the migration test
upgrades every fixture to head and checks the rows survive."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from seqdb.db.engine import create_engine_for
from seqdb.db.migrate import head_revision, upgrade

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "db" / "fixtures"

ROWS = [
    ("experiment", {"experiment_id": 1, "name": "fixture", "yaml_text": "name: fixture\n", "content_hash": "h" * 64,
                    "config": '{"name": "fixture"}', "created_at": "2026-01-01 00:00:00"}),
    ("budget", {"budget_id": 1, "experiment_id": 1, "label": "50k", "n_params": 50000, "tolerance": 0.25,
                "created_at": "2026-01-01 00:00:00"}),
    ("architecture", {"architecture_id": 1, "budget_id": 1, "ordinal": 0, "d_model": 32, "n_layers": 2, "n_head": 2,
                      "n_kv_heads": 2, "d_ff": 64, "param_count": 48000, "non_embedding_params": 40000, "config": "{}"}),
    ("study", {"study_id": 1, "experiment_id": 1, "budget_id": 1, "horizon": 1, "name": "fixture/50k/h1",
               "strategy": "grid", "n_trials": 1, "max_epochs": 1, "pruner": "none", "kind": "search",
               "objectives": '[{"name": "val_loss", "direction": "minimize"}]', "config": "{}", "state": "active",
               "created_at": "2026-01-01 00:00:00"}),
    ("trial", {"trial_id": 1, "study_id": 1, "number": 0, "config_hash": "c" * 64, "config": "{}", "state": "completed",
               "attempt": 1, "max_attempts": 3, "step": 10, "epochs_done": 1, "best_val_loss": 0.69,
               "created_at": "2026-01-01 00:00:00"}),
    ("metric", {"metric_id": 1, "trial_id": 1, "step": 10, "epoch": 1, "name": "val_loss", "value": 0.69, "time": 1.7e9}),
    ("checkpoint", {"checkpoint_id": 1, "trial_id": 1, "path": "ckpt.pt", "bytes": 10, "sha256": "s" * 64, "step": 10,
                    "epoch": 1, "is_best": True, "attempt": 1, "created_at": "2026-01-01 00:00:00"}),
]


def main() -> Path:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    path = FIXTURES / f"{head_revision()}.db"
    path.unlink(missing_ok=True)
    engine = create_engine_for(f"sqlite:///{path}")
    upgrade(engine)
    with engine.begin() as conn:
        for table, row in ROWS:
            cols = ", ".join(row)
            conn.execute(sa.text(f"INSERT INTO {table} ({cols}) VALUES ({', '.join(':' + c for c in row)})"), row)
    engine.dispose()
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode = DELETE")  # one self-contained file to commit
    raw.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


if __name__ == "__main__":
    print(main())
