"""`seqdb run --ddp 2` on CPU (gloo): rank 0 alone claims, heartbeats and records; both
ranks train every trial and share rank 0's checkpoints; a kill of either rank leaves the
trial resumable and the next `seqdb run --ddp 2` finishes it from its last checkpoint."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.cluster.real import make_project, metric_steps, registered_steps, start_run, tiny_experiment, trials, wait_until, workers

MAX_STEPS = 20


def rank_pids(parent: int) -> dict[int, int]:
    """{rank: pid} of the rank processes a `seqdb run --ddp` parent started."""
    out = {}
    for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        rank = [e for e in env if e.startswith(b"RANK=")]
        if rank:
            out[int(rank[0][5:])] = int(pid)
    return out


def _kill_rank_mid_trial(path, url, engine, rank: int, log) -> int:  # noqa: ANN001
    """Start `seqdb run --ddp 2`, SIGKILL `rank` once a checkpoint is registered; returns the
    parent's exit status."""
    proc = start_run(path, url, "--ddp", "2", log=log)
    try:
        assert wait_until(engine, "SELECT COUNT(*) FROM checkpoint WHERE step > 0", 180, proc), log.read_text()[-3000:]
        pids = rank_pids(proc.pid)
        assert sorted(pids) == [0, 1], pids
        os.kill(pids[rank], signal.SIGKILL)
        return proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _finish(path, url, engine, log) -> None:  # noqa: ANN001
    final = start_run(path, url, "--ddp", "2", log=log)
    assert final.wait(timeout=240) == 0, log.read_text()[-3000:]
    (t,) = trials(engine)
    assert (t.state, t.step) == ("completed", MAX_STEPS), t
    assert metric_steps(engine, t.trial_id) == (MAX_STEPS, 1, MAX_STEPS)  # rank 0 alone reports
    assert {(w["device"], w["info"]["label"]) for w in workers(engine)} == {("cpu", "ddp2")}  # rank 0 alone registers


@pytest.mark.timeout(420)
def test_killed_follower_leaves_the_trial_resumable(db_url, tmp_path):
    path, log = tmp_path / "proj", tmp_path / "run.log"
    _, engine = make_project(path, db_url, tiny_experiment("ddp", max_steps=MAX_STEPS))
    rc = _kill_rank_mid_trial(path, db_url, engine, 1, log)
    assert rc != 0 and "error: DDP worker: rank 1 killed by SIGKILL" in log.read_text(), log.read_text()[-3000:]
    (t,) = trials(engine)
    assert (t.state, t.attempt) == ("stopped", 0) and 0 < t.step == max(registered_steps(engine, t.trial_id)), t
    assert [w["state"] for w in workers(engine)] == ["stopped"]  # one worker row: rank 0's
    _finish(path, db_url, engine, log)
    assert f"resuming at step {t.step}" in log.read_text()
    engine.dispose()


@pytest.mark.timeout(420)
def test_killed_rank_zero_is_resumed_after_its_lease(pg_url, tmp_path):
    path, log = tmp_path / "proj", tmp_path / "run.log"
    _, engine = make_project(path, pg_url, tiny_experiment("ddp0", max_steps=MAX_STEPS))
    rc = _kill_rank_mid_trial(path, pg_url, engine, 0, log)
    assert rc != 0 and "rank 0 killed by SIGKILL" in log.read_text(), log.read_text()[-3000:]
    (t,) = trials(engine)
    assert t.state == "running" and t.step > 0, t  # its lease runs out; the next claimer reaps it
    _finish(path, pg_url, engine, log)
    assert trials(engine)[0].attempt == 1 and f"resuming at step {t.step}" in log.read_text()
    engine.dispose()
