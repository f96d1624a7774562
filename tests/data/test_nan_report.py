"""What each nan policy did is counted per column, stored with the dataset row (in
`statistics.missing`) and printed by `seqdb data prepare` — on SQLite and Postgres."""

from __future__ import annotations

import numpy as np
import polars as pl

from seqdb.data.prepare import prepare_dataset
from seqdb.data.prepared import open_prepared
from tests.data.synth import long_frame
from tests.helpers import run_cli_inprocess


def _holes() -> pl.DataFrame:
    """x: a leading gap in sequence 10 and two values inside it; y: one NaN; c: two nulls."""
    f = long_frame().with_row_index("i")
    x_gone = (pl.col("i") == 0) | pl.col("i").is_in([5, 6])
    return f.with_columns(
        pl.when(x_gone).then(None).otherwise(pl.col("x")).alias("x"),
        pl.when(pl.col("i") == 70).then(float("nan")).otherwise(pl.col("y")).alias("y"),
        pl.when(pl.col("i").is_in([3, 130])).then(None).otherwise(pl.col("c")).alias("c"),
    ).drop("i")


def test_ffill_counts_are_stored_printed_and_match_the_arrays(project, engine, setup):
    name = setup(frame=_holes(), data={"nan_policy": "ffill"})
    res = run_cli_inprocess("--project", str(project.root), "data", "prepare", "--experiment", name, "--no-progress")
    assert res.code == 0, res.err
    assert "missing values: x: 3 missing value(s) (nan_policy ffill): 2 filled forward within the sequence, 1 set to the training mean" in res.out
    assert "missing values: y: 1 missing value(s) (nan_policy ffill): 1 filled forward within the sequence" in res.out
    assert "missing values: c: 2 missing value(s) read as id 0 (unknown)" in res.out
    row = prepare_dataset(engine, project, name)  # the cache hit reads the same report from the row
    assert row.statistics["missing"] == {"x": {"missing": 3, "ffill": 2, "mean": 1}, "y": {"missing": 1, "ffill": 1, "mean": 0},
                                         "c": {"missing": 2, "unknown_id": 2}}
    data = open_prepared(row.path)
    real, cat = np.asarray(data.array("real")), np.asarray(data.array("cat"))
    assert real[0, 0] == 0.0 and real[5, 0] == real[4, 0] == real[6, 0]  # leading gap -> mean (0), then the previous value
    assert (cat[:, 0] == 0).sum() == 2


def test_zero_policy_sets_every_missing_value_to_the_mean_and_clean_data_reports_nothing(project, engine, setup):
    row = prepare_dataset(engine, project, setup(frame=_holes(), data={"nan_policy": "zero"}))
    assert row.statistics["missing"]["x"] == {"missing": 3, "ffill": 0, "mean": 3}
    clean = setup(name="clean")
    res = run_cli_inprocess("--project", str(project.root), "data", "prepare", "--experiment", clean, "--no-progress")
    assert res.code == 0 and "missing values" not in res.out, res.out
    assert prepare_dataset(engine, project, clean).statistics["missing"] == {}
