"""Framework overhead on the REAL trainer path, and CLI start-up, against the peers.

    python benchmarks/bench_overhead.py [--trials 6] [--repeats 5] [--backend sqlite|postgres] [--json]

1. worker: a fresh `python` process runs one WorkerLoop with `TrainExecutor` over a study of
   `--trials` tiny trials (S&P 500 demo data, 10k parameters, 12 optimizer steps each):
     start-up                    process start -> worker ready to claim (imports, warm-up)
     first_trial_claim_to_step_s first lease -> the first trial's first optimizer step
     warm_overhead_ms            later trials: the previous trial's last step -> this trial's
                                 first step (flush, record, claim, set-up; median)
   The time of each optimizer step is the trainer's `report()` after it (DbReporter hook);
   the first step's own compute (median step time) is subtracted. One torch thread.
2. CLI start-up, cold processes, interleaved, best of --repeats: `python -c pass`,
   `seqdb --help`, `seqdb --version`, `seqdb status`, `seqdb sql "SELECT 1"` (SQLite project)
   beside `optuna --help` and `optuna --version` (its CLI) in the same rounds.
The load average is printed with the table (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("SEQDB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


# ------------------------------------------------------------------------------ 1. the worker
def make_project(tmp: Path, n_trials: int, database_url: str | None) -> tuple[str, list[int], str]:
    """A project with one study of `n_trials` tiny trials (prepared data); (url, study ids, artifacts)."""
    from seqdb.app.demo import demo_experiment, setup_project
    from seqdb.search.plan import plan_studies

    exp = demo_experiment(quick=True)
    exp["name"], exp["budgets"] = "overhead", ["10k"]
    exp["search"] = {"strategy": "grid", "objectives": ["val_loss"],
                     "space": {"learning_rate": [1e-3 * (1 + i) for i in range(n_trials)]}}
    project, engine, _ = setup_project(tmp / "proj", True, database_url=database_url, experiment=exp)
    studies = plan_studies(engine, project, exp["name"], ["10k"], [1])
    engine.dispose()
    return project.database_url, [s.study_id for s in studies], str(project.artifacts_root)


CHILD = r"""
import json, sys, time
T0 = time.time()
from seqdb.runner.execute import TrainExecutor
from seqdb.runner.reporter import StopFlag
from seqdb.runner.worker import WorkerLoop, WorkerSettings

url, studies, artifacts, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
marks = {"start": T0, "claims": [], "steps": []}  # steps: [trial, step, time]


class Timed(WorkerLoop):
    def _next_lease(self, worker_id):
        marks.setdefault("ready", time.time())
        lease = super()._next_lease(worker_id)
        if lease is not None:
            marks["claims"].append([lease.trial_id, time.time()])
        return lease

    def _record(self, lease, outcome, *, claim_next):
        done = super()._record(lease, outcome, claim_next=claim_next)
        if self._prefetched is not None:
            marks["claims"].append([self._prefetched.trial_id, time.time()])
        return done

    def _on_report(self, step, epoch, metrics):
        marks["steps"].append([self.heartbeat._lease.trial_id, step, time.time()])
        super()._on_report(step, epoch, metrics)


