from __future__ import annotations

import pytest

from seqdb.experiment.registry import register_experiment
from tests.data.synth import experiment, long_frame, make_project, write_experiment


@pytest.fixture
def project(tmp_path, db_url):
    return make_project(tmp_path / "proj", db_url)


@pytest.fixture
def setup(project, engine):
    """setup(frame=None, **experiment changes) -> experiment name, data written, experiment added."""

    def make(frame=None, filename: str = "long.csv", **over):
        frame = long_frame() if frame is None else frame
        path = project.root / "data" / filename
        frame.write_parquet(path) if filename.endswith(".parquet") else frame.write_csv(path)
        cfg = experiment(**over)
        cfg["data"] = {**cfg["data"], "path": f"data/{filename}"}
        register_experiment(engine, write_experiment(project, cfg, name=f"{cfg['name']}.yaml"))
        return cfg["name"]

    return make
