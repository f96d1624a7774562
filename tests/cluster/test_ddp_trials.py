"""`seqdb run --ddp 2` on CPU (gloo): rank 0 alone claims, heartbeats and records; both
ranks train every trial and share rank 0's checkpoints; a preemption (SIGTERM) or a kill of
either rank leaves the trial resumable and the next `seqdb run --ddp 2` resumes it from its
last checkpoint."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.cluster.real import make_project, metric_steps, registered_steps, start_run, tiny_experiment, trials, wait_until, workers

MAX_STEPS = 30


def rank_pids(parent: int) -> dict[int, int]:
    """{rank: pid} of the rank processes a `seqdb run --ddp` parent started."""
    out = {}
    for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        rank = [e for e in env if e.startswith(b"RANK=")]
        if rank:
            out[int(rank[0][5:])] = int(pid)
    return out


def _kill_rank(path, url, engine, rank: int, when: str, log) -> int:  # noqa: ANN001
    """Start `seqdb run --ddp 2`, SIGKILL `rank` once the scalar SQL `when` is true; returns
    the parent's exit status."""
    proc = start_run(path, url, "--ddp", "2", log=log)
    try:
        assert wait_until(engine, when, 180, proc), log.read_text()[-3000:]
        pids = rank_pids(proc.pid)
        assert sorted(pids) == [0, 1], pids
        os.kill(pids[rank], signal.SIGKILL)
        return proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(420)
def test_a_killed_rank_leaves_the_trial_resumable(pg_url, tmp_path):
    path, log = tmp_path / "proj", tmp_path / "run.log"
    _, engine = make_project(path, pg_url, tiny_experiment("ddp", max_steps=MAX_STEPS))

    # preempted (SIGTERM to `seqdb run`): both ranks stop after the same step, rank 0 checkpoints, exit 0
    proc = start_run(path, pg_url, "--ddp", "2", log=log)
    assert wait_until(engine, "SELECT COUNT(*) FROM checkpoint WHERE step > 0", 180, proc), log.read_text()[-3000:]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    (p,) = trials(engine)
    assert (p.state, p.attempt) == ("stopped", 0) and p.step == max(registered_steps(engine, p.trial_id)), p

    # rank 1 dies mid-trial: rank 0 hands the trial back at its last checkpoint, no attempt used
    rc = _kill_rank(path, pg_url, engine, 1, f"SELECT COUNT(*) FROM checkpoint WHERE step > {p.step}", log)
    assert rc != 0 and "error: DDP worker: rank 1 killed by SIGKILL" in log.read_text(), log.read_text()[-3000:]
    (t,) = trials(engine)
    assert (t.state, t.attempt) == ("stopped", 0) and p.step < t.step == max(registered_steps(engine, t.trial_id)), t
    assert f"resuming at step {p.step} (attempt 0)" in log.read_text()  # rank 0 resumed; rank 1 restores the same file (tests/train/test_ddp.py)
    assert [(w["state"], w["device"], w["info"]["label"]) for w in workers(engine)] == [("stopped", "cpu", "ddp2")] * 2  # rank 0 alone

    # both ranks resume from rank 0's checkpoint; rank 0 dies once it holds the trial again: its lease runs out
    claimed = "SELECT COUNT(*) FROM trial t JOIN worker w ON w.worker_id = t.lease_owner WHERE t.state = 'running' AND w.state = 'running'"
    rc = _kill_rank(path, pg_url, engine, 0, claimed, log)
    assert rc != 0 and "rank 0 killed by SIGKILL" in log.read_text(), log.read_text()[-3000:]
    (k,) = trials(engine)
    assert (k.state, k.attempt) == ("running", 0) and k.step >= t.step, k

    # the next run reaps the expired lease (one attempt: a crash) and finishes from the checkpoint
    final = start_run(path, pg_url, "--ddp", "2", log=log)
    assert final.wait(timeout=240) == 0, log.read_text()[-3000:]
    (done,) = trials(engine)
    assert (done.state, done.attempt, done.step) == ("completed", 1, MAX_STEPS), done
    assert metric_steps(engine, done.trial_id) == (MAX_STEPS, 1, MAX_STEPS)  # rank 0 alone reports, each step once
    assert f"resuming at step {k.step} (attempt 1)" in log.read_text(), log.read_text()[-3000:]
    engine.dispose()