settings = WorkerSettings(database_url=url, study_ids=studies, artifacts_root=artifacts, progress=False)
summary = Timed(settings, TrainExecutor(artifacts), StopFlag(), ask_next=lambda *_: None).run()
marks["by_state"] = summary.by_state
open(out, "w").write(json.dumps(marks))
"""


def run_worker(url: str, studies: list[int], artifacts: str, tmp: Path) -> dict:
    out = tmp / "marks.json"
    t_spawn = time.time()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one torch thread: a tiny model on a shared machine
    proc = subprocess.run([sys.executable, "-c", CHILD, url, json.dumps(studies), artifacts, str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"error: the worker failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    marks = json.loads(out.read_text())
    marks["spawn"] = t_spawn
    return marks


def worker_figures(marks: dict) -> dict:
    """first claim -> first step; later trials: last step of the one before -> first step.
    A step's time is that of the report after it, so the first step's own compute (the median
    gap between two reports of one trial) is taken off both figures."""
    first_step: dict[int, float] = {}
    last_step: dict[int, float] = {}
    gaps: list[float] = []
    for trial, _step, t in marks["steps"]:
        if trial in last_step:
            gaps.append(t - last_step[trial])
        first_step.setdefault(trial, t)
        last_step[trial] = t
    step_s = statistics.median(gaps)
    claim_at: dict[int, float] = {}
    for trial, t in marks["claims"]:  # a prefetched lease is seen twice: when claimed, when taken up
        claim_at.setdefault(trial, t)
    order = list(claim_at)
    warm = [first_step[b] - last_step[a] - step_s for a, b in zip(order, order[1:]) if a in last_step and b in first_step]
    return {
        "process_start_to_ready_s": marks["ready"] - marks["spawn"],
        "first_trial_claim_to_step_s": first_step[order[0]] - claim_at[order[0]] - step_s,
        "step_ms": step_s * 1000,
        "warm_overhead_ms": statistics.median(warm) * 1000 if warm else None,
        "warm_overhead_max_ms": max(warm) * 1000 if warm else None,
        "trials": len(order), "by_state": marks["by_state"],
    }


# ------------------------------------------------------------------------------ 2. CLI start-up
def cli_commands(project: Path) -> dict[str, list[str]]:
    seqdb, optuna = str(BIN / "seqdb"), str(BIN / "optuna")
    return {
        "python_bare": [sys.executable, "-c", "pass"],
        "cli_help": [seqdb, "--help"],
        "cli_version": [seqdb, "--version"],
        "status": [seqdb, "--project", str(project), "status"],
        "sql": [seqdb, "--project", str(project), "sql", "SELECT 1"],
        "optuna_help": [optuna, "--help"],
        "optuna_version": [optuna, "--version"],
    }


def time_cli(commands: dict[str, list[str]], repeats: int) -> dict[str, float]:
    """Best wall time of each command over `repeats` interleaved rounds (cold processes)."""
    best = {name: float("inf") for name in commands}
    env = {**os.environ, "COLUMNS": "120"}
    for _ in range(repeats):
        for name, argv in commands.items():
            t = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, env=env, cwd=ROOT)
            took = time.perf_counter() - t
            if proc.returncode != 0:
                raise SystemExit(f"error: {' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-300:]}")
            best[name] = min(best[name], took)
    return best


# ------------------------------------------------------------------------------ main
def new_pg_database() -> str:
    import uuid

    import psycopg
    import sqlalchemy as sa

    name = f"seqdb_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    import psycopg
    import sqlalchemy as sa

    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{sa.engine.make_url(url).database}" WITH (FORCE)')


def print_table(worker: dict, cli: dict, backend: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    wt = Table(title=f"real trainer path (TrainExecutor, 10k params, 12 steps per trial, {backend})")
    for col in ("figure", "measured", "target"):
        wt.add_column(col, justify="right")
    wt.add_row("process start -> ready to claim (s)", f"{worker['process_start_to_ready_s']:.2f}", "paid once")
    wt.add_row("first trial: claim -> first optimizer step (s)", f"{worker['first_trial_claim_to_step_s']:.3f}", "<= 1.0")
    wt.add_row(f"later trials: last step -> next first step (ms, median of {worker['trials'] - 1})",
               f"{worker['warm_overhead_ms']:.1f}", "<= 50")
    wt.add_row("later trials: worst (ms)", f"{worker['warm_overhead_max_ms']:.1f}", "")
    wt.add_row("one optimizer step (ms, median; taken off the figures above)", f"{worker['step_ms']:.1f}", "")
    console.print(wt)
    ct = Table(title="CLI start-up, cold processes (best of N, interleaved), vs optuna's CLI")
    for col in ("command", "s", "over bare python", "target"):
        ct.add_column(col, justify="right")
    bare = cli["python_bare"]
    targets = {"cli_help": "<= +0.3", "cli_version": "<= +0.3", "status": "<= 0.8", "sql": "<= 1.0"}
    for name, t in cli.items():
        ct.add_row(name, f"{t:.3f}", f"{t - bare:+.3f}", targets.get(name, ""))
    console.print(ct)
    console.print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=5, help="rounds of the CLI timings (best of)")
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite", help="database of the worker run")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="seqdb-overhead-"))
    pg_url = new_pg_database() if args.backend == "postgres" else None
    try:
        url, studies, artifacts = make_project(tmp, args.trials, pg_url)
        worker = worker_figures(run_worker(url, studies, artifacts, tmp))
        cli_project = tmp / "cli"
        subprocess.run([str(BIN / "seqdb"), "init", str(cli_project)], check=True, capture_output=True)
        cli = time_cli(cli_commands(cli_project), args.repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if pg_url:
            drop_pg_database(pg_url)
    if args.json:
        cli_s = {f"{k}_s": round(v, 4) for k, v in cli.items()}
        print(json.dumps({**worker, **cli_s, "backend": args.backend, "load_average": os.getloadavg()}))
    else:
        print_table(worker, cli, args.backend)


if __name__ == "__main__":
    main()
