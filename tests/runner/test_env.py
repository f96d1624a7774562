"""trial.env: where a trial ran (threads, versions, commit, host), written under the lease."""

from __future__ import annotations

import platform
import socket

import torch

from seqdb import __version__
from seqdb.db.engine import session_scope
from seqdb.db.models import Trial
from seqdb.runner.env import record_env, run_env
from seqdb.runner.queue import Lease, claim_trial, register_worker
from seqdb.search.study import create_study
from tests.search.fixtures import base_spec, experiment_config, register


def test_env_is_recorded_only_under_the_workers_lease(engine):
    cfg = experiment_config({"strategy": "grid", "space": {"learning_rate": [1e-3]}}, budgets=["60k"])
    study = create_study(engine, register(engine, cfg), cfg, "60k", 1, base_spec())
    worker = register_worker(engine, study_id=study.study_id)
    lease = claim_trial(engine, worker.worker_id, [study.study_id])
    stale = Lease(**{**lease.__dict__, "attempt": lease.attempt + 1})
    assert record_env(engine, stale) is False
    assert record_env(engine, lease) is True
    with session_scope(engine, write=False) as s:
        env = s.get(Trial, lease.trial_id).env
    assert env == run_env()
    assert env["threads"] == torch.get_num_threads() and env["torch"] == torch.__version__ and env["seqdb"] == __version__
    assert env["python"] == platform.python_version() and env["host"] == socket.gethostname()
    assert env["git_commit"] is None or len(env["git_commit"]) == 40
