"""`seqdb launch slurm`: run an experiment's workers as a Slurm job array."""

from __future__ import annotations

from typing import Optional

import typer

from seqdb.cli.common import ExperimentOption, console, open_db, state

launch_app = typer.Typer(help="Start workers on a cluster scheduler (they share the Postgres queue).", no_args_is_help=True)


@launch_app.command("slurm")
def slurm(
    ctx: typer.Context,
    workers: int = typer.Option(..., "--workers", min=1, help="Array tasks; each runs one `seqdb run`."),
    experiment: ExperimentOption = None,
    budget: Optional[list[str]] = typer.Option(None, "--budget", help="Only this budget (repeatable); default: every budget."),
    horizon: Optional[list[int]] = typer.Option(None, "--horizon", help="Only this horizon (repeatable); default: every horizon."),
    gpus_per_worker: int = typer.Option(0, "--gpus-per-worker", min=0, help="GPUs per task (--gres=gpu:G); one pinned worker each, or one DDP trial with --ddp."),
    ddp: bool = typer.Option(False, "--ddp", help="With G >= 2 GPUs per task: train each trial with DDP across them."),
    cpus_per_worker: int = typer.Option(1, "--cpus-per-worker", min=1, help="CPUs per task (--cpus-per-task)."),
    time: Optional[str] = typer.Option(None, "--time", help="Time limit per task (Slurm format, e.g. 4:00:00 or 1-12)."),
    partition: Optional[str] = typer.Option(None, "--partition", help="Slurm partition."),
    grace: int = typer.Option(120, "--grace", help="Seconds of warning (SIGUSR1) before the time limit: the worker checkpoints and hands its trial back."),
    lease_seconds: float = typer.Option(60.0, "--lease-seconds", min=1.0, help="Lease length of each worker."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Write and print the script; submit nothing, create no study."),
) -> None:
    """Write an sbatch job-array script (every task runs `seqdb run` against SEQDB_DATABASE_URL)
    and submit it; the URL is read from the environment and never written into the script.

    Example: SEQDB_DATABASE_URL=postgresql://db-host/seqdb seqdb launch slurm --experiment sp500 --workers 8 --time 4:00:00
    """
    from seqdb.cluster.launch import launch_slurm
    from seqdb.cluster.slurm import SlurmJob, database_url_from_env
    from seqdb.search.plan import pick_experiment

    database_url_from_env(state(ctx).db)
    project, engine = open_db(ctx)
    job = SlurmJob(experiment=pick_experiment(engine, experiment), project_root=project.root, workers=workers,
                   budgets=list(budget or []), horizons=list(horizon or []), gpus_per_worker=gpus_per_worker, ddp=ddp,
                   cpus_per_worker=cpus_per_worker, time=time, partition=partition, grace_s=grace, lease_s=lease_seconds)
    done = launch_slurm(engine, project, job, dry_run=dry_run)
    if dry_run:
        console.print(done.script.read_text(encoding="utf-8"), markup=False, highlight=False, soft_wrap=True)
        console.print(f"wrote {done.script} for {len(done.studies)} studies ({', '.join(done.studies)}); not submitted (--dry-run)", soft_wrap=True)
        return
    console.print(f"submitted job array {done.job_id}: {workers} worker(s) on {len(done.studies)} studies; script {done.script}", soft_wrap=True)
    console.print(f"follow it with `squeue -j {done.job_id}` and `seqdb status`; logs in {done.script.parent}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(launch_app, name="launch")
