"""The real-trainer kill soak: workers running the REAL trainer (TrainExecutor, a tiny
transformer on the S&P 500 demo data, checkpoint pruning on) SIGKILLed at random instants,
respawned, until --kills; then one worker drains the queue and every invariant is checked.

    python benchmarks/bench_soak.py [--kills 1000] [--backend sqlite|postgres|both] [--lease 1.0] [--trials 60]

Workers are forked from this process after torch and the trainer are imported (and before
torch runs any op, so no thread pool is inherited): a respawn costs milliseconds instead of
a `seqdb run` start, which is what makes 1,000 kills fit in minutes. The peer of this table
is the synthetic-executor soak of bench_queue.py (same queue, no model): the real trainer
adds model build, checkpoint save/prune and resume to every kill window.

Invariants (seqdb.testing.soak.check_soak): every trial completed, none failed; one
train_loss row per step, none twice; each trial's newest registered checkpoint on disk with
its recorded sha256; at most best + latest checkpoints kept per trial.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

PG_ADMIN = os.environ.get("SEQDB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def soak_experiment(trials: int) -> dict:
    from seqdb.app.demo import demo_experiment

    exp = demo_experiment(quick=True)
    exp["name"], exp["budgets"], exp["max_attempts"] = "bench-soak", ["10k"], 100
    exp["search"].update(strategy="sample", n_samples=trials, space={"learning_rate": {"low": 1e-3, "high": 3e-3, "log": True}})
    exp["training"].update(max_epochs=2, max_steps=30, checkpoint_every_steps=2, eval_every_steps=6, max_eval_batches=1,
                           early_stopping={"patience": 1000, "min_delta": 0.0})
    return exp


def _pg_database() -> str:
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    name = f"seqdb_soak_{uuid.uuid4().hex[:8]}"
    u = make_url(PG_ADMIN)
    with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, dbname=u.database, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return u.set(database=name).render_as_string(hide_password=False)


def _child(settings, artifacts: str) -> None:  # noqa: ANN001
    from seqdb.runner.execute import TrainExecutor
    from seqdb.runner.worker import run_worker

    os.setsid()
    summary = run_worker(settings, TrainExecutor(artifacts))
    os._exit(0 if summary.fault is None else 3)


def _wait_claimed(engine, proc, timeout_s: float) -> None:  # noqa: ANN001
    """Until the child holds a trial (its worker row names one) or exits: kills land in
    training, not in start-up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.is_alive():
        with engine.connect() as c:
            if c.execute(sa.text("SELECT count(*) FROM worker WHERE pid = :pid AND current_trial_id IS NOT NULL"),
                         {"pid": proc.pid}).scalar_one():
                return
        time.sleep(0.02)


def soak(backend: str, kills: int, lease_s: float, trials: int, seed: int, say) -> dict:  # noqa: ANN001
    from seqdb.app.demo import setup_project
    from seqdb.runner.worker import WorkerSettings
    from seqdb.search.study import ensure_study
    from seqdb.testing.soak import SoakResult, check_soak

    root = Path(tempfile.mkdtemp(prefix=f"soak-{backend}-")) / "proj"
    project, engine, _ = setup_project(root, True, database_url=_pg_database() if backend == "postgres" else None,
                                       experiment=soak_experiment(trials))
    study = ensure_study(engine, project, "bench-soak", "10k", 1)
    settings = WorkerSettings(database_url=project.database_url, study_ids=[study.study_id], artifacts_root=str(project.artifacts_root),
                              lease_s=lease_s, poll_s=0.1, reap_every_s=0.25, progress=False, threads=1)
    ctx, rng, result, t0 = mp.get_context("fork"), random.Random(seed), SoakResult(), time.monotonic()
    while result.kills < kills:
        proc = ctx.Process(target=_child, args=(settings, str(project.artifacts_root)))
        proc.start()
        result.runs += 1
        _wait_claimed(engine, proc, timeout_s=60)
        proc.join(rng.uniform(0.0, 2.0))  # a random instant of the trial: model build, step, save, register, prune
        if proc.exitcode is not None:  # drained on its own
            result.final_code = proc.exitcode
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        result.kills += 1
        if result.kills % 50 == 0:
            say(f"{backend}: {result.kills}/{kills} kills, {time.monotonic() - t0:.0f}s")
    if result.final_code is None:
        proc = ctx.Process(target=_child, args=(settings, str(project.artifacts_root)))
        proc.start()
        proc.join()
        result.runs, result.final_code = result.runs + 1, proc.exitcode
    result.seconds = time.monotonic() - t0
    result.outputs = [""]
    problems = check_soak(engine, result, project.artifacts_root)
    with engine.connect() as c:
        row = c.execute(sa.text("SELECT count(*), sum(attempt), sum(CASE WHEN state = 'completed' THEN 1 ELSE 0 END) FROM trial")).one()
        resumed = c.execute(sa.text("SELECT count(DISTINCT trial_id) FROM checkpoint WHERE attempt > 0")).scalar_one()
    engine.dispose()
    return {"backend": backend, "kills": result.kills, "runs": result.runs, "seconds": result.seconds, "trials": row[0],
            "completed": row[2], "lease_expiries": row[1] or 0, "resumed_trials": resumed, "problems": problems}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=1000)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--lease", type=float, default=1.0)
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import torch  # imported (not run) before the forks

    torch.set_num_threads(1)
    import seqdb.runner.execute  # noqa: F401
    import seqdb.search.sampler  # noqa: F401 - optuna: imported once here, not in every respawned worker
    import seqdb.train.trainer  # noqa: F401

    console = Console(width=160)
    backends = ["sqlite", "postgres"] if a.backend == "both" else [a.backend]
    rows = [soak(b, a.kills, a.lease, a.trials, a.seed, console.print) for b in backends]
    table = Table(title=f"real-trainer kill soak (lease {a.lease}s, pruning on)")
    for col in ("backend", "kills", "runs", "seconds", "kills/min", "trials", "completed", "lease expiries", "resumed trials", "violations"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["backend"], str(r["kills"]), str(r["runs"]), f"{r['seconds']:.0f}", f"{60 * r['kills'] / max(r['seconds'], 1e-9):.0f}",
                      str(r["trials"]), str(r["completed"]), str(r["lease_expiries"]), str(r["resumed_trials"]), str(len(r["problems"])))
    console.print(table)
    for r in rows:
        for p in r["problems"][:20]:
            console.print(f"[red]{r['backend']}: {p}[/red]")
    sys.exit(1 if any(r["problems"] for r in rows) else 0)


if __name__ == "__main__":
    main()
