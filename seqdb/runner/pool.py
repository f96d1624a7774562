"""`--workers N`: N worker processes on this host (spawned, so no CUDA or DB handles are
inherited). With several visible GPUs and `--device cuda`, worker i gets `cuda:i mod n`.

The parent forwards SIGINT / SIGTERM / SIGUSR1 to the children (each finishes its step, checkpoints and
leaves its trial resumable) and waits for them. Workers on other hosts need nothing from
this: they share the queue through the database URL alone.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from dataclasses import replace

from seqdb.runner.executor import EventSink, Executor, no_events
from seqdb.runner.worker import STOP_SIGNALS, WorkerSettings, WorkerSummary, run_worker


def device_for(device: str, index: int) -> str:
    """`cuda` with several GPUs visible: one per worker; any explicit device is kept."""
    if device != "cuda":
        return device
    import torch

    n = torch.cuda.device_count()
    return f"cuda:{index % n}" if n > 1 else device


def _child(settings: WorkerSettings, executor: Executor, events: EventSink, queue) -> None:  # noqa: ANN001
    from seqdb.errors import SeqdbError

    try:
        queue.put(run_worker(settings, executor, events))
    except SeqdbError as exc:  # a setup problem: one line to the parent, which fails the command
        queue.put(exc)


def run_pool(settings: WorkerSettings, workers: int, executor: Executor, events: EventSink = no_events) -> list[WorkerSummary]:
    """Run `workers` workers (in this process when 1) and return their summaries; each child
    gets a pickled copy of `executor`."""
    if workers <= 1:
        return [run_worker(settings, executor, events)]
    if settings.threads is None and settings.device == "cpu":  # share the cores, no oversubscription
        settings = replace(settings, threads=max(1, (os.cpu_count() or 1) // workers))
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = []
    for i in range(workers):
        child = replace(settings, label=f"w{i}", device=device_for(settings.device, i))
        proc = ctx.Process(target=_child, args=(child, executor, events, results), name=f"seqdb-worker-{i}")
        proc.start()
        procs.append(proc)

    def forward(signum, _frame):  # noqa: ANN001
        for p in procs:
            if p.is_alive() and p.pid:
                try:
                    os.kill(p.pid, signum)
                except ProcessLookupError:
                    pass

    old = {s: signal.signal(s, forward) for s in STOP_SIGNALS}
    try:
        summaries = []
        for _ in procs:
            summaries.append(_get(results, procs))
        for p in procs:
            p.join()
        errors = [s for s in summaries if isinstance(s, BaseException)]
        if errors:
            raise errors[0]
        return [s for s in summaries if s is not None]
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _get(results, procs):  # noqa: ANN001, ANN202
    """Next summary from a child; None once every child has exited without sending one."""
    import queue as _queue

    while True:
        try:
            return results.get(timeout=0.5)
        except _queue.Empty:
            if not any(p.is_alive() for p in procs):
                try:
                    return results.get_nowait()
                except _queue.Empty:
                    return None
