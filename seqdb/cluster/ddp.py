"""`seqdb run --ddp G`: every claimed trial is trained by G processes of this host (DDP).

    parent  (run_ddp)   starts ranks 0..G-1 torchrun-style (RANK, WORLD_SIZE, LOCAL_RANK,
                        MASTER_ADDR, MASTER_PORT), forwards stop signals to rank 0, and ends the
                        whole group as soon as any rank dies
    rank 0  (lead)      the worker: claims, heartbeats and records (a WorkerLoop whose executor
                        first broadcasts the trial, its config and its resume checkpoint, and
                        trains only once every rank has loaded the trial's data)
    rank k  (follow)    receives each trial, trains its shard of every batch, reports nothing
    every rank          `train()` under DDP; rank 0 alone writes checkpoints, all restore the
                        same file; rank 0's stop / prune decisions reach all (trainer.decide)

After each trial the ranks exchange how it went. If that exchange fails a rank has gone: the
trial is handed back as `stopped` (resumable from its last checkpoint, no attempt used) and
the group exits; the parent then reports which rank died. A rank 0 killed outright leaves its
lease to expire, and the next claimer resumes the trial, as for any dead worker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

from seqdb.errors import SeqdbError, TrainingError
from seqdb.runner.execute import TrainExecutor
from seqdb.runner.executor import SetupError, TrialRun
from seqdb.runner.queue import Lease, TrialOutcome
from seqdb.runner.worker import STOP_SIGNALS, WorkerSettings, WorkerSummary, run_worker

ENV_SETTINGS, ENV_SUMMARY = "SEQDB_DDP_SETTINGS", "SEQDB_DDP_SUMMARY"
KILL_AFTER_S = 30.0  # after one rank died, the others get this long to exit before SIGKILL


# ------------------------------------------------------------------------------ rank 0
@dataclass
class DdpExecutor:
    """Rank 0's executor: share the trial with the other ranks, train it together, then check
    that every rank is still there before the outcome is recorded."""

    inner: TrainExecutor

    def pruner(self, engine, lease: Lease):  # noqa: ANN001, ANN201
        return self.inner.pruner(engine, lease)

    def __call__(self, run: TrialRun) -> TrialOutcome:
        trial = {"trial_id": run.lease.trial_id, "study_id": run.lease.study_id, "config": run.lease.config,
                 "resume": str(run.resume.path) if run.resume is not None else None, "checkpoint_dir": str(run.checkpoint_dir)}
        _start_together(trial, lambda: prepare(run.engine, self.inner, trial))
        failure: Optional[BaseException] = None
        try:
            outcome = self.inner(run)
        except Exception as exc:  # noqa: BLE001 - decided below, once we know whether the group is whole
            failure = exc
        _settle(run.lease.trial_id, failure)
        if failure is not None:
            raise failure
        return outcome


def prepare(engine, executor: TrainExecutor, trial: dict):  # noqa: ANN001, ANN201
    """The trial's config and (train, validation) windows, as every rank loads them."""
    from seqdb.config.trial import TrialConfig

    cfg = TrialConfig.model_validate(trial["config"])
    return cfg, executor.windows(engine, trial["study_id"], cfg.horizon)


def _ready(load) -> Optional[str]:  # noqa: ANN001
    """None when `load()` works, else what went wrong (one short line)."""
    try:
        load()
        return None
    except Exception as exc:  # noqa: BLE001 - reported to every rank
        return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _start_together(trial: dict, load) -> None:  # noqa: ANN001
    """Rank 0: send the trial, then train only if every rank could load it; otherwise no
    rank trains it and it is handed back (SetupError: resumable, the worker exits)."""
    from seqdb.train.distributed import all_gather_object, broadcast_object

    try:
        broadcast_object(trial)
        answers = all_gather_object(_ready(load))
    except Exception as exc:  # noqa: BLE001 - the group itself broke
        raise SetupError(TrainingError(f"trial {trial['trial_id']}: a process of the DDP group has gone ({' '.join(str(exc).split())[:300]})")) from None
    problems = [f"rank {rank}: {why}" for rank, why in enumerate(answers) if why]
    if problems:
        raise SetupError(TrainingError(f"trial {trial['trial_id']} cannot start on every rank ({problems[0]}); it is left resumable"))


def _settle(trial_id: int, failure: Optional[BaseException]) -> None:
    """Every rank reports how the trial went; a rank that cannot answer has gone, so the
    trial is handed back (SetupError: released as stopped, the worker exits)."""
    from seqdb.train.distributed import all_gather_object

    try:
        all_gather_object(None if failure is None else type(failure).__name__)
    except Exception as exc:  # noqa: BLE001 - the group itself broke
        why = " ".join(str(failure or exc).split())[:300]
        raise SetupError(TrainingError(f"trial {trial_id}: a process of the DDP group has gone ({why}); the trial is left resumable")) from None


def lead(settings: WorkerSettings, summary_path: Optional[str]) -> int:
    """Rank 0: the ordinary worker loop with the DDP executor; tells the others when done."""
    from seqdb.train.distributed import broadcast_object

    summary = run_worker(settings, DdpExecutor(TrainExecutor(settings.artifacts_root)))
    broadcast_object(None)  # no more trials
    if summary_path:
        Path(summary_path).write_text(json.dumps(asdict(summary)), encoding="utf-8")
    return 0


