"""Data preparation without a database: windows, purge gap, targets, statistics, id maps."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from seqdb.data.prepare import build_prepared, plan_dataset
from seqdb.data.split import PARTS
from seqdb.errors import DataError
from seqdb.experiment.schema import ExperimentConfig
from tests.data.synth import experiment, long_frame


def _build(tmp_path, frame: pl.DataFrame, **over):
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    frame.write_csv(tmp_path / "data" / "long.csv")
    cfg = ExperimentConfig.model_validate(experiment(**over))
    plan = plan_dataset(cfg, tmp_path)
    return plan, build_prepared(plan)


def _rows(starts: np.ndarray, length: int) -> np.ndarray:
    return starts[:, None] + np.arange(length)[None, :]


@pytest.mark.parametrize("mode", ["within", "sequences"])
def test_no_window_or_target_crosses_a_split_or_sequence(tmp_path, mode):
    """The leakage test: the rows a part uses as inputs or targets are disjoint from every
    other part's, windows stay in one sequence and one part, and targets match brute force."""
    frame = long_frame(lengths=[60, 45, 80, 70, 66])
    horizons = [1, 3, 5]
    plan, built = _build(tmp_path, frame, horizons=horizons, split={"mode": mode, "validation": 0.2, "test": 0.2})
    a, L = built.arrays, 8
    x = frame.sort(["sequenceId", "itemPosition"])["x"].to_numpy()
    seq, part = a["sequence"], a["part"]
    for h in horizons:
        y = a[f"target0_h{h}"]
        used = {}
        for p, name in enumerate(PARTS):
            rows = _rows(a[f"starts_{name}"], L)
            assert rows.size > 0
            assert (seq[rows] == seq[rows[:, :1]]).all(), "a window crosses a sequence boundary"
            assert (part[rows] == p).all(), "a window leaves its part"
            inputs = np.unique(rows)
            labelled = inputs[y[inputs] >= 0]
            future = (labelled[:, None] + np.arange(1, h + 1)[None, :]).ravel()
            assert (seq[future] == np.repeat(seq[labelled], h)).all()
            brute = np.array([x[t + 1 : t + h + 1].sum() > 0 for t in labelled], dtype=np.int64)
            assert (y[labelled] == brute).all()
            used[name] = set(inputs.tolist()) | set(future.tolist())
        assert not used["train"] & used["validation"]
        assert not used["train"] & used["test"]
        assert not used["validation"] & used["test"]
        if mode == "within":  # the gap holds the future of the last train rows: no lost targets
            train_rows = np.unique(_rows(a["starts_train"], L))
            assert (y[train_rows] >= 0).all()


def test_statistics_and_maps_come_from_training_rows_only(tmp_path):
    frame = long_frame(n_seq=2, n_rows=80)
    plan, built = _build(tmp_path / "a", frame)
    held_out = np.flatnonzero(built.arrays["part"] != 0)  # validation, test and gap rows
    assert held_out.size > 20
    sorted_frame = frame.sort(["sequenceId", "itemPosition"])
    idx = pl.Series(np.isin(np.arange(frame.height), held_out))
    changed = sorted_frame.with_columns(
        [pl.when(idx).then(pl.col(c) * 100 + 50).otherwise(pl.col(c)).alias(c) for c in ("x", "y", "z")]
        + [pl.when(idx).then(pl.lit("zzz")).otherwise(pl.col("c")).alias("c")]
    )
    plan2, built2 = _build(tmp_path / "b", changed)
    assert plan2.content_hash != plan.content_hash
    assert built2.meta["statistics"]["real"] == built.meta["statistics"]["real"]
    assert built2.meta["id_maps"] == built.meta["id_maps"]
    assert (built2.arrays["cat"][built2.arrays["part"] == 1] == 1).all(), "an unseen category must map to 1 (other)"
    train = built.arrays["part"] == 0
    raw = sorted_frame.filter(pl.Series(train))
    st = built.meta["statistics"]["real"]["y"]
    assert st["mean"] == pytest.approx(raw["y"].mean()) and st["std"] == pytest.approx(raw["y"].std(ddof=0))
    normalised = built.arrays["real"][train][:, 1]
    assert normalised.mean() == pytest.approx(0, abs=1e-5) and normalised.std() == pytest.approx(1, abs=1e-4)


