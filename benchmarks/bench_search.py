"""Search benchmark: seqdb vs plain Optuna RDB storage on the same database, in one run.

1. Grid study creation: a 10,000-configuration grid (4 factors x 10 values) stored as
   claimable pending trials. seqdb: `create_study` (expansion, exact parameter counts,
   standalone configs, one transaction). Optuna: `enqueue_trial` for each configuration
   into an RDB-stored study (its way of storing configurations for workers to pick up).
2. TPE: 1,000 sequential ask + tell. seqdb: `ask_next` (Optuna's TPESampler over a view
   rebuilt from the seqdb tables under the study lock) + `tell`. Optuna: `study.ask` +
   `study.tell` on RDBStorage. Same space, same sampler settings (seeded, constant liar,
   multivariate).

    python benchmarks/bench_search.py [--grid 10000] [--tpe 1000] [--peer-grid N] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import track  # noqa: E402
from rich.table import Table  # noqa: E402

from seqdb.db.engine import create_engine_for, session_scope  # noqa: E402
from seqdb.db.migrate import upgrade  # noqa: E402
from seqdb.db.models import Trial  # noqa: E402
from seqdb.search.sampler import ask_next, tell  # noqa: E402
from seqdb.search.study import create_study  # noqa: E402
from tests.search.fixtures import base_spec, experiment_config, register  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
console = Console()
PG_ADMIN = os.environ.get("SEQDB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SHAPE = {"dim_model": [64], "n_head": [2], "num_layers": [1], "dim_feedforward": [192]}  # one architecture of 60k


def grid_space(n: int) -> dict:
    k = round(n ** 0.25)
    assert k**4 == n, "--grid must be a 4th power (10000 = 10^4)"
    return {
        **SHAPE,
        "dropout": [round(0.02 * i, 4) for i in range(k)],
        "learning_rate": [round(1e-4 * (i + 1), 6) for i in range(k)],
        "weight_decay": [round(1e-3 * i, 6) for i in range(k)],
        "warmup_steps": [10 * i for i in range(k)],
    }


TPE_SPACE = {
    **SHAPE,
    "dropout": {"low": 0.0, "high": 0.3},
    "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
    "weight_decay": {"low": 1e-5, "high": 1e-1, "log": True},
    "warmup_steps": [0, 50, 100, 200],
}


def loss(params: dict) -> float:
    return (math.log10(params["learning_rate"]) + 2.5) ** 2 + params["dropout"] + 0.1 * params["weight_decay"]


def fresh_url(backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"seqdb_bench_{uuid.uuid4().hex[:10]}"
    u = make_url(PG_ADMIN)
    with psycopg.connect(f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return u.set(database=name).render_as_string(hide_password=False)


def optuna_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def bench_grid(url: str, n: int, peer_limit: int) -> tuple[float, float]:
    engine = create_engine_for(url)
    upgrade(engine)
    cfg = experiment_config({"strategy": "grid", "space": grid_space(n)}, budgets=["60k"], name="bench-grid")
    exp = register(engine, cfg)
    t0 = time.perf_counter()
    study = create_study(engine, exp, cfg, "60k", 1, base_spec())
    seqdb_s = time.perf_counter() - t0
    assert study.n_trials == n, study.config["stats"]
    space = grid_space(n)
    keys = ["dropout", "learning_rate", "weight_decay", "warmup_steps"]
    configs = [dict(zip(keys, (a, b, c, d))) for a in space["dropout"] for b in space["learning_rate"]
               for c in space["weight_decay"] for d in space["warmup_steps"]]  # fmt: skip
    peer = configs[: peer_limit or len(configs)]
    t0 = time.perf_counter()
    ostudy = optuna.create_study(storage=optuna_url(url), study_name="bench-grid")
    for params in track(peer, description="optuna enqueue_trial", console=console, transient=True):
        ostudy.enqueue_trial(params)
    optuna_s = (time.perf_counter() - t0) * len(configs) / len(peer)  # projected when limited
    engine.dispose()
    return seqdb_s, optuna_s


def bench_tpe(url: str, n: int) -> tuple[float, float, int]:
    engine = create_engine_for(url)
    upgrade(engine)
    cfg = experiment_config({"strategy": "tpe", "n_trials": n, "space": TPE_SPACE}, budgets=["60k"], name="bench-tpe")
    study = create_study(engine, register(engine, cfg), cfg, "60k", 1, base_spec())
    t0 = time.perf_counter()
    for _ in track(range(n), description="seqdb ask_next + tell", console=console, transient=True):
        tid = ask_next(engine, study.study_id)
        with session_scope(engine, write=False) as s:
            params = s.get(Trial, tid).params
        tell(engine, tid, values=[loss(params)])
    seqdb_s = time.perf_counter() - t0
    with session_scope(engine, write=False) as s:
        distinct = s.query(Trial.config_hash).filter(Trial.study_id == study.study_id).distinct().count()
    dists = {
        "dropout": optuna.distributions.FloatDistribution(0.0, 0.3),
        "learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
        "weight_decay": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
        "warmup_steps": optuna.distributions.CategoricalDistribution([0, 50, 100, 200]),
    }
    sampler = optuna.samplers.TPESampler(seed=7, constant_liar=True, multivariate=True)
    t0 = time.perf_counter()
    ostudy = optuna.create_study(storage=optuna_url(url), study_name="bench-tpe", sampler=sampler)
    for _ in track(range(n), description="optuna ask + tell (RDB)", console=console, transient=True):
        trial = ostudy.ask(dists)
        ostudy.tell(trial, loss(trial.params))
    optuna_s = time.perf_counter() - t0
    engine.dispose()
    return seqdb_s, optuna_s, distinct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", type=int, default=10_000)
    ap.add_argument("--tpe", type=int, default=1_000)
    ap.add_argument("--peer-grid", type=int, default=0, help="Optuna enqueues only this many grid configurations; its total is projected linearly (0: all)")
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    table = Table(title="search: seqdb vs plain Optuna RDB storage (same database)")
    for col in ("backend", "task", "seqdb s", "optuna s", "seqdb per item", "optuna per item", "speed-up"):
        table.add_column(col, justify="left" if col in ("backend", "task") else "right")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            g_seq, g_opt = bench_grid(fresh_url(backend, Path(tmp)), args.grid, args.peer_grid)
            proj = f" (optuna: {args.peer_grid:,} timed, projected)" if args.peer_grid else ""
            table.add_row(backend, f"create {args.grid:,}-config grid study{proj}", f"{g_seq:.2f}", f"{g_opt:.2f}",
                          f"{1e3 * g_seq / args.grid:.3f} ms", f"{1e3 * g_opt / args.grid:.3f} ms", f"{g_opt / g_seq:.1f}x")  # fmt: skip
            t_seq, t_opt, distinct = bench_tpe(fresh_url(backend, Path(tmp)), args.tpe)
            table.add_row(backend, f"{args.tpe:,} TPE ask+tell ({distinct} distinct)", f"{t_seq:.2f}", f"{t_opt:.2f}",
                          f"{1e3 * t_seq / args.tpe:.1f} ms", f"{1e3 * t_opt / args.tpe:.1f} ms", f"{t_opt / t_seq:.2f}x")  # fmt: skip
            console.print(table)
    console.print(f"optuna {optuna.__version__}; machine: {os.cpu_count()} CPU cores")


if __name__ == "__main__":
    main()
