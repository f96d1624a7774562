"""Worker start-up: the executor's warm-up runs before the first claim (no lease is held while
it loads), TrainExecutor's warm-up really loads what the first trial needs, and the executor
still pickles for `--workers N`."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from seqdb.runner import queue as q
from seqdb.runner.execute import TrainExecutor
from seqdb.runner.reporter import StopFlag
from seqdb.runner.worker import WorkerLoop, WorkerSettings
from seqdb.testing.synthetic import SyntheticExecutor, create_synthetic_study


@dataclass
class SlowStart(SyntheticExecutor):
    calls: list = field(default_factory=list)

    def warm_up(self, device: str):
        self.calls.append(("warm_up", device, time.monotonic()))
        done = threading.Event()
        threading.Timer(0.3, done.set).start()
        return lambda: (done.wait(), self.calls.append(("ready", time.monotonic())))


def test_the_first_claim_waits_for_the_warm_up(engine, db_url, tmp_path):
    sid = create_synthetic_study(engine, 2)
    executor = SlowStart(steps=2)
    claims: list[float] = []

    class Loop(WorkerLoop):
        def _next_lease(self, worker_id):  # noqa: ANN001, ANN202
            lease = super()._next_lease(worker_id)
            claims.append(time.monotonic()) if lease is not None else None
            return lease

    settings = WorkerSettings(database_url=db_url, study_ids=[sid], artifacts_root=str(tmp_path), progress=False)
    summary = Loop(settings, executor, StopFlag(), ask_next=lambda *_: None).run()
    assert summary.by_state == {"completed": 2}
    (name, device, started), (ready, ready_at) = executor.calls
    assert (name, device, ready) == ("warm_up", "cpu", "ready") and ready_at - started >= 0.3
    assert claims and claims[0] >= ready_at  # no lease was held while the executor warmed up
    assert q.open_counts(engine, [sid]) == {}


def test_train_executor_warm_up_loads_torch_and_the_optimizer_code():
    probe = ("import sys, time; from seqdb.runner.execute import TrainExecutor; ex = TrainExecutor('a'); "
             "assert 'torch' not in sys.modules; wait = ex.warm_up('cpu'); wait(); "
             "print(all(m in sys.modules for m in ('torch', 'torch._dynamo', 'torch.optim', 'seqdb.train.trainer', 'seqdb.model.transformer')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_train_executor_pickles_without_its_thread_and_caches():
    ex = TrainExecutor("some/artifacts")
    ex._dataset_of[1] = "/data/x"
    wait = ex.warm_up("cpu")
    copy = pickle.loads(pickle.dumps(ex))
    wait()
    assert copy.artifacts_root == "some/artifacts" and copy._warm is None and copy._dataset_of == {} and copy._windows == {}
    assert ex.warm_up("cpu").__self__ is wait.__self__  # started once
