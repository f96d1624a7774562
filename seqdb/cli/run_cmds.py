"""`seqdb run`, `seqdb stop`, `seqdb worker list`, `seqdb demo`: the runner's commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from seqdb.cli.common import ExperimentOption, console, open_db
from seqdb.errors import ConfigError

worker_app = typer.Typer(help="Workers registered in the database.", no_args_is_help=True)


def run(
    ctx: typer.Context,
    budget: Optional[list[str]] = typer.Option(None, "--budget", help="Only this budget (repeatable), e.g. 20M, 500k; default: every budget of the experiment."),
    horizon: Optional[list[int]] = typer.Option(None, "--horizon", help="Only this horizon (repeatable); default: every horizon of the experiment."),
    experiment: ExperimentOption = None,
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes on this host (one per GPU with --device cuda)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    gpus: Optional[str] = typer.Option(None, "--gpus", help="GPU ids, one pinned worker each (CUDA_VISIBLE_DEVICES), e.g. 0,1,3."),
    ddp: int = typer.Option(1, "--ddp", min=1, help="Processes per trial: DDP across G processes of this host; rank 0 claims and records."),
    max_trials: Optional[int] = typer.Option(None, "--max-trials", min=1, help="Stop each worker after this many trials."),
    once: bool = typer.Option(False, "--once", help="Run one trial per worker, then exit."),
    lease_seconds: float = typer.Option(60.0, "--lease-seconds", min=1.0, help="Lease length; a dead worker's trial is resumed after it."),
    live: Optional[bool] = typer.Option(None, "--live/--no-live", help="One live progress table (default on a terminal); --no-live prints a line every 30 s and each worker's lines."),
    warn_hours: float = typer.Option(1.0, "--warn-hours", min=0.0, help="Warn before a budget estimated to take longer than this."),
) -> None:
    """Run every (budget, horizon) study of the experiment with one pool of workers, until
    all are complete or told to stop.

    Example: seqdb run --experiment sp500 --budget 2M --budget 20M --workers 2
    """
    from seqdb.runner.progress import ExperimentProgress
    from seqdb.runner.worker import WorkerSettings
    from seqdb.search.plan import pick_experiment, plan_studies

    _check_device(device)
    device, workers, gpu_ids = _devices(device, workers, gpus, ddp)
    project, engine = open_db(ctx)
    name = pick_experiment(engine, experiment)
    budgets, horizons = _selection(engine, name, budget, horizon)
    studies = plan_studies(engine, project, name, budgets, horizons)
    ids = [p.study_id for p in studies]
    what = studies[0].name if len(studies) == 1 else f"{len(studies)} studies of {name} ({', '.join(budgets)} x h {', '.join(map(str, horizons))})"
    console.print(f"{what} (id {', '.join(map(str, ids))}): starting {workers} worker(s) on {device}")
    _warn_long(engine, ids, device, workers, warn_hours)
    live = sys.stdout.isatty() if live is None else live
    settings = WorkerSettings(database_url=project.database_url, study_ids=ids, artifacts_root=str(project.artifacts_root),
                              device=device, lease_s=lease_seconds, max_trials=max_trials, once=once, progress=not live)
    display = ExperimentProgress(engine, name, ids, live=live, console=console).start()
    try:
        summaries = _run_workers(settings, workers, ddp, gpu_ids)
    finally:
        late = _ignore_late_signals()
        display.stop()
    try:
        _report(display, summaries, live)
    finally:
        _restore_signals(late)


def _report(display, summaries: list, live: bool) -> None:  # noqa: ANN001 - an ExperimentProgress
    from seqdb.runner.worker import check_summaries

    if not live:  # the live table's last frame already says it
        console.print(display.line(), markup=False, highlight=False)
    done = sum(s.trials_done for s in summaries)
    reasons = sorted({s.stop_reason for s in summaries if s.stop_reason})
    console.print(f"{done} trial(s) run by {len(summaries)} worker(s)" + (f"; stopped: {', '.join(reasons)}" if reasons else ""))
    check_summaries(summaries)  # non-zero exit: failed trials, or a worker stopped on an environment fault


def _run_workers(settings, workers: int, ddp: int, gpu_ids: Optional[list[str]]) -> list:  # noqa: ANN001
    """One pool of `workers` processes claiming across every study (or one DDP group)."""
    if ddp > 1:
        from seqdb.cluster.ddp import run_ddp

        return run_ddp(settings, ddp, gpus=gpu_ids)
    from seqdb.runner.execute import TrainExecutor
    from seqdb.runner.pool import run_pool

    return run_pool(settings, workers, TrainExecutor(settings.artifacts_root), gpus=gpu_ids)


def _ignore_late_signals() -> dict:
    """The workers are done: a stop signal from now on (a scheduler's preemption racing the
    end) has nothing left to stop and must not turn a finished run into a killed one.
    Returns the handlers to put back (`_restore_signals`)."""
    import signal

    from seqdb.runner.worker import STOP_SIGNALS

    return {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}


def _restore_signals(old: dict) -> None:
    import signal

    for signum, handler in old.items():
        signal.signal(signum, handler)


def _devices(device: str, workers: int, gpus: Optional[str], ddp: int) -> tuple[str, int, Optional[list[str]]]:
    """(device, workers, GPU ids) from --device / --workers / --gpus / --ddp."""
    if ddp > 1 and workers > 1:
        raise ConfigError(f"--ddp {ddp} runs one worker of {ddp} processes; drop --workers {workers} (start one `seqdb run --ddp` per group of GPUs)")
    if gpus is None:
        return device, workers, None
    from seqdb.runner.gpus import parse_gpus

    ids = parse_gpus(gpus)
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--gpus {gpus} pins the workers to those GPUs; it cannot be combined with --device {device}")
    if ddp > 1 and len(ids) != ddp:
        raise ConfigError(f"--ddp {ddp} with --gpus {gpus}: give exactly {ddp} GPU ids, one per process")
    return "cuda", len(ids) if workers == 1 and ddp == 1 else workers, ids


def _selection(engine, experiment: str, budgets: Optional[list[str]], horizons: Optional[list[int]]) -> tuple[list[str], list[int]]:  # noqa: ANN001
    """The (budgets, horizons) to run: those given, else every one of the experiment."""
    from seqdb.experiment.registry import get_experiment

    _, cfg = get_experiment(engine, experiment)
    return [str(b) for b in (budgets or cfg.budgets)], list(dict.fromkeys(horizons or cfg.horizons))


def _warn_long(engine, study_ids: list[int], device: str, workers: int, warn_hours: float) -> None:  # noqa: ANN001
    """Print the estimated time of each budget that runs long on this device (FLOPs x steps
    / measured throughput) and what would make it shorter; never refuses."""
    from seqdb.search.plan import budget_estimates, long_run_warnings, measure_flops_per_s, trial_costs

    costs = trial_costs(engine, study_ids)
    if not costs:
        return
    rate = measure_flops_per_s(device)
    for line in long_run_warnings(budget_estimates(costs, rate), device, rate, workers, limit_s=warn_hours * 3600):
        console.print(f"warning: {line}", markup=False, highlight=False)


def stop(
    ctx: typer.Context,
    worker: Optional[int] = typer.Option(None, "--worker", help="Worker id to stop (see `seqdb worker list`)."),
    all_workers: bool = typer.Option(False, "--all", help="Stop every worker running now."),
    reason: str = typer.Option("seqdb stop", "--reason", help="Recorded with the request."),
) -> None:
    """Ask workers to stop: each finishes its step, checkpoints and leaves its trial resumable.

    Example: seqdb stop --all --reason "host maintenance"
    """
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
    """Workers: host, pid, device, state, last seen, current trial.

    Example: seqdb worker list --all
    """
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
    data: str = typer.Option("stdlib", "--data", help="stdlib: characters of Python's own source files | sp500: S&P 500 daily direction."),
) -> None:
    """Make a project with real data (default: Python standard-library text) and run a scaling study on CPU.

    Example: seqdb demo --quick --path /tmp/seqdb-demo
    """
    from seqdb.app.demo import run_demo

    run_demo(path, quick=quick, workers=workers, data=data, say=lambda x: console.print(x, markup=False, highlight=False, soft_wrap=isinstance(x, str)))


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
