"""The trial queue against its peers, in one run.

    python benchmarks/bench_queue.py [--trials 3000] [--workers 1,2,4,8] [--metric-rows 200000]
                                     [--soak-kills 200] [--skip-postgres]

1. claims/s: N worker processes each loop claim -> finish until the queue is empty (SQLite and
   Postgres), duplicates counted; Optuna's RDB storage doing ask -> tell from N processes on
   the same server.
2. per-trial overhead of the worker loop (claim -> first training step; last step -> next
   claim), with an executor that reports one step and registers one checkpoint.
3. metric rows/s: seqdb's buffered writer against MLflow's `log_batch` into its SQLite store.
4. kill soak: synthetic workers SIGKILLed at random instants until --soak-kills; the final
   database is checked (no trial lost, none finished twice, resumes from checkpoints).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from seqdb.db.engine import create_engine_for  # noqa: E402
from seqdb.db.migrate import upgrade  # noqa: E402
from seqdb.runner import queue as q  # noqa: E402
from seqdb.runner.metrics import MetricWriter  # noqa: E402
from seqdb.testing.synthetic import create_synthetic_study  # noqa: E402

PG_ADMIN = os.environ.get("SEQDB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
console = Console(width=150)
FORK = mp.get_context("fork")


# ------------------------------------------------------------------------------ databases
def new_database(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        url = f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    else:
        name = f"seqdb_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        url = sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    engine = create_engine_for(url)
    upgrade(engine)
    engine.dispose()
    return url


def new_empty_pg_database(prefix: str) -> str:
    """A database of its own on the same server (a peer creates its own schema)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        name = sa.engine.make_url(url).database
        with psycopg.connect(PG_ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------------------------ 1. claims/s
def _claimer(url: str, study_id: int, start, out) -> None:  # noqa: ANN001
    engine = create_engine_for(url, pool_size=2)
    worker = q.register_worker(engine)
    got = []
    start.wait()
    lease = q.claim_trial(engine, worker.worker_id, [study_id], lease_s=60)
    while lease is not None:  # the worker loop's hot path: finish this trial and claim the next at once
        got.append(lease.trial_id)
        _, lease = q.finish_and_claim(engine, lease, q.TrialOutcome("completed", best_val_loss=0.5, step=1), [study_id], lease_s=60)
    out.put(got)
    engine.dispose()


def bench_claims(url: str, n_workers: int, n_trials: int) -> tuple[float, int]:
    engine = create_engine_for(url)
    sid = create_synthetic_study(engine, n_trials)
    engine.dispose()
    start, out = FORK.Event(), FORK.Queue()
    procs = [FORK.Process(target=_claimer, args=(url, sid, start, out)) for _ in range(n_workers)]
    for p in procs:
        p.start()
    time.sleep(1.0)
    t0 = time.perf_counter()
    start.set()
    got = [out.get() for _ in procs]
    took = time.perf_counter() - t0
    for p in procs:
        p.join()
    flat = [t for g in got for t in g]
    assert len(set(flat)) == n_trials, f"{len(set(flat))} of {n_trials} trials claimed"
    return n_trials / took, len(flat) - len(set(flat))


def _asker(url: str, name: str, n: int, start, out) -> None:  # noqa: ANN001
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(optuna_url(url))
    study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler())
    dist = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    start.wait()
    for _ in range(n):
        trial = study.ask(dist)
        study.tell(trial, 0.5)
    out.put(n)


