"""A small seeded seqdb database for the views, scaling and dashboard tests.

Experiment `scale`: budgets 500k / 2M / 20M x horizons 1 / 3 (six tpe search studies) whose
best losses follow L(N) = E_h + A N^-alpha exactly; experiment `mo`: one multi-objective
study (val_loss and latency_ms, both minimized) with a known Pareto front; two workers, one
alive and one long silent; metrics and checkpoints for every finished trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from seqdb.db.engine import session_scope
from seqdb.db.models import (
    Architecture, Budget, Checkpoint, Experiment, Metric, Study, Trial, Worker, utcnow,
)

BUDGETS = {"500k": 500_000, "2M": 2_000_000, "20M": 20_000_000}
HORIZONS = (1, 3)
E_OF_H = {1: 1.0, 3: 1.3}
A_TRUE, ALPHA_TRUE = 30.0, 0.3
# MO study: (val_loss, latency_ms); trials 0, 1, 3 are non-dominated, 2 and 4 are dominated.
MO_VALUES = [(1.0, 9.0), (1.2, 5.0), (1.3, 9.5), (1.5, 2.0), (1.6, 6.0)]
MO_FRONT_NUMBERS = {0, 1, 3}


def true_loss(n: float, horizon: int) -> float:
    return E_OF_H[horizon] + A_TRUE * n ** -ALPHA_TRUE


def exact_params(budget: int) -> int:
    return int(budget * 0.97) + 123  # not round: the views must carry the exact count


def trial_config(d_model: int, lr: float, horizon: int, budget: str) -> dict:
    return {
        "experiment": "scale", "budget": budget, "horizon": horizon, "seed": 0,
        "data": {"dataset_hash": "abc", "context_length": 32, "horizon": horizon,
                 "inputs": [{"name": "x", "kind": "real"}], "targets": [{"name": "y", "kind": "real"}]},
        "model": {"d_model": d_model, "n_layers": 2, "n_head": 4, "n_kv_heads": None, "d_ff": 4 * d_model,
                  "activation": "swiglu", "attention": "mha", "positional": "rope", "norm": "rmsnorm",
                  "prenorm": True, "dropout": 0.1},
        "training": {"learning_rate": lr, "weight_decay": 0.01, "scheduler": "cosine", "warmup_steps": 10,
                     "max_epochs": 5, "effective_batch_size": 64},
        "label": None,
    }


@dataclass
class Seeded:
    best_trial: dict = field(default_factory=dict)  # (budget, horizon) -> trial_id
    trial_ids: list = field(default_factory=list)
    mo_study_id: int = 0
    mo_front_trial_ids: set = field(default_factory=set)
    alive_worker: str = "host-a:1:w"
    dead_worker: str = "host-b:2:w"


TOKENS_PER_STEP = 64 * 32  # effective batch x context length: the `tokens` metric at each evaluation


def _add_metrics(s, trial_id: int, final: float, steps: int = 5) -> None:
    for k in range(1, steps + 1):
        for name, value in (("train_loss", final + 1.0 / k), ("val_loss", final + 0.5 / k - 0.5 / steps)):
            s.add(Metric(trial_id=trial_id, step=10 * k, epoch=k, name=name, value=value, time=1.7e9 + 60 * k))
        for name, value in (("tokens", TOKENS_PER_STEP * 10 * k), ("flops", 6.0 * 1e6 * TOKENS_PER_STEP * 10 * k)):
            s.add(Metric(trial_id=trial_id, step=10 * k, epoch=k, name=name, value=value, time=1.7e9 + 60 * k))


def _search_study(s, exp: Experiment, budget: Budget, horizon: int, seeded: Seeded) -> None:
    arch = Architecture(budget_id=budget.budget_id, d_model=64 * horizon, n_layers=2, n_head=4, n_kv_heads=4, d_ff=256,
                        param_count=exact_params(budget.n_params), non_embedding_params=budget.n_params // 2, config={})
    s.add(arch)
    s.flush()
    st = Study(experiment_id=exp.experiment_id, budget_id=budget.budget_id, horizon=horizon,
               name=f"scale/{budget.label}/h{horizon}", strategy="tpe", n_trials=6, max_epochs=5,
               objectives=[{"name": "val_loss", "direction": "minimize"}], config={})
    s.add(st)
    s.flush()
    best = true_loss(arch.param_count, horizon)
    now = utcnow()
    # (state, loss offset, lr): the best completed trial has exactly the true loss.
    plan = [("completed", 0.0, 1e-3), ("completed", 0.05, 3e-3), ("pruned", 0.3, 1e-2), ("running", None, 3e-4), ("pending", None, 1e-4)]
    for number, (state, offset, lr) in enumerate(plan):
        finished = state in ("completed", "pruned")
        t = Trial(study_id=st.study_id, number=number, config_hash=f"h{st.study_id}-{number}",
                  architecture_id=arch.architecture_id, param_count=arch.param_count,
                  config=trial_config(64, lr, horizon, budget.label), params={"learning_rate": lr, "d_model": 64},
                  state=state, best_val_loss=None if offset is None else best + offset,
                  values=None if offset is None else [best + offset], step=50 if finished else 0,
                  tokens=TOKENS_PER_STEP * 50 if finished else None,
                  epochs_done=5 if state == "completed" else (2 if state == "pruned" else 0),
                  batch_config={"batch_size": 16, "accumulation": 4, "effective_batch_size": 64} if finished else None,
                  started_at=now - timedelta(minutes=10) if state != "pending" else None,
                  finished_at=now - timedelta(minutes=1) if finished else None, heartbeat_at=now)
        s.add(t)
        s.flush()
        seeded.trial_ids.append(t.trial_id)
        if finished:
            _add_metrics(s, t.trial_id, t.best_val_loss)
            s.add(Checkpoint(trial_id=t.trial_id, path=f"ckpt/{t.trial_id}.pt", bytes=1000, sha256="0" * 64,
                             step=50, epoch=5, val_loss=t.best_val_loss, is_best=True))
        if number == 0:
            seeded.best_trial[(budget.label, horizon)] = t.trial_id


def _mo_study(s, seeded: Seeded) -> None:
    exp = Experiment(name="mo", yaml_text="name: mo", content_hash="m" * 64, config={})
    s.add(exp)
    s.flush()
    b = Budget(experiment_id=exp.experiment_id, label="2M", n_params=2_000_000)
    s.add(b)
    s.flush()
    st = Study(experiment_id=exp.experiment_id, budget_id=b.budget_id, horizon=1, name="mo/2M/h1", strategy="multi",
               n_trials=5, max_epochs=3, objectives=[{"name": "val_loss", "direction": "minimize"},
                                                      {"name": "latency_ms", "direction": "minimize"}], config={})
    s.add(st)
    s.flush()
    seeded.mo_study_id = st.study_id
    for number, (loss, latency) in enumerate(MO_VALUES):
        t = Trial(study_id=st.study_id, number=number, config_hash=f"mo-{number}", param_count=1_900_000 + number,
                  config=trial_config(32 + 16 * number, 1e-3, 1, "2M"), params={"d_model": 32 + 16 * number},
                  state="completed", best_val_loss=loss, values=[loss, latency], epochs_done=3, step=30,
                  started_at=utcnow() - timedelta(minutes=5), finished_at=utcnow())
        s.add(t)
        s.flush()
        if number in MO_FRONT_NUMBERS:
            seeded.mo_front_trial_ids.add(t.trial_id)


def seed(engine) -> Seeded:  # noqa: ANN001
    """Fill an empty, migrated seqdb database with the fixture described above."""
    seeded = Seeded()
    with session_scope(engine) as s:
        exp = Experiment(name="scale", yaml_text="name: scale", content_hash="s" * 64, config={})
        s.add(exp)
        s.flush()
        for label, n in BUDGETS.items():
            budget = Budget(experiment_id=exp.experiment_id, label=label, n_params=n)
            s.add(budget)
            s.flush()
            for h in HORIZONS:
                _search_study(s, exp, budget, h, seeded)
        _mo_study(s, seeded)
        first_study = s.get(Study, 1)
        running = [tid for tid in seeded.trial_ids][3]
        s.add(Worker(name=seeded.alive_worker, host="host-a", pid=1, study_id=first_study.study_id, state="running",
                     last_seen_at=utcnow(), current_trial_id=running, tokens_per_s=12345.0))
        s.add(Worker(name=seeded.dead_worker, host="host-b", pid=2, state="running",
                     last_seen_at=utcnow() - timedelta(hours=1), tokens_per_s=10.0))
    return seeded


def heartbeat(url: str, name: str) -> None:
    """What a live worker does: stamp last_seen_at now (module-scoped fixtures outlive 120 s)."""
    import sqlalchemy as sa

    from seqdb.db.engine import create_engine_for

    eng = create_engine_for(url)
    with session_scope(eng) as s:
        s.execute(sa.update(Worker).where(Worker.name == name).values(last_seen_at=utcnow()))
    eng.dispose()


def migrate_and_seed(url: str) -> Seeded:
    """Migrate the database at `url` to head and seed it (for module-scoped read-only fixtures)."""
    from seqdb.db.engine import create_engine_for
    from seqdb.db.migrate import upgrade

    eng = create_engine_for(url)
    try:
        upgrade(eng)
        return seed(eng)
    finally:
        eng.dispose()
