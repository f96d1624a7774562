"""`seqdb demo`: the README's main command. From nothing to a scaling table on real data.

    project   seqdb init PATH (SQLite)
    data      the S&P 500 daily series shipped with the `arch` package, in long format
    experiment  direction of the next-day / next-week return from 4 daily features,
                3 budgets x 2 horizons, 3 sampled configurations (learning rate x dropout) per study, up to 4 epochs, early stopping
    run       2 worker processes drain all 6 studies from the shared queue
    result    best validation loss per budget and horizon (with the trial ids), and the
              commands to explore further

`--quick` runs 2 budgets x 1 horizon, one short trial each (tests, a first look).
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa
import yaml
from rich.table import Table

from seqdb.db.engine import create_engine_for, session_scope
from seqdb.db.models import Budget, Study, Trial
from seqdb.project import PROJECT_FILE, init_project, load_project

DEMO_EXPERIMENT = {
    "name": "sp500-demo",
    "description": "S&P 500 daily direction: how does validation loss scale with parameters at horizons 1 and 5?",
    "seed": 7,
    "data": {
        "path": "data/sp500.csv",
        "sequence_column": "sequenceId",
        "position_column": "itemPosition",
        "columns": {"log_return": "real", "log_range": "real", "log_volume_change": "real", "weekday": "categorical"},
        "stride": 2,
    },
    "target": {"column": "log_return", "task": "direction"},
    "context_length": 32,
    "horizons": [1, 5],
    "split": {"validation": 0.15, "test": 0.15},
    "budgets": ["10k", "30k", "100k"],
    "tolerance": 0.25,
    "search": {
        "strategy": "sample",
        "n_samples": 3,
        "objectives": ["val_loss"],
        "space": {"learning_rate": [1.0e-3, 3.0e-3], "dropout": [0.0, 0.1]},
    },
    "training": {"max_epochs": 4, "effective_batch_size": 64, "early_stopping": {"patience": 2, "min_delta": 0.0}},
}


def demo_experiment(quick: bool) -> dict:
    exp = copy.deepcopy(DEMO_EXPERIMENT)
    if quick:
        exp["name"] = "sp500-demo-quick"
        exp["budgets"], exp["horizons"] = ["10k", "30k"], [1]
        exp["search"].update(n_samples=1, space={"learning_rate": [3.0e-3], "dropout": [0.0]})
        exp["training"].update(max_epochs=1, max_steps=12)
    return exp


def setup_project(path: Path, quick: bool, database_url: str | None = None, experiment: dict | None = None):  # noqa: ANN201
    """Project, data file and registered experiment (each step skipped when already done);
    `experiment` replaces the demo's definition (tests)."""
    from seqdb.data.sp500 import write_sp500
    from seqdb.experiment.registry import register_experiment

    path = Path(path)
    project = load_project(db=database_url, project=path) if (path / PROJECT_FILE).is_file() else init_project(path, database_url)
    data = project.root / "data" / "sp500.csv"
    if not data.is_file():
        write_sp500(data)
    exp = experiment or demo_experiment(quick)
    config_path = project.root / "configs" / f"{exp['name']}.yaml"
    config_path.write_text(yaml.safe_dump(exp, sort_keys=False), encoding="utf-8")
    engine = create_engine_for(project.database_url)
    register_experiment(engine, config_path)
    return project, engine, exp


Say = Callable[[Any], None]
"""Where the demo's output goes: text lines and rich tables (the CLI passes its console's print)."""


