"""`--workers N`: N worker processes on this host (spawned, so no CUDA or DB handles are
inherited). With `--device cuda` worker i is pinned to visible GPU i mod n, with `--gpus 0,1,3`
to the i-th listed one: its CUDA_VISIBLE_DEVICES names that GPU alone and it trains on
`cuda:0`; the worker table records the GPU as the machine numbers it (`gpus.py`).

The parent forwards SIGINT / SIGTERM / SIGUSR1 to the children (each finishes its step, checkpoints and
leaves its trial resumable) and waits for them. Workers on other hosts need nothing from
this: they share the queue through the database URL alone.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from dataclasses import replace
from typing import Optional

from seqdb.runner.executor import EventSink, Executor, no_events
from seqdb.runner.gpus import ENV as CUDA_ENV, plan_gpus
from seqdb.runner.worker import STOP_SIGNALS, WorkerSettings, WorkerSummary, run_worker


def _child(settings: WorkerSettings, executor: Executor, events: EventSink, queue, gpu: Optional[str] = None) -> None:  # noqa: ANN001
    from seqdb.errors import SeqdbError

    if gpu is not None:  # before anything touches CUDA in this fresh (spawned) process
        os.environ[CUDA_ENV] = gpu
    try:
        queue.put(run_worker(settings, executor, events))
    except SeqdbError as exc:  # a setup problem: one line to the parent, which fails the command
        queue.put(exc)


def run_pool(settings: WorkerSettings, workers: int, executor: Executor, events: EventSink = no_events,
             gpus: Optional[list[str]] = None) -> list[WorkerSummary]:
    """Run `workers` workers (in this process when 1 and nothing is pinned) and return their
    summaries; each child gets a pickled copy of `executor` and, on GPUs, its own GPU."""
    pins = plan_gpus(settings.device, workers, gpus)
    if workers <= 1 and pins[0] is None:
        return [run_worker(settings, executor, events)]
    if settings.threads is None and settings.device == "cpu":  # share the cores, no oversubscription
        settings = replace(settings, threads=max(1, (os.cpu_count() or 1) // workers))
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = []
    for i in range(workers):
        child = replace(settings, label=f"w{i}", device="cuda:0" if pins[i] is not None else settings.device)
        proc = ctx.Process(target=_child, args=(child, executor, events, results, pins[i]), name=f"seqdb-worker-{i}")
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
