"""Benchmark: DuckDB views over a big seqdb database vs the same questions through Optuna's and MLflow's APIs.

Builds a synthetic seqdb database (default 100,000 trials, 100 metric rows each = 10,000,000
metric rows) on SQLite and/or Postgres with bulk inserts (executemany on SQLite, COPY on
Postgres), then times, through `seqdb.views`:
  scaling   - SELECT * FROM scaling_points                     (goal <= 200 ms)
  curve     - SELECT * FROM learning_curve(<one trial>)        (goal <= 50 ms)
  trials    - the dashboard's Trials page query (filtered, ordered, LIMIT 2000)
and the same answers through Optuna (in-memory storage holding the same trials and the
metric rows as intermediate values): best trial per study, one trial's intermediate values,
trials_dataframe() of one study; and through MLflow (its SQLite tracking store holding the same
runs, params and metric rows, bulk-loaded by cloning a run logged through MLflow's client):
search_runs() best run per (budget, horizon), get_metric_history() of one run, search_runs()
of one (budget, horizon) ordered by loss, 2000 rows. The scaling view's covering index
(ix_trial_scaling) comes with the schema (migration bb4735874c91).

    python benchmarks/bench_views.py                       # full size, both backends
    python benchmarks/bench_views.py --trials 20000 --points 50 --backends sqlite
    python benchmarks/bench_views.py --mlflow-points 10      # MLflow with 1,000,000 metric rows
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from seqdb.db.engine import create_engine_for
from seqdb.db.migrate import upgrade

console = Console(width=150)
BUDGETS = [("500k", 500_000), ("2M", 2_000_000), ("20M", 20_000_000), ("200M", 200_000_000)]
HORIZONS = [1, 3, 5]
TRIALS_QUERY = ("SELECT trial_id, budget, horizon, number, state, param_count, best_val_loss, d_model, n_layers, learning_rate "
                "FROM trials WHERE experiment = 'bench' AND budget = '2M' AND horizon = 3 ORDER BY best_val_loss NULLS LAST LIMIT 2000")


def _rows(n_trials: int, points: int, seed: int = 0):
    """Yield (table, columns, rows) batches of the synthetic database."""
    rng = np.random.default_rng(seed)
    studies = [(b, h) for b in range(len(BUDGETS)) for h in HORIZONS]
    yield "experiment", ["experiment_id", "name", "yaml_text", "content_hash", "config", "created_at"], \
        [(1, "bench", "x", "0" * 64, "{}", "2025-01-01 00:00:00")]
    yield "budget", ["budget_id", "experiment_id", "label", "n_params", "tolerance", "created_at"], \
        [(i + 1, 1, lab, n, 0.25, "2025-01-01 00:00:00") for i, (lab, n) in enumerate(BUDGETS)]
    yield "study", ["study_id", "experiment_id", "budget_id", "horizon", "name", "strategy", "n_trials", "max_epochs", "pruner",
                    "kind", "objectives", "config", "state", "created_at"], \
        [(i + 1, 1, b + 1, h, f"bench/{BUDGETS[b][0]}/h{h}", "tpe", n_trials // len(studies), 10, "none", "search",
          '[{"name": "val_loss", "direction": "minimize"}]', "{}", "active", "2025-01-01 00:00:00") for i, (b, h) in enumerate(studies)]
    trials, metrics = [], []
    per_study = n_trials // len(studies)
    for tid in range(1, per_study * len(studies) + 1):
        sid = (tid - 1) // per_study + 1
        b, h = studies[sid - 1]
        n = BUDGETS[b][1]
        lr, d = float(10 ** rng.uniform(-4, -2)), int(rng.choice([64, 128, 256]))
        loss = 1.0 + 0.1 * h + 30 * n ** -0.3 + abs(rng.normal(0, 0.05))
        cfg = {"model": {"d_model": d, "n_layers": 4, "n_head": 4, "d_ff": 4 * d}, "training": {"learning_rate": lr}, "seed": 0}
        trials.append((tid, sid, tid, f"h{tid}", int(n * 0.97), json.dumps(cfg), json.dumps({"learning_rate": lr, "d_model": d}),
                       "completed", 0, 3, "2025-01-01 00:00:00", loss, json.dumps([loss]), points, 10, "2025-01-01 00:00:00",
                       "2025-01-01 01:00:00"))
        steps = np.arange(1, points + 1)
        vals = loss + 1.0 / steps
        metrics.extend((tid, int(s), int(s // 10), "val_loss", float(v), 1.7e9 + float(s)) for s, v in zip(steps, vals))
        if len(trials) >= 5000:
            yield "trial", TRIAL_COLS, trials
            yield "metric", METRIC_COLS, metrics
            trials, metrics = [], []
    if trials:
        yield "trial", TRIAL_COLS, trials
        yield "metric", METRIC_COLS, metrics


TRIAL_COLS = ["trial_id", "study_id", "number", "config_hash", "param_count", "config", "params", "state", "attempt",
              "max_attempts", "created_at", "best_val_loss", "values", "step", "epochs_done", "started_at", "finished_at"]
METRIC_COLS = ["trial_id", "step", "epoch", "name", "value", "time"]


def build(url: str, n_trials: int, points: int) -> None:
    eng = create_engine_for(url)
    upgrade(eng)
    raw = eng.raw_connection()
    try:
        cur = raw.cursor()
        total = n_trials // 5000 + 3
        for table, cols, rows in track(_rows(n_trials, points), total=2 * total, description=f"building {url.split(':')[0]}"):
            collist = ", ".join(f'"{c}"' for c in cols)
            if url.startswith("sqlite"):
                cur.execute("BEGIN")
                cur.executemany(f'INSERT INTO "{table}" ({collist}) VALUES ({", ".join("?" * len(cols))})', rows)
                cur.execute("COMMIT")
            else:
                with cur.copy(f'COPY "{table}" ({collist}) FROM STDIN') as copy:
                    for r in rows:
                        copy.write_row(r)
                raw.commit()
        if not url.startswith("sqlite"):
            for t in ("trial", "study", "budget", "experiment", "metric"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{t}', '{t}_id'), (SELECT max({t}_id) FROM {t}))")
            raw.commit()
            raw.driver_connection.autocommit = True  # VACUUM runs outside a transaction; it sets the
            cur.execute("VACUUM ANALYZE")  # visibility map the covering index's index-only scans need
        else:
            cur.execute("ANALYZE")
    finally:
        raw.close()
        eng.dispose()


def timeit(fn, repeat: int = 7) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def bench_views(url: str, n_trials: int) -> dict:
    from seqdb.views import connect, sql

    with connect(url) as vc:
        tid = n_trials // 2
        out = {
            "scaling": timeit(lambda: sql(vc, "SELECT * FROM scaling_points")),
            "curve": timeit(lambda: sql(vc, "SELECT * FROM learning_curve(?)", [tid])),
            "trials": timeit(lambda: sql(vc, TRIALS_QUERY), repeat=3),
        }
    return out


def bench_optuna(n_trials: int, points: int) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dist = {"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
            "d_model": optuna.distributions.CategoricalDistribution([64, 128, 256])}
    rng = np.random.default_rng(0)
    studies = []
    per = n_trials // (len(BUDGETS) * len(HORIZONS))
    for _ in track(range(len(BUDGETS) * len(HORIZONS)), description="building optuna"):
        st = optuna.create_study(direction="minimize")
        trials = []
        for _ in range(per):
            loss = 1.5 + abs(rng.normal(0, 0.05))
            trials.append(optuna.trial.create_trial(
                params={"learning_rate": float(10 ** rng.uniform(-4, -2)), "d_model": int(rng.choice([64, 128, 256]))},
                distributions=dist, value=loss, intermediate_values={s: loss + 1 / s for s in range(1, points + 1)}))
        st.add_trials(trials)
        studies.append(st)
    mid = studies[len(studies) // 2]
    return {
        "scaling": timeit(lambda: [s.best_trial.value for s in studies], repeat=3),
        "curve": timeit(lambda: mid.trials[per // 2].intermediate_values, repeat=3),
        "trials": timeit(lambda: mid.trials_dataframe().sort_values("value").head(2000), repeat=3),
    }


def build_mlflow(folder: Path, n_trials: int, points: int):  # noqa: ANN201
    """An MLflow SQLite tracking store with n_trials runs x `points` val_loss rows, plus params and a best_val_loss."""
    import sqlite3
    import uuid

    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    db = folder / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    eid = client.create_experiment("bench", artifact_location=str(folder / "mlruns"))
    tmpl = client.create_run(eid).info.run_id  # one run through the API: the row format of every table
    client.log_batch(tmpl, metrics=[Metric("val_loss", 1.0, 0, 1), Metric("best_val_loss", 1.0, 0, 0)],
                     params=[Param(k, "0") for k in ("budget", "horizon", "learning_rate", "d_model")])
    client.set_terminated(tmpl)
    con = sqlite3.connect(db)
    run_cols = [r[1] for r in con.execute("PRAGMA table_info(runs)")]
    template = dict(zip(run_cols, con.execute("SELECT * FROM runs WHERE run_uuid = ?", (tmpl,)).fetchone()))
    con.execute("DELETE FROM metrics"), con.execute("DELETE FROM latest_metrics"), con.execute("DELETE FROM params")
    con.execute("DELETE FROM tags"), con.execute("DELETE FROM runs")
    rng = np.random.default_rng(0)
    studies = [(b, h) for b in range(len(BUDGETS)) for h in HORIZONS]
    per = n_trials // len(studies)
    ids = []
    for start in track(range(0, per * len(studies), 5000), description="building mlflow"):
        runs, params, latest, metrics = [], [], [], []
        for i in range(start, min(start + 5000, per * len(studies))):
            b, h = studies[i // per]
            rid = uuid.uuid4().hex
            ids.append(rid)
            loss = 1.0 + 0.1 * h + 30 * BUDGETS[b][1] ** -0.3 + abs(rng.normal(0, 0.05))
            runs.append(tuple({**template, "run_uuid": rid, "name": f"t{i}"}[c] for c in run_cols))
            params += [("budget", BUDGETS[b][0], rid), ("horizon", str(h), rid),
                       ("learning_rate", str(float(10 ** rng.uniform(-4, -2))), rid), ("d_model", str(int(rng.choice([64, 128, 256]))), rid)]
            latest += [("best_val_loss", loss, 0, 0, 0, rid), ("val_loss", loss + 1 / points, 1_700_000_000_000 + points, points, 0, rid)]
            metrics += [("best_val_loss", loss, 0, rid, 0, 0)]
            metrics += [("val_loss", loss + 1 / s, 1_700_000_000_000 + s, rid, s, 0) for s in range(1, points + 1)]
        con.executemany(f"INSERT INTO runs VALUES ({', '.join('?' * len(run_cols))})", runs)
        con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
        con.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)", latest)
        con.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)", metrics)
        con.commit()
    con.execute("ANALYZE")
    con.close()
    return client, eid, ids


def bench_mlflow(folder: Path, n_trials: int, points: int) -> dict:
    client, eid, ids = build_mlflow(folder, n_trials, points)

    def best(b: str, h: int):  # noqa: ANN202
        return client.search_runs([eid], f"params.budget = '{b}' AND params.horizon = '{h}' AND attributes.status = 'FINISHED'",
                                  order_by=["metrics.best_val_loss ASC"], max_results=1)

    assert len(best("2M", 3)) == 1 and len(client.get_metric_history(ids[0], "val_loss")) == points
    return {
        "scaling": timeit(lambda: [best(b, h) for b, _ in BUDGETS for h in HORIZONS], repeat=3),
        "curve": timeit(lambda: client.get_metric_history(ids[len(ids) // 2], "val_loss"), repeat=3),
        "trials": timeit(lambda: client.search_runs([eid], "params.budget = '2M' AND params.horizon = '3'",
                                                    order_by=["metrics.best_val_loss ASC"], max_results=2000), repeat=3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=100_000)
    ap.add_argument("--points", type=int, default=100, help="metric rows per trial")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--no-optuna", action="store_true")
    ap.add_argument("--no-mlflow", action="store_true")
    ap.add_argument("--mlflow-trials", type=int, help="MLflow runs (default: --trials)")
    ap.add_argument("--mlflow-points", type=int, help="val_loss rows per MLflow run (default: --points)")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            else:
                import psycopg
                from sqlalchemy.engine import make_url

                name = f"seqdb_bench_{int(time.time())}"
                with psycopg.connect(args.pg_admin.replace("postgresql://", "postgresql://"), autocommit=True) as c:
                    c.execute(f'CREATE DATABASE "{name}"')
                url = make_url(args.pg_admin).set(database=name).render_as_string(hide_password=False)
            t = time.time()
            build(url, args.trials, args.points)
            console.print(f"{backend}: built {args.trials:,} trials x {args.points} metric rows in {time.time() - t:.0f} s")
            results[f"seqdb views ({backend})"] = bench_views(url, args.trials)
            if backend == "postgres":
                import psycopg

                with psycopg.connect(args.pg_admin, autocommit=True) as c:
                    c.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not args.no_mlflow:
            mt, mp = args.mlflow_trials or args.trials, args.mlflow_points or args.points
            t = time.time()
            results[f"mlflow (SQLite store, {mt:,} runs x {mp} rows)"] = bench_mlflow(Path(tmp), mt, mp)
            console.print(f"mlflow: built and timed in {time.time() - t:.0f} s")
    if not args.no_optuna:
        results["optuna (in-memory storage)"] = bench_optuna(args.trials, args.points)
    table = Table(title=f"{args.trials:,} trials, {args.trials * args.points:,} metric rows: median latency (ms)")
    for col in ("system", "scaling view", "one learning curve", "trials page"):
        table.add_column(col, justify="right")
    for name, r in results.items():
        table.add_row(name, f"{r['scaling']:.1f}", f"{r['curve']:.1f}", f"{r['trials']:.1f}")
    console.print(table)
    console.print("goals: scaling view <= 200 ms, one learning curve <= 50 ms")


if __name__ == "__main__":
    main()
