"""Preemption of real trainer workers: SIGTERM or SIGUSR1 at random instants makes `seqdb run`
finish its step, register a checkpoint, hand the trial back without using an attempt, mark
its worker stopped and exit 0 within the grace period; the next run finishes the trial."""

from __future__ import annotations

import random
import signal
import time

import pytest

from seqdb.runner.reporter import resume_point
from tests.cluster.real import make_project, metric_steps, registered_steps, start_run, tiny_experiment, trials, wait_until, workers

GRACE_S = 30.0  # the grace period the Slurm script asks for by default is longer; this is the test's bound
MAX_STEPS = 60


def _preempt_once(path, url, engine, rng: random.Random, log) -> tuple[str, float]:  # noqa: ANN001
    """Start a worker, wait until it is registered, signal it after a random delay; returns
    (signal name, delay)."""
    proc = start_run(path, url, log=log)
    try:
        assert wait_until(engine, "SELECT COUNT(*) FROM worker WHERE state = 'running'", 120, proc), log.read_text()[-3000:]
        sig, delay = rng.choice([signal.SIGTERM, signal.SIGUSR1]), rng.uniform(0.0, 2.5)
        time.sleep(delay)
        sent = time.monotonic()
        proc.send_signal(sig)
        rc = proc.wait(timeout=GRACE_S)
        assert rc == 0 and time.monotonic() - sent < GRACE_S, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return sig.name, delay


def _check_released(engine) -> None:  # noqa: ANN001
    """No attempt used, no lease left, every worker stopped, a stopped trial resumable from
    a registered, intact checkpoint at exactly its recorded step."""
    assert {w["state"] for w in workers(engine)} == {"stopped"}
    (t,) = trials(engine)
    assert t.attempt == 0 and t.state in ("pending", "stopped", "completed"), t
    assert t.state == "completed" or t.lease_expires_at is None
    if t.state == "stopped":
        point = resume_point(engine, t.trial_id)
        assert point is not None and point.step == t.step == max(registered_steps(engine, t.trial_id))


@pytest.mark.timeout(300)
def test_signals_at_random_instants_release_the_trial(db_url, tmp_path):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    path, log = tmp_path / "proj", tmp_path / "run.log"
    _, engine = make_project(path, db_url, tiny_experiment("preempt", max_steps=MAX_STEPS))
    seen = []
    for _ in range(2):
        seen.append(_preempt_once(path, db_url, engine, rng, log))
        _check_released(engine)
        assert log.read_text().count("stopped: signal SIG") == len(seen), (seed, seen, log.read_text()[-3000:])
    stopped_at = trials(engine)[0].step
    final = start_run(path, db_url, log=log)
    assert final.wait(timeout=240) == 0, log.read_text()[-3000:]
    (t,) = trials(engine)
    assert (t.state, t.attempt, t.step) == ("completed", 0, MAX_STEPS), (seed, seen, t)
    assert metric_steps(engine, t.trial_id) == (MAX_STEPS, 1, MAX_STEPS)
    if 0 < stopped_at < MAX_STEPS:
        assert f"resuming at step {stopped_at}" in log.read_text(), (seed, seen)
    engine.dispose()
