"""Real worker processes for the queue tests: start, kill, read their event logs, check the
database's invariants."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]


def spawn_synthetic(url: str, study_ids: list[int], tmp: Path, *, label: str, lease: float = 2.0, steps: int = 10,
                    step_s: float = 0.0, checkpoint_every: int = 5, events: Path | None = None) -> subprocess.Popen:
    args = [sys.executable, "-m", "seqdb.testing.synthetic", "--db", url, "--studies", ",".join(map(str, study_ids)),
            "--artifacts", str(tmp / "artifacts"), "--lease", str(lease), "--steps", str(steps), "--step-s", str(step_s),
            "--checkpoint-every", str(checkpoint_every), "--label", label, "--quiet"]
    if events is not None:
        args += ["--events", str(events)]
    log = open(tmp / f"{label}.log", "ab")
    return subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for_event(path: Path, kind: str, timeout: float = 30.0, **match) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for ev in read_events(path):
            if ev["kind"] == kind and all(ev.get(k) == v for k, v in match.items()):
                return ev
        time.sleep(0.05)
    raise AssertionError(f"no {kind} event {match} within {timeout}s")


def stop_all(procs: list[subprocess.Popen], sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(sig)
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def trial_rows(engine, study_ids: list[int]) -> list:
    with engine.connect() as c:
        return c.execute(
            sa.text("SELECT trial_id, state, attempt, step, lease_owner FROM trial WHERE study_id IN :ids ORDER BY trial_id")
            .bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": study_ids},
        ).all()


def assert_metrics_complete(engine, study_ids: list[int], steps: int) -> None:
    """Every trial has exactly one train_loss row per step 1..steps (the unique index forbids
    duplicates; this checks none is missing)."""
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT m.trial_id, COUNT(*), MIN(m.step), MAX(m.step) FROM metric m JOIN trial t ON t.trial_id = m.trial_id "
                "WHERE t.study_id IN :ids AND m.name = 'train_loss' GROUP BY m.trial_id"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": study_ids},
        ).all()
        n_trials = c.execute(
            sa.text("SELECT COUNT(*) FROM trial WHERE study_id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": study_ids},
        ).scalar_one()
    assert len(rows) == n_trials
    for trial_id, count, lo, hi in rows:
        assert (count, lo, hi) == (steps, 1, steps), f"trial {trial_id}: {count} rows, steps {lo}..{hi}"


def claims_by_trial(events: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = defaultdict(list)
    for ev in events:
        if ev["kind"] == "claim":
            out[ev["trial"]].append(ev)
    return out


def finishes_by_trial(events: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = defaultdict(list)
    for ev in events:
        if ev["kind"] == "finish":
            out[ev["trial"]].append(ev)
    return out


class ForkedWorker:
    """A synthetic worker forked from the test process (modules already imported, so it
    starts in milliseconds: the kill soak can kill many); Popen-like."""

    def __init__(self, argv: list[str]):
        import multiprocessing as mp

        self._proc = mp.get_context("fork").Process(target=_forked_main, args=(argv,), daemon=False)
        self._proc.start()
        self.pid = self._proc.pid

    def poll(self):  # noqa: ANN201
        return self._proc.exitcode

    def kill(self) -> None:
        self._proc.kill()

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float | None = None) -> int:
        self._proc.join(timeout)
        if self._proc.exitcode is None:
            raise subprocess.TimeoutExpired("forked worker", timeout)
        return self._proc.exitcode

    @property
    def returncode(self):  # noqa: ANN201
        return self._proc.exitcode


def _forked_main(argv: list[str]) -> None:
    import signal as _signal

    from seqdb.testing.synthetic import main

    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
    os._exit(main(argv))


def fork_synthetic(url: str, study_ids: list[int], tmp: Path, *, label: str, lease: float, steps: int, step_s: float,
                   checkpoint_every: int, events: Path) -> ForkedWorker:
    return ForkedWorker(["--db", url, "--studies", ",".join(map(str, study_ids)), "--artifacts", str(tmp / "artifacts"),
                         "--lease", str(lease), "--steps", str(steps), "--step-s", str(step_s),
                         "--checkpoint-every", str(checkpoint_every), "--label", label, "--quiet", "--events", str(events)])
