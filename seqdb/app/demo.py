"""`seqdb demo`: the README's main command. From nothing to a scaling curve that really scales.

    project     seqdb init PATH (SQLite)
    data        `--data stdlib` (default): the characters of a fixed subset of the Python
                standard library's own source files, read from the running interpreter's Lib
                folder (`seqdb.data.stdlib_text`; nothing is downloaded);
                `--data sp500`: the S&P 500 daily series shipped with the `arch` package
    experiment  stdlib: next character from the last 64 (character-level language model),
                6 budgets 4k .. 120k parameters (32x), one 2-layer architecture per budget,
                equal effort per budget: a grid of 3 learning rates, each trial 500 steps of
                32 windows (1M tokens), then one seed replicate of each budget's best
                configuration (the fit's noise: the seed spread); sp500: direction of the
                next-day / next-week return (near chance at these sizes, and the demo says so)
    run         2 worker processes drain every study from the shared queue
    result      the scaling table (best validation loss per budget, trial ids, effort), the
                fitted L(N) = E + A N^-alpha with its 95% interval and flags, and the commands
                to explore further (`seqdb scaling`, `seqdb dashboard`)

`--quick` runs 3 budgets, one short trial each (tests, a first look).
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
from seqdb.errors import ConfigError
from seqdb.project import PROJECT_FILE, init_project, load_project

STDLIB_EXPERIMENT = {
    "name": "stdlib-chars",
    "description": "Next character of Python's standard-library source: how does validation loss scale with parameters?",
    "seed": 7,
    "data": {
        "path": "data/stdlib_text.parquet",
        "sequence_column": "sequenceId",
        "position_column": "itemPosition",
        "columns": {"char": "categorical"},
        "stride": 16,
    },
    "target": {"column": "char", "task": "next_category"},
    "context_length": 64,
    "horizons": [1],
    "split": {"validation": 0.1, "test": 0.1},
    "budgets": ["4k", "12k", "20k", "33k", "65k", "120k"],
    "tolerance": 0.2,  # one architecture of the 2-layer family per budget
    "model": {"positional": "rope"},
    "architecture_grid": {"d_model": [8, 16, 24, 32, 48, 64], "n_layers": [2]},
    "search": {
        "strategy": "grid",
        "objectives": ["val_loss"],
        "space": {"learning_rate": [2.0e-3, 4.0e-3, 8.0e-3]},
    },
    "training": {"max_epochs": 1, "max_steps": 500, "effective_batch_size": 32, "warmup_steps": 40,
                 "eval_every_steps": 250, "weight_decay": 0.0, "early_stopping": {"patience": 3, "min_delta": 0.0}},
}

SP500_EXPERIMENT = {
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
DATA_KINDS = ("stdlib", "sp500")
DEMO_SEEDS = 1  # stdlib (not --quick): seed replicates of each budget's best trial, for the noise of the fit
SP500_NOTE = ("note: S&P 500 direction is near chance at these sizes (a coin flip has loss ln 2 = 0.693): expect a flat "
              "curve whose fit is flagged; `seqdb demo` (standard-library text) shows a curve that scales")


def stdlib_experiment(quick: bool) -> dict:
    """The standard-library text experiment; `quick`: 3 budgets, one 12-step trial each."""
    exp = copy.deepcopy(STDLIB_EXPERIMENT)
    if quick:
        exp["name"] = "stdlib-chars-quick"
        exp["budgets"] = ["4k", "20k", "120k"]
        exp["search"].update(space={"learning_rate": [8.0e-3]})
        exp["training"].update(max_steps=12, eval_every_steps=None, max_eval_batches=4)
    return exp


def demo_experiment(quick: bool) -> dict:
    """The S&P 500 experiment; `quick`: 2 budgets x 1 horizon, one 12-step trial each."""
    exp = copy.deepcopy(SP500_EXPERIMENT)
    if quick:
        exp["name"] = "sp500-demo-quick"
        exp["budgets"], exp["horizons"] = ["10k", "30k"], [1]
        exp["search"].update(n_samples=1, space={"learning_rate": [3.0e-3], "dropout": [0.0]})
        exp["training"].update(max_epochs=1, max_steps=12)
    return exp


def experiment_for(data: str, quick: bool) -> dict:
    if data not in DATA_KINDS:
        raise ConfigError(f"--data {data!r} is not a demo data set (allowed: {', '.join(DATA_KINDS)})")
    return stdlib_experiment(quick) if data == "stdlib" else demo_experiment(quick)


def _write_data(root: Path, exp: dict) -> Path:
    """The experiment's data file under the project (written once)."""
    out = root / exp["data"]["path"]
    if not out.is_file():
        if out.name.startswith("sp500"):
            from seqdb.data.sp500 import write_sp500

            write_sp500(out)
        else:
            from seqdb.data.stdlib_text import write_stdlib_text

            write_stdlib_text(out)
    return out


def setup_project(path: Path, quick: bool, database_url: str | None = None, experiment: dict | None = None,  # noqa: ANN201
                  data: str = "stdlib"):
    """Project, data file and registered experiment (each step skipped when already done);
    `experiment` replaces the demo's definition (tests)."""
    from seqdb.experiment.registry import register_experiment

    path = Path(path)
    project = load_project(db=database_url, project=path) if (path / PROJECT_FILE).is_file() else init_project(path, database_url)
    exp = experiment or experiment_for(data, quick)
    _write_data(project.root, exp)
    config_path = project.root / "configs" / f"{exp['name']}.yaml"
    config_path.write_text(yaml.safe_dump(exp, sort_keys=False), encoding="utf-8")
    engine = create_engine_for(project.database_url)
    register_experiment(engine, config_path)
    return project, engine, exp


