"""Data preparation without a database: windows, purge gap, targets, statistics, id maps."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from seqdb.data.prepare import build_prepared, plan_dataset
from seqdb.data.split import GAP, PARTS, build_layout, calendar_cuts, valid_mask
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


def staggered(frame: pl.DataFrame, step: int = 24) -> pl.DataFrame:
    """The sequences start `step` positions (days) apart: one calendar, different spans."""
    return frame.with_columns((pl.col("itemPosition") + (pl.col("sequenceId") - 10) * step).alias("itemPosition"))


SPLITS = {"within": {"mode": "within"}, "sequences": {"mode": "sequences"}, "calendar": {"mode": "within", "by": "itemPosition"}}


@pytest.mark.parametrize("mode", list(SPLITS))
def test_no_window_or_target_crosses_a_split_or_sequence(tmp_path, mode):
    """The leakage test: the rows a part uses as inputs or targets are disjoint from every
    other part's, windows stay in one sequence and one part, and targets match brute force;
    by calendar (split.by) also no validation or test time overlaps any training time."""
    frame = staggered(long_frame(lengths=[60, 45, 80, 70, 66]))
    horizons = [1, 3, 5]
    plan, built = _build(tmp_path, frame, horizons=horizons, split={**SPLITS[mode], "validation": 0.2, "test": 0.2})
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
        if mode == "calendar":
            times = a["positions"]
            span = {name: (times[list(rows)].min(), times[list(rows)].max()) for name, rows in used.items()}
            assert span["train"][1] < span["validation"][0] and span["validation"][1] < span["test"][0]
        if mode != "sequences":  # the gap holds the future of the last train rows: no lost targets
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


# ---- the split alone: every gap, every mode, and a broken train-target limit -------------
def leaks(layout, h: int, seq: np.ndarray, times: np.ndarray | None) -> list[str]:
    """What a target of horizon h could see that it must not: rows read across sequences, rows
    used by two parts, and (with times) a training time at or after a validation/test time."""
    ok = valid_mask(layout, h)
    t = np.flatnonzero(ok)
    future = t[:, None] + np.arange(1, h + 1)[None, :]  # [V, h] rows each valid target reads
    out = []
    if (future >= len(seq)).any() or (seq[np.minimum(future, len(seq) - 1)] != seq[t][:, None]).any():
        out.append("a target reads another sequence")
        future = np.minimum(future, len(seq) - 1)
    used = {}
    for p, name in enumerate(PARTS):
        mine = layout.part[t] == p
        used[name] = np.union1d(np.flatnonzero(layout.part == p), future[mine].ravel())
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        if np.intersect1d(used[a], used[b]).size:
            out.append(f"{a} and {b} share rows")
        if times is not None and used[a].size and used[b].size and times[used[a]].max() >= times[used[b]].min():
            out.append(f"{a} reaches the time of {b}")
    return out


def _sequences(lengths, step: int):
    """starts, ends, sequence of each row, and times: sequence i starts at day i * step."""
    ends = np.cumsum(lengths)
    starts = ends - np.asarray(lengths)
    seq = np.repeat(np.arange(len(lengths)), lengths)
    times = np.concatenate([np.arange(n) + i * step for i, n in enumerate(lengths)]).astype(np.float64)
    return starts, ends, seq, times


@pytest.mark.parametrize("mode", list(SPLITS))
def test_every_gap_up_to_the_largest_horizon_is_leak_free_and_a_broken_limit_is_caught(mode):
    starts, ends, seq, times = _sequences([90, 60, 120, 75], step=20)
    max_h = 6
    for gap in range(0, max_h + 1):
        kind = SPLITS[mode]
        layout = build_layout(starts, ends, mode=kind["mode"], validation=0.2, test=0.2, gap=gap if mode != "sequences" else 0,
                              times=times if "by" in kind else None)
        for h in range(1, max_h + 1):
            if mode != "sequences" and h > gap:
                continue  # a gap shorter than the horizon is allowed; its targets are dropped, tested below
            assert leaks(layout, h, seq, times if "by" in kind else None) == [], (mode, gap, h)
        broken = build_layout(starts, ends, mode=kind["mode"], validation=0.2, test=0.2, gap=gap if mode != "sequences" else 0,
                              times=times if "by" in kind else None)
        broken.limit[broken.part == 0] += 1  # the mutation: train targets may read one row too far
        h = gap + 1 if mode != "sequences" else 1  # the one horizon whose last train target the right limit drops
        assert leaks(broken, h, seq, times if "by" in kind else None), (mode, gap, "the broken limit went unnoticed")


@pytest.mark.parametrize("mode", ["within", "calendar"])
def test_a_gap_shorter_than_the_horizon_drops_the_targets_that_would_leak(mode):
    starts, ends, seq, times = _sequences([90, 60, 120, 75], step=20)
    for gap in range(0, 6):
        layout = build_layout(starts, ends, mode="within", validation=0.2, test=0.2, gap=gap,
                              times=times if mode == "calendar" else None)
        for h in range(gap + 1, 7):
            assert leaks(layout, h, seq, times if mode == "calendar" else None) == [], (mode, gap, h)


def test_within_overlaps_in_calendar_time_across_sequences_and_split_by_does_not():
    starts, ends, seq, times = _sequences([90, 60, 120, 75], step=30)
    plain = build_layout(starts, ends, mode="within", validation=0.2, test=0.2, gap=3)
    assert "train reaches the time of validation" in leaks(plain, 3, seq, times)
    cal = build_layout(starts, ends, mode="within", validation=0.2, test=0.2, gap=3, times=times)
    assert leaks(cal, 3, seq, times) == []
    t_va, t_te = calendar_cuts(times, 0.2, 0.2)
    assert (times[cal.part == 1] >= t_va).all() and (times[cal.part == 1] < t_te).all() and (times[cal.part == 2] >= t_te).all()
    assert (times[cal.part == 0] < t_va).all() and np.mean(times < t_va) == pytest.approx(0.6, abs=0.01)
    late = np.flatnonzero(seq == 3)  # starts at day 90: its first rows are past nothing, but cut at the same dates
    assert set(np.unique(cal.part[late])) <= {0, 1, 2, GAP}


def test_split_by_is_checked(tmp_path):
    frame = staggered(long_frame(lengths=[60, 60]))
    with pytest.raises(ValueError, match="split.by"):
        ExperimentConfig.model_validate(experiment(split={"by": "day"}))
    with pytest.raises(ValueError, match="split.by"):
        ExperimentConfig.model_validate(experiment(split={"by": "itemPosition", "mode": "sequences"}))
    with pytest.raises(ValueError, match="split.by"):
        ExperimentConfig.model_validate(experiment(split={"by": "c"}))  # a categorical column is no time
    clock = frame.with_columns(pl.col("itemPosition").cast(pl.Float64).alias("z"))  # a real column as the time
    _build(tmp_path / "ok", clock, split={"by": "z"})
    backwards = clock.with_columns(pl.when(pl.col("itemPosition") == 110).then(pl.lit(500.0)).otherwise(pl.col("z")).alias("z"))
    with pytest.raises(DataError, match=r"split.by 'z': the time decreases within a sequence"):
        _build(tmp_path / "a", backwards, split={"by": "z"})
    flat = frame.with_columns(pl.lit(1.0).alias("z"))
    with pytest.raises(DataError, match=r"split.by 'z': 1 distinct time"):
        _build(tmp_path / "b", flat, split={"by": "z"})
    plan_a, _ = _build(tmp_path / "c", frame)
    plan_b, _ = _build(tmp_path / "d", frame, split={"by": "itemPosition"})
    assert plan_a.content_hash != plan_b.content_hash and "by" not in plan_a.settings["split"]
