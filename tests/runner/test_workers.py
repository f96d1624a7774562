"""Real worker processes on real SQLite and Postgres: draining, kill soak, graceful stop by
signal and by `seqdb stop`, Postgres connections terminated mid-trial."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import sqlalchemy as sa

from seqdb.db.engine import create_engine_for
from seqdb.runner.reporter import StopFlag
from seqdb.testing.synthetic import SyntheticExecutor, create_synthetic_study
from seqdb.runner.worker import WorkerLoop, WorkerSettings
from seqdb.testing.events import EventLog
from tests.helpers import run_cli
from tests.runner.harness import (
    assert_metrics_complete,
    claims_by_trial,
    finishes_by_trial,
    fork_synthetic,
    read_events,
    spawn_synthetic,
    stop_all,
    trial_rows,
    wait_for_event,
)

SOAK_S = float(os.environ.get("SEQDB_SOAK_S", "15"))
STOP_STEPS = 3000  # 30 s at 10 ms a step: the stop always lands mid-trial, even on a busy machine


def _wait_drained(procs, timeout: float) -> None:
    end = time.monotonic() + timeout
    for p in procs:
        p.wait(max(0.1, end - time.monotonic()))
        assert p.returncode == 0, f"worker exited {p.returncode}"


def test_four_processes_drain_200_trials_exactly_once(engine, db_url, tmp_path):
    sid = create_synthetic_study(engine, 200)
    events = tmp_path / "events.jsonl"
    procs = [spawn_synthetic(db_url, [sid], tmp_path, label=f"w{i}", steps=3, checkpoint_every=3, events=events) for i in range(4)]
    try:
        _wait_drained(procs, 120)
    finally:
        stop_all(procs)
    rows = trial_rows(engine, [sid])
    assert len(rows) == 200 and {r.state for r in rows} == {"completed"} and {r.attempt for r in rows} == {0}
    evs = read_events(events)
    claims, finishes = claims_by_trial(evs), finishes_by_trial(evs)
    assert len(claims) == 200 and all(len(c) == 1 for c in claims.values()), "a trial was claimed twice"
    assert len(finishes) == 200 and all(len(f) == 1 for f in finishes.values())
    assert len({c[0]["worker"] for c in claims.values()}) >= 2, "only one worker got trials"
    assert_metrics_complete(engine, [sid], steps=3)


def test_kill_soak_no_trial_lost_none_completed_twice(engine, db_url, tmp_path):
    """SIGKILL random workers at random instants while they train; respawn; then drain."""
    steps = 30
    sid = create_synthetic_study(engine, 24, max_attempts=10_000)
    events = tmp_path / "events.jsonl"
    spawn = lambda label: fork_synthetic(db_url, [sid], tmp_path, label=label, lease=1.0, steps=steps, step_s=0.02,  # noqa: E731
                                         checkpoint_every=3, events=events)
    procs = [spawn(f"w{i}") for i in range(3)]
    rng, kills = random.Random(7), 0
    end = time.monotonic() + SOAK_S
    try:
        while time.monotonic() < end and any(p.poll() is None for p in procs):
            time.sleep(rng.uniform(0.1, 0.4))
            working = {ev["pid"] for ev in read_events(events) if ev["kind"] == "claim"}
            grown = [i for i, p in enumerate(procs) if p.poll() is None and p.pid in working]
            if not grown:
                continue
            i = rng.choice(grown)  # a worker past its start-up: claiming, training or recording
            procs[i].kill()
            procs[i].wait()
            kills += 1
            procs[i] = spawn(f"w{i}k{kills}")
        soak_s = time.monotonic() - end + SOAK_S
        _wait_drained(procs, 120)
    finally:
        stop_all(procs, signal.SIGKILL)
    print(f"kill soak: {kills} SIGKILLs in {soak_s:.1f}s, drained {time.monotonic() - end + SOAK_S - soak_s:.1f}s later")
    assert kills >= 10, f"only {kills} kills"
    rows = trial_rows(engine, [sid])
    assert {r.state for r in rows} == {"completed"}, [tuple(r) for r in rows if r.state != "completed"]
    assert all(r.step == steps for r in rows)
    evs = read_events(events)
    finishes = finishes_by_trial(evs)
    assert sorted(finishes) == [r.trial_id for r in rows] and all(len(f) == 1 for f in finishes.values()), "completed twice"
    _assert_resumed_from_checkpoints(engine, claims_by_trial(evs))
    assert_metrics_complete(engine, [sid], steps=steps)
    resumed = sum(1 for c in claims_by_trial(evs).values() for ev in c if ev["resume_step"] > 0)
    assert resumed >= kills // 4, f"only {resumed} resumed claims in {kills} kills"


def _assert_resumed_from_checkpoints(engine, claims) -> None:
    """Claims of one trial have distinct attempts (never two live owners), each resumed claim
    started at the newest checkpoint of the attempts before it, and checkpoint steps only grow."""
    with engine.connect() as c:
        ckpts = c.execute(sa.text("SELECT trial_id, attempt, step FROM checkpoint ORDER BY checkpoint_id")).all()
    by_trial: dict[int, list] = {}
    for row in ckpts:
        by_trial.setdefault(row.trial_id, []).append(row)
    for trial_id, cl in claims.items():
        attempts = [ev["attempt"] for ev in cl]
        assert len(attempts) == len(set(attempts)), f"trial {trial_id}: two claims of one attempt {attempts}"
        rows = by_trial.get(trial_id, [])
        steps = [r.step for r in rows]
        assert steps == sorted(steps) and len(steps) == len(set(steps)), f"trial {trial_id}: step counter restarted {steps}"
        for ev in cl:
            before = [r.step for r in rows if r.attempt < ev["attempt"]]
            assert ev["resume_step"] == max(before, default=0), f"trial {trial_id} attempt {ev['attempt']}"


def _stopped_then_resumed(engine, db_url, tmp_path, stop_how) -> None:
    sid = create_synthetic_study(engine, 1)
    events = tmp_path / "events.jsonl"
    proc = spawn_synthetic(db_url, [sid], tmp_path, label="a", lease=3.0, steps=STOP_STEPS, step_s=0.01, checkpoint_every=50, events=events)
    try:
        wait_for_event(events, "claim", timeout=60)
        time.sleep(1.0)
        stop_how(proc)
        assert proc.wait(30) == 0
    finally:
        stop_all([proc], signal.SIGKILL)
    (row,) = trial_rows(engine, [sid])
    assert row.state == "stopped" and 0 < row.step < STOP_STEPS and row.attempt == 0
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT MAX(step) FROM checkpoint")).scalar_one() == row.step  # checkpointed at the stop
        assert c.execute(sa.text("SELECT state FROM worker")).scalar_one() == "stopped"
    second = spawn_synthetic(db_url, [sid], tmp_path, label="b", lease=3.0, steps=STOP_STEPS, checkpoint_every=50, events=events)
    _wait_drained([second], 60)
    (done,) = trial_rows(engine, [sid])
    assert done.state == "completed" and done.step == STOP_STEPS
    assert [ev["resume_step"] for ev in read_events(events) if ev["kind"] == "claim"] == [0, row.step]
    assert_metrics_complete(engine, [sid], steps=STOP_STEPS)


def test_graceful_stop_by_signal_checkpoints_and_resumes(engine, db_url, tmp_path):
    _stopped_then_resumed(engine, db_url, tmp_path, lambda proc: proc.send_signal(signal.SIGTERM))


def test_graceful_stop_by_seqdb_stop(engine, db_url, tmp_path):
    def stop_cmd(_proc):
        result = run_cli("--db", db_url, "stop", "--all")
        assert result.code == 0 and "stop request" in result.out, result.err

    _stopped_then_resumed(engine, db_url, tmp_path, stop_cmd)


def test_worker_rides_out_terminated_postgres_connections(pg_url, tmp_path):
    """pg_terminate_backend on every seqdb connection, repeatedly, mid-trial: the worker
    reconnects; every trial completes once with every metric row, none twice."""
    engine = create_engine_for(pg_url)
    sid = create_synthetic_study(engine, 6)
    events = tmp_path / "events.jsonl"
    settings = WorkerSettings(database_url=pg_url, study_ids=[sid], artifacts_root=str(tmp_path / "art"), lease_s=20,
                              heartbeat_s=0.2, progress=False)
    loop = WorkerLoop(settings, SyntheticExecutor(steps=40, step_s=0.02, checkpoint_every=4), StopFlag(), events=EventLog(str(events)))
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("summary", loop.run()))
    thread.start()
    killer = create_engine_for(pg_url)
    terminated = 0
    while thread.is_alive():
        time.sleep(0.25)
        with killer.connect() as c:
            terminated += c.execute(sa.text(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'seqdb'")).scalar_one()
    thread.join()
    killer.dispose()
    assert terminated >= 5
    summary = result["summary"]
    assert summary.by_state == {"completed": 6} and summary.lost_leases == 0
    rows = trial_rows(engine, [sid])
    assert {(r.state, r.attempt, r.step) for r in rows} == {("completed", 0, 40)}
    finishes = finishes_by_trial(read_events(events))
    assert len(finishes) == 6 and all(len(f) == 1 for f in finishes.values())
    assert_metrics_complete(engine, [sid], steps=40)
    engine.dispose()