def run_demo(path: Path, *, quick: bool = False, workers: int = 2, database_url: str | None = None, say: Say | None = None) -> list[dict]:
    """Set up the demo project and run its scaling study; returns the per-study table rows."""
    from seqdb.runner.execute import TrainExecutor
    from seqdb.runner.pool import run_pool
    from seqdb.runner.worker import WorkerSettings
    from seqdb.search.plan import plan_studies

    if say is None:
        from rich.console import Console

        say = Console().print
    t0 = time.monotonic()
    say(f"seqdb demo{' --quick' if quick else ''}: project {Path(path).resolve()}")
    project, engine, exp = setup_project(path, quick, database_url)
    say(f"data: S&P 500 daily ({project.root / 'data' / 'sp500.csv'}); experiment {exp['name']}: "
                  f"budgets {', '.join(exp['budgets'])} x horizons {', '.join(map(str, exp['horizons']))}")
    studies = plan_studies(engine, project, exp["name"], exp["budgets"], exp["horizons"])
    say(f"{len(studies)} studies, {_count_trials(engine, [p.study_id for p in studies])} trials; "
                  f"{workers} workers on cpu (setup {time.monotonic() - t0:.0f}s)")
    settings = WorkerSettings(database_url=project.database_url, study_ids=[p.study_id for p in studies],
                              artifacts_root=str(project.artifacts_root), lease_s=30.0, progress_every_s=10.0,
                              threads=max(1, (os.cpu_count() or 1) // workers))
    run_pool(settings, workers, TrainExecutor(settings.artifacts_root))
    rows = scaling_rows(engine, project.database_url, exp["name"], [p.study_id for p in studies])
    say(scaling_table(rows))
    for line in next_steps(project.root, rows):
        say(line)
    say(f"demo finished in {time.monotonic() - t0:.0f}s")
    engine.dispose()
    return rows


def _count_trials(engine, study_ids: list[int]) -> int:  # noqa: ANN001
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(sa.func.count()).select_from(Trial).where(Trial.study_id.in_(study_ids))).scalar_one()


def scaling_rows(engine, database_url: str, experiment: str, study_ids: list[int]) -> list[dict]:  # noqa: ANN001
    """Per study: its best trial as the `scaling_points` view defines it (the same answer
    `seqdb sql` and `seqdb scaling` give) and the effort spent."""
    from seqdb.views import connect, sql

    with connect(database_url) as vc:
        points = sql(vc, "SELECT horizon, budget, best_val_loss, trial_id, param_count FROM scaling_points WHERE experiment = ?",
                     [experiment]).to_pylist()
    best = {(p["horizon"], p["budget"]): p for p in points}
    with session_scope(engine, write=False) as s:
        studies = s.execute(
            sa.select(Study.study_id, Study.horizon, Budget.label, Budget.n_params, sa.func.count(Trial.trial_id).label("trials"),
                      sa.func.count(Trial.trial_id).filter(Trial.state == "completed").label("completed"),
                      sa.func.coalesce(sa.func.sum(Trial.step), 0).label("steps"))
            .join(Budget, Budget.budget_id == Study.budget_id).outerjoin(Trial, Trial.study_id == Study.study_id)
            .where(Study.study_id.in_(study_ids)).group_by(Study.study_id, Study.horizon, Budget.label, Budget.n_params)
            .order_by(Study.horizon, Budget.n_params)
        ).all()
    out = []
    for st in studies:
        p = best.get((st.horizon, st.label), {})
        out.append({"study_id": st.study_id, "budget": st.label, "budget_params": st.n_params, "horizon": st.horizon,
                    "best_val_loss": p.get("best_val_loss"), "trial_id": p.get("trial_id"), "param_count": p.get("param_count"),
                    "trials": st.trials, "completed": st.completed, "steps": int(st.steps)})
    return out


def scaling_table(rows: list[dict]) -> Table:
    table = Table(title="best validation loss per budget and horizon")
    for col in ("horizon", "budget", "params", "best val loss", "trial", "trials done", "steps"):
        table.add_column(col, justify="right")
    for r in rows:
        loss = f"{r['best_val_loss']:.4f}" if r["best_val_loss"] is not None else "-"
        table.add_row(str(r["horizon"]), r["budget"], f"{r['param_count']:,}" if r["param_count"] else "-", loss,
                      str(r["trial_id"] or "-"), f"{r['completed']}/{r['trials']}", str(r["steps"]))
    return table


def next_steps(root: Path, rows: list[dict]) -> list[str]:
    """The commands to explore the results, one line each."""
    where = f"--project {root}"
    first = next((r for r in rows if r["trial_id"] is not None), rows[0] if rows else None)
    lines = [
        f'seqdb {where} sql "SELECT horizon, budget, param_count, best_val_loss, trial_id FROM scaling_points ORDER BY horizon, param_count"',
        f"seqdb {where} status",
        f"seqdb {where} dashboard",
    ]
    if first is not None:
        lines.insert(1, f"seqdb {where} best --budget {first['budget']} --horizon {first['horizon']}")
    return ["explore:", *(f"  {line}" for line in lines)]
