"""Plan, write and submit a Slurm job array (the function behind `seqdb launch slurm`).

The studies are checked (and, unless dry, made and their data prepared) here, once, on the
submitting host, so that the array tasks find them ready and never race to create them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from sqlalchemy.engine import Engine

from seqdb.cluster.slurm import SlurmJob, check_job, submit, write_script
from seqdb.project import Project


@dataclass(frozen=True)
class Launched:
    script: Path
    job_id: Optional[str]  # None for a dry run
    studies: list[str]  # study names ("budget x h horizon" for a dry run)


def selection(engine: Engine, job: SlurmJob) -> tuple[list[str], list[int]]:
    """The job's (budgets, horizons), every one checked against the experiment (default:
    all of the experiment's)."""
    from seqdb.experiment.registry import get_experiment
    from seqdb.search.study import study_key

    _, cfg = get_experiment(engine, job.experiment)
    budgets, horizons = job.budgets or [str(b) for b in cfg.budgets], job.horizons or list(cfg.horizons)
    for b in budgets:
        for h in horizons:
            study_key(cfg, b, h)
    return budgets, horizons


def launch_slurm(engine: Engine, project: Project, job: SlurmJob, *, dry_run: bool = False, sbatch: str = "sbatch") -> Launched:
    """Write the job's script under <artifacts>/slurm/ and submit it; a dry run only writes
    it (no study is made, nothing is submitted)."""
    from seqdb.search.plan import plan_studies

    job = replace(job, project_root=Path(job.project_root).resolve())
    check_job(job)
    budgets, horizons = selection(engine, job)
    names = [f"{b} x h{h}" for b in budgets for h in horizons]
    if not dry_run:
        names = [p.name for p in plan_studies(engine, project, job.experiment, budgets, horizons)]
    script = write_script(job, Path(project.artifacts_root) / "slurm")
    if dry_run:
        return Launched(script, None, names)
    try:
        job_id = submit(script, sbatch)
    except BaseException:
        script.unlink(missing_ok=True)  # no script left behind that was never submitted
        raise
    return Launched(script, job_id, names)


__all__ = ["Launched", "launch_slurm", "selection"]