# ------------------------------------------------------------------------------ ranks > 0
def follow(settings: WorkerSettings, device: str) -> int:
    """Ranks > 0: train every trial rank 0 shares until it says there are no more."""
    from seqdb.db.engine import create_engine_for
    from seqdb.train.distributed import all_gather_object, broadcast_object

    for signum in STOP_SIGNALS:  # rank 0 decides when to stop; its decision reaches us in the trainer
        signal.signal(signum, signal.SIG_IGN)
    engine, executor = create_engine_for(settings.database_url), TrainExecutor(settings.artifacts_root)
    try:
        while (trial := broadcast_object()) is not None:
            if any(all_gather_object(_ready(lambda: prepare(engine, executor, trial)))):
                continue  # some rank cannot load it: nobody trains it (rank 0 hands it back)
            failure = None
            try:
                train_shard(engine, executor, trial, device)
            except Exception as exc:  # noqa: BLE001 - rank 0 sees the same failure and records it
                failure = type(exc).__name__
            all_gather_object(failure)
    finally:
        engine.dispose()
    return 0


def train_shard(engine, executor: TrainExecutor, trial: dict, device: str) -> None:  # noqa: ANN001
    from seqdb.train.reporter import MemoryReporter
    from seqdb.train.trainer import train

    cfg, (train_set, val_set) = prepare(engine, executor, trial)  # cached by the executor since the check
    resume = Path(trial["resume"]) if trial["resume"] else None
    train(cfg, train_set, val_set, MemoryReporter(), checkpoint_dir=Path(trial["checkpoint_dir"]), resume_from=resume, device=device)


def rank_main() -> int:
    """`python -m seqdb.cluster.ddp`: one rank, started by `run_ddp`."""
    from seqdb.train.distributed import init_group

    settings = WorkerSettings(**json.loads(os.environ[ENV_SETTINGS]))
    settings.database_url = os.environ["SEQDB_DATABASE_URL"]  # passed in the environment, never on a command line
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    ctx, device = init_group(settings.device)
    settings = replace(settings, device=device, label=f"ddp{ctx.world}")  # the worker table shows a DDP worker
    try:
        return lead(settings, os.environ.get(ENV_SUMMARY)) if ctx.is_main else follow(settings, device)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


# ------------------------------------------------------------------------------ the parent
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(settings: WorkerSettings, rank: int, world: int, port: int, summary: str, gpus: Optional[list[str]]) -> dict[str, str]:
    fields = {**asdict(settings), "database_url": ""}
    pinned = {"CUDA_VISIBLE_DEVICES": ",".join(gpus)} if gpus else {}
    return {**os.environ, **pinned, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "SEQDB_DATABASE_URL": settings.database_url,
            ENV_SETTINGS: json.dumps(fields), ENV_SUMMARY: summary, "OMP_NUM_THREADS": str(settings.threads or 1)}


def start_ranks(settings: WorkerSettings, world: int, summary: str, gpus: Optional[list[str]]) -> list[subprocess.Popen]:
    port = free_port()
    cmd = [sys.executable, "-m", "seqdb.cluster.ddp"]
    return [subprocess.Popen(cmd, env=rank_env(settings, r, world, port, summary, gpus)) for r in range(world)]


def run_ddp(settings: WorkerSettings, world: int, gpus: Optional[list[str]] = None) -> list[WorkerSummary]:
    """Run one DDP worker of `world` processes here (on `gpus`, rank r on the r-th) until its
    studies are done or it is stopped; raises TrainingError naming a rank that died."""
    if settings.threads is None and settings.device == "cpu":
        settings = replace(settings, threads=max(1, (os.cpu_count() or 1) // world))
    with tempfile.TemporaryDirectory(prefix="seqdb-ddp-") as tmp:
        summary = os.path.join(tmp, "summary.json")
        procs = start_ranks(settings, world, summary, gpus)
        codes = supervise(procs)
        if any(codes):
            raise TrainingError(f"DDP worker: {describe_exit(codes)}; its trial is left resumable (run again to continue)")
        return [WorkerSummary(**json.loads(Path(summary).read_text(encoding="utf-8")))] if os.path.exists(summary) else []


def supervise(procs: list[subprocess.Popen]) -> list[int]:
    """Wait for every rank; forward stop signals to rank 0; once a rank fails, give the rest
    KILL_AFTER_S to exit, then kill them. Returns the exit codes in rank order."""
    def forward(signum, _frame):  # noqa: ANN001
        if procs[0].poll() is None:
            procs[0].send_signal(signum)

    old = {s: signal.signal(s, forward) for s in STOP_SIGNALS}
    try:
        deadline = None
        while any(p.poll() is None for p in procs):
            if deadline is None and any(p.returncode not in (None, 0) for p in procs):
                deadline = time.monotonic() + KILL_AFTER_S
            if deadline is not None and time.monotonic() > deadline:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
            time.sleep(0.1)
        return [p.returncode for p in procs]
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def describe_exit(codes: list[int]) -> str:
    """The ranks that died first (killed by a signal), then those that exited after them."""
    killed = [f"rank {r} killed by {signal.Signals(-c).name}" for r, c in enumerate(codes) if c and c < 0]
    exited = [f"rank {r} exited with status {c}" for r, c in enumerate(codes) if c and c > 0]
    return ", ".join(killed) + (f" (then {', '.join(exited)})" if killed and exited else ", ".join(exited))


if __name__ == "__main__":
    try:
        sys.exit(rank_main())
    except SeqdbError as exc:  # the parent prints the one `error:` line; this is the rank's part of it
        print(f"rank {os.environ.get('RANK', '?')}: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)
