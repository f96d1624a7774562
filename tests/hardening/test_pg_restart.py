"""A Postgres restart under a running worker, against a throwaway server this test starts
itself (initdb + pg_ctl on its own port, scram password auth through a passfile: the URL
holds no password). Every trial still finishes exactly once with all its metrics."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from seqdb.db.engine import create_engine_for
from seqdb.db.migrate import upgrade
from seqdb.testing.synthetic import create_synthetic_study
from tests.hardening.pgserver import PgServer, pg_bin
from tests.runner.harness import assert_metrics_complete, finishes_by_trial, read_events, spawn_synthetic, trial_rows

pytestmark = pytest.mark.skipif(pg_bin() is None, reason="no Postgres binaries under /usr/lib/postgresql/*/bin (initdb, pg_ctl)")
STEPS = 20


@pytest.fixture
def server():
    srv = PgServer().init()
    yield srv
    srv.close()


def test_worker_rides_out_a_postgres_restart(server, tmp_path):
    with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", dbname="postgres", passfile=str(server.passfile),
                         autocommit=True) as conn:
        conn.execute("CREATE DATABASE seqdb")
    url = server.url("seqdb")
    engine = create_engine_for(url)
    upgrade(engine)
    sid = create_synthetic_study(engine, 12)
    engine.dispose()
    events = tmp_path / "events.jsonl"
    worker = spawn_synthetic(url, [sid], tmp_path, label="w0", lease=10.0, steps=STEPS, step_s=0.03, events=events)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(finishes_by_trial(read_events(events))) < 2:
            time.sleep(0.1)
        assert len(finishes_by_trial(read_events(events))) >= 2, (tmp_path / "w0.log").read_text()[-2000:]
        server.stop("fast")  # every connection dropped mid-trial
        time.sleep(3.0)
        server.start()
        assert worker.wait(180) == 0, (tmp_path / "w0.log").read_text()[-3000:]
    finally:
        if worker.poll() is None:
            worker.kill()
    engine = create_engine_for(url)
    rows = trial_rows(engine, [sid])
    assert [r.state for r in rows] == ["completed"] * 12
    finishes = finishes_by_trial(read_events(events))
    assert all(len(finishes[r.trial_id]) == 1 for r in rows), "a trial finished twice"
    assert_metrics_complete(engine, [sid], STEPS)
    engine.dispose()
    assert "retrying" in (tmp_path / "w0.log").read_text()  # it did see the outage