def optuna_url(url: str) -> str:
    """The same server and database, through the driver installed here (psycopg 3)."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def bench_optuna(url: str, n_workers: int, n_trials: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = f"bench-{uuid.uuid4().hex[:6]}"
    optuna.create_study(study_name=name, storage=optuna.storages.RDBStorage(optuna_url(url)))
    per = max(1, n_trials // n_workers)
    start, out = FORK.Event(), FORK.Queue()
    procs = [FORK.Process(target=_asker, args=(url, name, per, start, out)) for _ in range(n_workers)]
    for p in procs:
        p.start()
    time.sleep(2.0)
    t0 = time.perf_counter()
    start.set()
    done = sum(out.get() for _ in procs)
    took = time.perf_counter() - t0
    for p in procs:
        p.join()
    return done / took


# ------------------------------------------------------------------------------ 2. overhead
def bench_overhead(url: str, tmp: Path, n_trials: int = 40) -> tuple[float, float]:
    from seqdb.runner.reporter import StopFlag, file_sha256
    from seqdb.runner.worker import WorkerLoop, WorkerSettings
    from seqdb.train.reporter import CheckpointInfo

    engine = create_engine_for(url)
    sid = create_synthetic_study(engine, n_trials)
    stamps: list[tuple[float, float, float]] = []  # (before claim, executor entry, executor exit)

    class Timed:
        def pruner(self, engine, lease):  # noqa: ANN001, ANN201
            return None

        def __call__(self, run):  # noqa: ANN001, ANN204
            entry = time.perf_counter()
            run.reporter.report(1, 0, {f"m{i}": 0.1 * i for i in range(10)})
            run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            path = run.checkpoint_dir / "c.bin"
            path.write_bytes(os.urandom(1024))
            run.reporter.on_checkpoint(CheckpointInfo(path, 1024, file_sha256(path), 1, 0, None, False))
            stamps.append((loop.t_claim, entry, time.perf_counter()))
            return q.TrialOutcome("completed", best_val_loss=0.5, best_step=1, step=1)

    class Loop(WorkerLoop):
        def _next_lease(self, worker_id):  # noqa: ANN001, ANN202
            self.t_claim = time.perf_counter()
            return super()._next_lease(worker_id)

    settings = WorkerSettings(database_url=url, study_ids=[sid], artifacts_root=str(tmp / "art"), progress=False)
    loop = Loop(settings, Timed(), StopFlag(), ask_next=lambda *_: None)
    claim_times: list[float] = []
    loop.run()
    for i, (t_claim, entry, _exit) in enumerate(stamps):
        claim_times.append(entry - t_claim)
    after = [stamps[i + 1][0] - stamps[i][2] for i in range(len(stamps) - 1)]
    engine.dispose()
    return statistics.median(claim_times) * 1000, statistics.median(after) * 1000


# ------------------------------------------------------------------------------ 3. metrics
def bench_seqdb_metrics(url: str, n_rows: int) -> float:
    engine = create_engine_for(url)
    sid = create_synthetic_study(engine, 1)
    lease = q.claim_trial(engine, q.register_worker(engine).worker_id, [sid])
    writer = MetricWriter(engine, lease)
    names = [f"m{i}" for i in range(10)]
    t0 = time.perf_counter()
    for step in range(n_rows // 10):
        writer.add(step, 0, {n: 0.001 * step for n in names})
    assert writer.close()
    took = time.perf_counter() - t0
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT COUNT(*) FROM metric")).scalar_one() == n_rows
    engine.dispose()
    return n_rows / took


MLFLOW_PYTHON = os.environ.get("MLFLOW_PYTHON", "/work/peers/mlflow-venv/bin/python")


def bench_mlflow(tmp: Path, n_rows: int, store: str) -> float:
    """MLflow log_batch rows/s into its SQLite store or its own Postgres database, run in the
    interpreter that has MLflow (MLFLOW_PYTHON; `pip install mlflow psycopg[binary]` there)."""
    import json
    import subprocess

    pg = None
    if store == "sqlite":
        uri = f"sqlite:///{tmp / f'mlflow-{uuid.uuid4().hex[:6]}.db'}"
    else:
        pg = new_empty_pg_database("mlflow_bench")
        uri = pg.replace("postgresql://", "postgresql+psycopg://", 1)
    python = MLFLOW_PYTHON if Path(MLFLOW_PYTHON).exists() else sys.executable
    try:
        out = subprocess.run([python, str(Path(__file__).with_name("peer_mlflow.py")), uri, str(n_rows), str(tmp / "mlruns")],
                             capture_output=True, text=True, timeout=1800)
    finally:
        if pg is not None:
            drop_database(pg)
    if out.returncode != 0:
        raise SystemExit(f"error: MLflow ({python}) failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])["rows_per_s"]


# ------------------------------------------------------------------------------ 4. kill soak
def _soak_worker(argv: list[str]) -> None:
    import signal

    from seqdb.testing.synthetic import main

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os._exit(main(argv))


def bench_soak(url: str, tmp: Path, kills: int, steps: int = 30) -> dict:
    import json

    engine = create_engine_for(url)
    n_trials = max(24, kills // 4)
    sid = create_synthetic_study(engine, n_trials, max_attempts=100_000)
    events = tmp / f"soak-{uuid.uuid4().hex[:6]}.jsonl"
    argv = ["--db", url, "--studies", str(sid), "--artifacts", str(tmp / "soak"), "--lease", "1.0", "--steps", str(steps),
            "--step-s", "0.02", "--checkpoint-every", "3", "--quiet", "--events", str(events)]

    def spawn():  # noqa: ANN202
        p = FORK.Process(target=_soak_worker, args=(argv,))
        p.start()
        return p

    def claimed_pids() -> set:
        if not events.exists():
            return set()
        return {json.loads(line)["pid"] for line in events.read_text().splitlines() if '"claim"' in line}

    procs, done, rng, t0 = [spawn() for _ in range(3)], 0, random.Random(1), time.perf_counter()
    while done < kills and any(p.is_alive() for p in procs):
        time.sleep(rng.uniform(0.05, 0.3))
        working = claimed_pids()
        alive = [i for i, p in enumerate(procs) if p.is_alive() and p.pid in working]
        if alive:
            i = rng.choice(alive)
            procs[i].kill()
            procs[i].join()
            done += 1
            procs[i] = spawn()
    for p in procs:
        p.join(600)
    evs = [json.loads(line) for line in events.read_text().splitlines()]
    with engine.connect() as c:
        states = dict(c.execute(sa.text("SELECT state, COUNT(*) FROM trial GROUP BY state")).all())
        steps_ok = c.execute(sa.text("SELECT COUNT(*) FROM trial WHERE step = :s"), {"s": steps}).scalar_one()
        metric_rows = c.execute(sa.text("SELECT COUNT(*) FROM metric WHERE name = 'train_loss'")).scalar_one()
    finishes = [e["trial"] for e in evs if e["kind"] == "finish"]
    resumed = sum(1 for e in evs if e["kind"] == "claim" and e["resume_step"] > 0)
    engine.dispose()
    return {
        "kills": done, "seconds": time.perf_counter() - t0, "trials": n_trials, "completed": states.get("completed", 0),
        "finished_twice": len(finishes) - len(set(finishes)), "resumed": resumed, "full_step_count": steps_ok,
        "metrics_ok": metric_rows == n_trials * steps,
    }


# ------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=3000)
    ap.add_argument("--workers", default="1,2,4,8")
    ap.add_argument("--metric-rows", type=int, default=200_000)
    ap.add_argument("--mlflow-rows", type=int, default=20_000)
    ap.add_argument("--soak-kills", type=int, default=200)
    ap.add_argument("--skip-postgres", action="store_true")
    ap.add_argument("--parts", default="claims,overhead,metrics,soak", help="comma-separated subset to run")
    args = ap.parse_args()
    backends = ["sqlite"] + ([] if args.skip_postgres else ["postgres"])
    workers = [int(w) for w in args.workers.split(",")]
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "claims" in parts:
            run_claims(args, backends, workers, tmp)
        if "overhead" in parts:
            run_overhead(backends, tmp)
        if "metrics" in parts:
            run_metrics(args, backends, tmp)
        if args.soak_kills and "soak" in parts:
            run_soak(args, backends, tmp)
    console.print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


def run_claims(args, backends: list[str], workers: list[int], tmp: Path) -> None:  # noqa: ANN001
    claims = Table(title=f"claims/s ({args.trials} trials; claim + finish each) vs Optuna RDB ask + tell")
    for col in ("backend", "workers", "seqdb claims/s", "duplicates", "optuna ask+tell/s", "ratio"):
        claims.add_column(col, justify="right")
    for backend in backends:
        for n in workers:
            url = new_database(backend, tmp)
            rate, dup = bench_claims(url, n, args.trials)
            orate = bench_optuna(url, n, min(args.trials, 600))
            drop_database(url)
            claims.add_row(backend, str(n), f"{rate:,.0f}", str(dup), f"{orate:,.0f}", f"{rate / orate:.1f}x")
            console.print(f"  {backend} x{n}: {rate:,.0f} claims/s, optuna {orate:,.0f}/s")
    console.print(claims)


def run_overhead(backends: list[str], tmp: Path) -> None:
    over = Table(title="per-trial overhead of the worker loop (median ms)")
    for col in ("backend", "claim -> first step", "last step -> next claim"):
        over.add_column(col, justify="right")
    for backend in backends:
        url = new_database(backend, tmp)
        a, b = bench_overhead(url, tmp)
        drop_database(url)
        over.add_row(backend, f"{a:.1f}", f"{b:.1f}")
    console.print(over)


def run_metrics(args, backends: list[str], tmp: Path) -> None:  # noqa: ANN001
    mt = Table(title="metric rows/s into the database (10 names per step), vs MLflow log_batch on the same store kind")
    for col in ("store", "seqdb MetricWriter rows/s", "MLflow log_batch rows/s", "ratio"):
        mt.add_column(col, justify="right")
    for backend in backends:
        mlflow_rate = bench_mlflow(tmp, args.mlflow_rows, backend)
        url = new_database(backend, tmp)
        rate = bench_seqdb_metrics(url, args.metric_rows)
        drop_database(url)
        mt.add_row(backend, f"{rate:,.0f} ({args.metric_rows:,} rows)", f"{mlflow_rate:,.0f} ({args.mlflow_rows:,} rows)",
                   f"{rate / mlflow_rate:.1f}x")
        console.print(f"  metrics {backend}: seqdb {rate:,.0f}/s, mlflow {mlflow_rate:,.0f}/s")
    console.print(mt)


def run_soak(args, backends: list[str], tmp: Path) -> None:  # noqa: ANN001
    st = Table(title=f"kill soak (SIGKILL at random instants, {args.soak_kills} kills)")
    for col in ("backend", "kills", "s", "trials", "completed", "finished twice", "resumed claims", "all steps", "metrics"):
        st.add_column(col, justify="right")
    for backend in backends:
        url = new_database(backend, tmp)
        r = bench_soak(url, tmp, args.soak_kills)
        drop_database(url)
        st.add_row(backend, str(r["kills"]), f"{r['seconds']:.0f}", str(r["trials"]), str(r["completed"]), str(r["finished_twice"]),
                   str(r["resumed"]), f"{r['full_step_count']}/{r['trials']}", "complete" if r["metrics_ok"] else "MISSING")
    console.print(st)


if __name__ == "__main__":
    main()
