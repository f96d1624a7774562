"""MLflow's metric writes, run by benchmarks/bench_queue.py in MLflow's own interpreter.

    python benchmarks/peer_mlflow.py TRACKING_URI ROWS ARTIFACTS_DIR   -> prints {"rows_per_s": ...}

`log_batch` in calls of 1000 metrics (MLflow's per-call limit), 10 metric names per step, the
same shape as seqdb's writer benchmark. TRACKING_URI: sqlite:///FILE or postgresql+psycopg://...
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid


def main() -> None:
    uri, n_rows, artifacts = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment(f"bench-{uuid.uuid4().hex[:6]}", artifact_location=artifacts))
    names = [f"m{i}" for i in range(10)]
    t0, batch = time.perf_counter(), []
    for step in range(n_rows // 10):
        now = int(time.time() * 1000)
        batch += [Metric(n, 0.001 * step, now, step) for n in names]
        if len(batch) >= 1000:
            client.log_batch(run.info.run_id, metrics=batch)
            batch = []
    if batch:
        client.log_batch(run.info.run_id, metrics=batch)
    print(json.dumps({"rows_per_s": n_rows / (time.perf_counter() - t0)}))


if __name__ == "__main__":
    main()