Say = Callable[[Any], None]
"""Where the demo's output goes: text lines and rich tables (the CLI passes its console's print)."""


def _describe(exp: dict, data: str) -> str:
    what = ("characters of Python standard-library source files (seqdb/data/stdlib_text.py)" if data == "stdlib"
            else "S&P 500 daily")
    tr = exp["training"]
    length = f"{tr['max_steps']} steps x {tr['effective_batch_size']} windows" if tr.get("max_steps") else f"up to {tr['max_epochs']} epochs"
    return (f"data: {what}; experiment {exp['name']}: budgets {', '.join(exp['budgets'])} x horizons "
            f"{', '.join(map(str, exp['horizons']))}; search {exp['search']['strategy']} over "
            f"{', '.join(exp['search']['space'])}, the same for every budget; each trial {length}")


def run_demo(path: Path, *, quick: bool = False, workers: int = 2, database_url: str | None = None, say: Say | None = None,
             data: str = "stdlib") -> list[dict]:
    """Set up the demo project and run its scaling study; returns the per-study table rows."""
    from seqdb.runner.execute import TrainExecutor
    from seqdb.runner.pool import run_pool
    from seqdb.runner.worker import WorkerSettings
    from seqdb.search.plan import plan_studies

    if say is None:
        from rich.console import Console

        say = Console().print
    t0 = time.monotonic()
    exp = experiment_for(data, quick)  # an unknown --data fails before anything is written
    say(f"seqdb demo{' --quick' if quick else ''} --data {data}: project {Path(path).resolve()}")
    project, engine, exp = setup_project(path, quick, database_url, experiment=exp)
    say(_describe(exp, data))
    studies = plan_studies(engine, project, exp["name"], exp["budgets"], exp["horizons"])
    say(f"{len(studies)} studies, {_count_trials(engine, [p.study_id for p in studies])} trials; "
        f"{workers} workers on cpu (setup {time.monotonic() - t0:.0f}s)")
    settings = WorkerSettings(database_url=project.database_url, study_ids=[p.study_id for p in studies],
                              artifacts_root=str(project.artifacts_root), lease_s=30.0, progress_every_s=10.0,
                              threads=max(1, (os.cpu_count() or 1) // workers))
    run_pool(settings, workers, TrainExecutor(settings.artifacts_root))
    if not quick and data == "stdlib":
        _run_replicates(engine, exp, settings, workers, say)
    rows = scaling_rows(engine, project.database_url, exp["name"], [p.study_id for p in studies])
    say(scaling_table(rows))
    for line in fit_lines(project.database_url, exp["name"]) + ([SP500_NOTE] if data == "sp500" else []):
        say(line)
    for line in next_steps(project.root, rows, exp["name"]):
        say(line)
    say(f"demo finished in {time.monotonic() - t0:.0f}s")
    engine.dispose()
    return rows


def _run_replicates(engine, exp: dict, settings, workers: int, say: Say) -> None:  # noqa: ANN001
    """Rerun each budget's best configuration with DEMO_SEEDS more seeds (`seqdb replicate`): the fit
    then uses each budget's seed mean and the seed spread as its noise (docs/scaling.md)."""
    from seqdb.runner.execute import TrainExecutor
    from seqdb.runner.pool import run_pool
    from seqdb.search.replicate import add_replicates

    for h in exp["horizons"]:
        added = [r for r in add_replicates(engine, exp["name"], h, seeds=DEMO_SEEDS) if r.created]
        if added:
            say(f"horizon {h}: {len(added)} seed replicates of the budgets' best configurations")
    run_pool(settings, workers, TrainExecutor(settings.artifacts_root))


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


def _iv(ci95: dict, key: str) -> str:
    return f"[{ci95[key][0]:.3g}, {ci95[key][1]:.3g}]" if key in ci95 else "(no interval)"


def fit_lines(database_url: str, experiment: str) -> list[str]:
    """Per horizon: the fitted L(N) with its 95% intervals and flags (as `seqdb scaling` fits it)."""
    from seqdb.views import connect
    from seqdb.views.scaling import scaling_report

    with connect(database_url) as vc:
        report = scaling_report(vc, experiment=experiment)
    lines = []
    for hs in report:
        if hs.fit is None:
            lines.append(f"horizon {hs.horizon}: no fit ({hs.message})")
            continue
        f, p = hs.fit, hs.fit.params
        lines.append(f"horizon {hs.horizon}: fit L(N) = {p['E']:.3g} + {p['A']:.3g}*N^-{p['alpha']:.3f}  "
                     f"(K = {f.K} budgets; 95% intervals ({f.ci_method}): alpha {_iv(f.ci95, 'alpha')}, E {_iv(f.ci95, 'E')})")
        lines.extend(f"  flag {flag}" for flag in f.flags)
        if not f.flags:
            lines.append("  no flags: the loss falls with N and alpha's interval excludes 0")
    return lines


def next_steps(root: Path, rows: list[dict], experiment: str = "") -> list[str]:
    """The commands to explore the results, one line each."""
    where = f"--project {root}"
    first = next((r for r in rows if r["trial_id"] is not None), rows[0] if rows else None)
    lines = [
        f"seqdb {where} scaling{f' --experiment {experiment}' if experiment else ''}",
        f'seqdb {where} sql "SELECT horizon, budget, param_count, best_val_loss, trial_id FROM scaling_points ORDER BY horizon, param_count"',
        f"seqdb {where} status",
        f"seqdb {where} dashboard",
    ]
    if first is not None:
        lines.insert(2, f"seqdb {where} best --budget {first['budget']} --horizon {first['horizon']}")
    return ["explore:", *(f"  {line}" for line in lines)]
