"""`seqdb run`, `seqdb stop`, `seqdb worker list`, `seqdb demo`: the runner's commands."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from seqdb.cli.common import BudgetOption, ExperimentOption, HorizonOption, console, open_db
from seqdb.errors import ConfigError

worker_app = typer.Typer(help="Workers registered in the database.", no_args_is_help=True)


def run(
    ctx: typer.Context,
    budget: BudgetOption,
    horizon: HorizonOption,
    experiment: ExperimentOption = None,
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes on this host (one per GPU with --device cuda)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    max_trials: Optional[int] = typer.Option(None, "--max-trials", min=1, help="Stop each worker after this many trials."),
    once: bool = typer.Option(False, "--once", help="Run one trial per worker, then exit."),
    lease_seconds: float = typer.Option(60.0, "--lease-seconds", min=1.0, help="Lease length; a dead worker's trial is resumed after it."),
) -> None:
    """Claim and train the study's pending trials until it is complete or told to stop."""
    from seqdb.search.plan import pick_experiment, plan_studies
    from seqdb.runner.execute import TrainExecutor
    from seqdb.runner.pool import run_pool
    from seqdb.runner.worker import WorkerSettings

    _check_device(device)
    project, engine = open_db(ctx)
    name = pick_experiment(engine, experiment)
    studies = plan_studies(engine, project, name, [budget], [horizon])
    console.print(f"study {studies[0].name} (id {studies[0].study_id}): starting {workers} worker(s) on {device}")
    settings = WorkerSettings(database_url=project.database_url, study_ids=[p.study_id for p in studies],
                              artifacts_root=str(project.artifacts_root), device=device, lease_s=lease_seconds,
                              max_trials=max_trials, once=once)
    summaries = run_pool(settings, workers, TrainExecutor(settings.artifacts_root))
    done = sum(s.trials_done for s in summaries)
    reasons = sorted({s.stop_reason for s in summaries if s.stop_reason})
    console.print(f"{done} trial(s) run by {len(summaries)} worker(s)" + (f"; stopped: {', '.join(reasons)}" if reasons else ""))


def stop(
    ctx: typer.Context,
    worker: Optional[int] = typer.Option(None, "--worker", help="Worker id to stop (see `seqdb worker list`)."),
    all_workers: bool = typer.Option(False, "--all", help="Stop every worker running now."),
    reason: str = typer.Option("seqdb stop", "--reason", help="Recorded with the request."),
) -> None:
    """Ask workers to stop: each finishes its step, checkpoints and leaves its trial resumable."""
    from seqdb.runner.queue import request_stop

    if (worker is None) == (not all_workers):
        raise ConfigError("seqdb stop: give exactly one of --worker ID or --all")
    _, engine = open_db(ctx)
    request_id = request_stop(engine, worker, reason=reason)
    target = f"worker {worker}" if worker is not None else "all running workers"
    console.print(f"stop request {request_id} for {target}; they stop after their current step")


@worker_app.command("list")
def worker_list(
    ctx: typer.Context,
    all_rows: bool = typer.Option(False, "--all", help="Include stopped and dead workers."),
) -> None:
    """Workers: host, pid, device, state, last seen, current trial."""
    from seqdb.runner.queue import list_workers

    _, engine = open_db(ctx)
    table = Table(title="workers")
    for col in ("id", "name", "device", "state", "started", "last seen", "trial", "tokens/s"):
        table.add_column(col)
    for w in list_workers(engine, include_ended=all_rows):
        table.add_row(str(w.worker_id), w.name, w.device, w.state, _ts(w.started_at), _ts(w.last_seen_at),
                      str(w.current_trial_id or "-"), f"{w.tokens_per_s:.0f}" if w.tokens_per_s else "-")
    console.print(table)


def demo(
    path: Path = typer.Option(Path("seqdb-demo"), "--path", help="Project folder to create (or reuse)."),
    quick: bool = typer.Option(False, "--quick", help="A tiny study (tests, a first look): about a minute."),
    workers: int = typer.Option(2, "--workers", min=1, help="Worker processes."),
) -> None:
    """Make a project with the S&P 500 daily data and run a small scaling study on CPU."""
    from seqdb.app.demo import run_demo

    run_demo(path, quick=quick, workers=workers, say=lambda x: console.print(x, markup=False, highlight=False, soft_wrap=isinstance(x, str)))


def _check_device(device: str) -> None:
    import re

    if not re.fullmatch(r"cpu|cuda|cuda:\d+|mps", device):
        raise ConfigError(f"--device {device!r} is not a device; allowed: cpu, cuda, cuda:N, mps")


def _ts(value) -> str:  # noqa: ANN001
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("stop")(stop)
    app.command("demo")(demo)
    app.add_typer(worker_app, name="worker")
