"""TPE / NSGA-II asks rebuilt from the database: N concurrent processes on SQLite and
Postgres never insert a duplicate configuration and no tell is lost."""

from __future__ import annotations

import multiprocessing as mp
import random

import sqlalchemy as sa

from seqdb.db.engine import create_engine_for, session_scope
from seqdb.db.models import Study, Trial
from seqdb.search.sampler import ask_next, tell
from seqdb.search.study import create_study
from seqdb.config.study import study_config
from tests.search.fixtures import base_spec, experiment_config, register, study_complete

N_WORKERS, N_TRIALS = 4, 24


def tpe_config(**search):
    space = {"dropout": {"low": 0.0, "high": 0.3}, "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
             "warmup_steps": [0, 10, 20], "embedding_dim": {"weekday": {"low": 2, "high": 8}}}  # fmt: skip
    return experiment_config({"strategy": "tpe", "n_trials": N_TRIALS, "n_startup_trials": 4, "space": space, **search}, budgets=["60k"])


def _worker(url, study_id, barrier, out):
    engine = create_engine_for(url)
    rng = random.Random()
    told = []
    barrier.wait()
    while (trial_id := ask_next(engine, study_id)) is not None:
        with session_scope(engine, write=False) as s:
            params = s.get(Trial, trial_id).params
        loss = (params["learning_rate"] - 3e-3) ** 2 + params["dropout"] + rng.random() * 1e-3
        state = "failed" if rng.random() < 0.1 else "completed"
        tell(engine, trial_id, state=state, values=[loss] if state == "completed" else None)
        told.append(trial_id)
    out.put(told)
    engine.dispose()


def test_concurrent_asks_never_duplicate_and_lose_no_tell(db_url, engine):
    cfg = tpe_config()
    study = create_study(engine, register(engine, cfg), cfg, "60k", 1, base_spec())
    assert study.n_trials == N_TRIALS and not study_complete(engine, study.study_id)
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(N_WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(db_url, study.study_id, barrier, out)) for _ in range(N_WORKERS)]
    for p in procs:
        p.start()
    told = [tid for _ in procs for tid in out.get(timeout=120)]
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * N_WORKERS
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Trial).where(Trial.study_id == study.study_id).order_by(Trial.number)).scalars().all()
    assert len(rows) == N_TRIALS and sorted(told) == sorted(r.trial_id for r in rows)  # every ask told once
    assert [r.number for r in rows] == list(range(N_TRIALS))
    assert len({r.config_hash for r in rows}) == N_TRIALS
    assert len({tuple(sorted(r.params.items())) for r in rows}) == N_TRIALS
    assert all(r.state in ("completed", "failed") for r in rows)
    assert all(r.values and len(r.values) == 1 for r in rows if r.state == "completed")
    assert study_complete(engine, study.study_id) and ask_next(engine, study.study_id) is None


def test_asks_are_reproducible_and_multi_objective_nsga2(engine):
    cfg = tpe_config()
    exp = register(engine, cfg)
    study = create_study(engine, exp, cfg, "60k", 1, base_spec())
    first = []
    for _ in range(6):
        tid = ask_next(engine, study.study_id)
        with session_scope(engine, write=False) as s:
            first.append(s.get(Trial, tid).params)
        tell(engine, tid, values=[first[-1]["dropout"]])
    cfg2 = tpe_config(objectives=["val_loss", "param_count"], strategy="nsga2")
    study2 = create_study(engine, exp, cfg2, "60k", 3, base_spec(3))
    assert study2.strategy == "nsga2" and [o["direction"] for o in study2.objectives] == ["minimize", "minimize"]
    for _ in range(5):
        tid = ask_next(engine, study2.study_id)
        with session_scope(engine, write=False) as s:
            t = s.get(Trial, tid)
            tell(engine, tid, values=[t.params["dropout"], float(t.param_count)])
    # the same study in a fresh database asks the same configurations (seeded)
    with session_scope(engine) as s:
        s.execute(sa.delete(Trial).where(Trial.study_id == study.study_id))
    again = []
    for _ in range(6):
        tid = ask_next(engine, study.study_id)
        with session_scope(engine, write=False) as s:
            again.append(s.get(Trial, tid).params)
        tell(engine, tid, values=[again[-1]["dropout"]])
    assert again == first


def test_small_space_is_exhausted_then_the_study_completes(engine):
    cfg = experiment_config({"strategy": "tpe", "n_trials": 50, "space": {"dropout": [0.0, 0.1, 0.2]}}, budgets=["20k"])
    study = create_study(engine, register(engine, cfg), cfg, "20k", 1, base_spec())
    n_arch = len(study_config(study).context.architectures)
    asked = []
    while (tid := ask_next(engine, study.study_id)) is not None:
        asked.append(tid)
        tell(engine, tid, values=[0.5])
    assert len(asked) == 3 * n_arch
    with session_scope(engine, write=False) as s:
        st = s.get(Study, study.study_id)
    assert st.state == "complete" and st.n_trials == len(asked) and study_complete(engine, study.study_id)
