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
MAX_STEPS = 24


def _preempt_once(path, url, engine, rng: random.Random, log) -> tuple[str, str]:  # noqa: ANN001
    """Start a worker and signal it at a random instant: a random delay after it registered
    (claiming, loading data, building the model) or after a random training step was
    recorded (mid-trial, in whatever step it is then). Returns (signal, instant)."""
    proc = start_run(path, url, log=log)
    try:
        done = trials(engine)[0].step or 0  # this run resumes there: its first new step is done + 1
        sig = rng.choice([signal.SIGTERM, signal.SIGUSR1])
        step = rng.choice([0, rng.randrange(done + 1, MAX_STEPS - 1)]) if done + 1 < MAX_STEPS - 1 else 0
        anchor = f"SELECT COUNT(*) FROM metric WHERE name = 'train_loss' AND step >= {step}" if step else \
            "SELECT COUNT(*) FROM worker WHERE state = 'running'"
        assert wait_until(engine, anchor, 180, proc), log.read_text()[-3000:]
        delay = rng.uniform(0.0, 1.0)
        time.sleep(delay)
        sent = time.monotonic()
        proc.send_signal(sig)
        rc = proc.wait(timeout=GRACE_S)
        assert rc == 0 and time.monotonic() - sent < GRACE_S, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return sig.name, f"{delay:.2f}s after " + (f"step {step}" if step else "registering")


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
        if trials(engine)[0].state == "completed":  # a signal late in the last step: nothing left to preempt
            break
        seen.append(_preempt_once(path, db_url, engine, rng, log))
        _check_released(engine)
        stops = log.read_text().count("stopped: signal SIG")  # the signal may come after the last step
        assert stops == len(seen) or (stops == len(seen) - 1 and trials(engine)[0].state == "completed"), (seed, seen, log.read_text()[-3000:])
    stopped_at = trials(engine)[0].step
    final = start_run(path, db_url, log=log)
    assert final.wait(timeout=240) == 0, log.read_text()[-3000:]
    (t,) = trials(engine)
    assert (t.state, t.attempt, t.step) == ("completed", 0, MAX_STEPS), (seed, seen, t)
    assert metric_steps(engine, t.trial_id) == (MAX_STEPS, 1, MAX_STEPS)
    if 0 < stopped_at < MAX_STEPS:
        assert f"resuming at step {stopped_at}" in log.read_text(), (seed, seen)
    engine.dispose()