def test_id_maps_reserved_ids_rare_values_and_precomputed(tmp_path):
    frame = long_frame(n_seq=1, n_rows=100)
    frame = frame.with_columns(pl.when(pl.col("itemPosition") == 100).then(pl.lit("once")).otherwise(pl.col("c")).alias("c"))
    frame = frame.with_columns(pl.when(pl.col("itemPosition") == 102).then(None).otherwise(pl.col("c")).alias("c"))
    _, built = _build(tmp_path / "a", frame, data={"rare_threshold": 2})
    maps = built.meta["id_maps"]["c"]
    assert maps == {"a": 2, "b": 3, "c": 4, "d": 5} and built.meta["vocab_sizes"]["c"] == 6
    assert built.arrays["cat"][0, 0] == 1 and built.arrays["cat"][1, 0] == 0  # rare -> other, missing -> unknown
    given = {"c": {"d": 7, "c": 2, "b": 3}}
    _, built = _build(tmp_path / "b", long_frame(n_seq=1, n_rows=100), data={"id_maps": given})
    cats = long_frame(n_seq=1, n_rows=100)["c"].to_numpy()
    expected = np.array([given["c"].get(v, 1) for v in cats])
    assert (built.arrays["cat"][:, 0] == expected).all() and built.meta["vocab_sizes"]["c"] == 8


def test_tasks_regression_threshold_next_category(tmp_path):
    frame = long_frame(n_seq=2, n_rows=70)
    targets = [
        {"column": "y", "task": "regression", "name": "y_last"},
        {"column": "x", "task": "regression", "aggregate": "sum", "name": "x_sum"},
        {"column": "x", "task": "threshold", "threshold": 0.5, "name": "x_big"},
        {"column": "c", "task": "next_category"},
    ]
    plan, built = _build(tmp_path, frame, target=targets, horizons=[2])
    a, s = built.arrays, frame.sort(["sequenceId", "itemPosition"])
    ok = a["target0_h2"] == a["target0_h2"]  # not NaN
    t = np.flatnonzero(ok)
    st = built.meta["statistics"]["targets"]["y_last"]["2"]
    assert np.allclose(a["target0_h2"][t] * st["std"] + st["mean"], s["y"].to_numpy()[t + 2], atol=1e-4)
    xs = s["x"].to_numpy()
    st = built.meta["statistics"]["targets"]["x_sum"]["2"]
    assert np.allclose(a["target1_h2"][t] * st["std"] + st["mean"], xs[t + 1] + xs[t + 2], atol=1e-4)
    big = a["target2_h2"]
    assert (big[t] == ((xs[t + 1] + xs[t + 2]) > 0.5)).all() and (big[~ok] == -1).all()
    assert (a["target3_h2"][t] == a["cat"][t + 2, 0]).all()
    kinds = {m["name"]: (m["kind"], m["n_classes"]) for m in built.meta["targets"]}
    assert kinds == {"y_last": ("real", 0), "x_sum": ("real", 0), "x_big": ("categorical", 2), "c": ("categorical", 6)}


def test_nan_policies(tmp_path):
    frame = long_frame(n_seq=1, n_rows=60).with_columns(
        pl.when(pl.col("itemPosition").is_in([100, 140])).then(float("nan")).otherwise(pl.col("y")).alias("y")
    )
    with pytest.raises(DataError, match=r"line 2: column 'y' is nan .*allowed: finite numbers, or set data.nan_policy"):
        _build(tmp_path / "a", frame)
    for policy in ("ffill", "zero"):
        _, built = _build(tmp_path / policy, frame, data={"nan_policy": policy})
        assert np.isfinite(built.arrays["real"]).all()
    ys = built.arrays["real"][:, 1]
    assert ys[0] == 0.0 and ys[20] == 0.0  # zero: the training mean


def test_short_sequences_are_skipped_and_counted(tmp_path):
    _, built = _build(tmp_path / "a", long_frame(lengths=[60, 9, 70]))  # 9 < context 8 + horizon 3
    assert built.meta["skipped_sequences"] == 1 and built.meta["n_sequences_kept"] == 2
    with pytest.raises(DataError, match=r"all 2 sequences are shorter than context_length \+ max horizon \(11 rows; longest 10\)"):
        _build(tmp_path / "b", long_frame(lengths=[10, 9]))
