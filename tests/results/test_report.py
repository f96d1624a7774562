"""The test-set report: baselines, block-bootstrap intervals and honest verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from seqdb.data.windows import WindowSet
from seqdb.results.report import (
    TargetInfo, block_length, bootstrap_means, build_report, collect_outputs, interval, persistence, score_positions, score_rows,
    summary_lines, verdict,
)  # fmt: skip


def _logits_for(classes: np.ndarray, k: int, strength: float) -> np.ndarray:
    out = np.zeros((len(classes), k))
    out[np.arange(len(classes)), classes] = strength
    return out


def _direction_case(n: int, seed: int):
    """A direction target that is 60% 'up'; persistence is an independent coin."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.6).astype(np.int64)
    prev = (rng.random(n) < 0.5).astype(np.int64)
    info = TargetInfo(name="dir", kind="categorical", n_classes=2, task="direction", train_class_freq=[0.4, 0.6])
    return rng, y, prev, info


def test_a_model_that_knows_the_answer_beats_every_baseline():
    _, y, prev, info = _direction_case(2000, 0)
    rep = build_report([info], {"dir": y}, {"dir": _logits_for(y, 2, 4.0)}, {"dir": prev}, resamples=300)
    v = rep.verdicts()
    assert v[("dir", "loss", "majority class")] == "beats"
    assert v[("dir", "hit_rate", "majority class")] == "beats"
    assert v[("dir", "hit_rate", "persistence")] == "beats"
    acc = next(r for r in rep.rows if r.metric == "hit_rate")
    assert acc.value == pytest.approx(1.0) and acc.low <= 1.0 <= acc.high + 1e-12


def test_a_model_that_only_predicts_the_majority_does_not_beat_it():
    _, y, prev, info = _direction_case(2000, 1)
    # always "up" with the training frequencies: identical to the majority baseline
    logits = np.tile(np.log([0.4, 0.6]), (len(y), 1))
    rep = build_report([info], {"dir": y}, {"dir": logits}, {"dir": prev}, resamples=300)
    v = rep.verdicts()
    assert v[("dir", "hit_rate", "majority class")] == "does not beat"
    assert v[("dir", "loss", "majority class")] == "does not beat"
    lines = summary_lines(rep)
    assert any("does not beat majority class" in line for line in lines)


def test_a_confidently_wrong_model_is_reported_worse():
    _, y, prev, info = _direction_case(2000, 2)
    rep = build_report([info], {"dir": y}, {"dir": _logits_for(1 - y, 2, 3.0)}, {"dir": prev}, resamples=300)
    assert rep.verdicts()[("dir", "loss", "majority class")] == "worse"
    assert rep.verdicts()[("dir", "hit_rate", "persistence")] == "worse"


def test_regression_baselines_zero_mean_persistence():
    rng = np.random.default_rng(3)
    n = 1500
    truth = rng.standard_normal(n)  # normalised units
    info = TargetInfo(name="ret", kind="real", task="regression", mean=0.001, std=0.01, train_mean=0.0)
    noisy = truth + 0.3 * rng.standard_normal(n)
    prev = rng.standard_normal(n)
    rep = build_report([info], {"ret": truth}, {"ret": noisy}, {"ret": prev}, resamples=300)
    v = rep.verdicts()
    assert {b for (t, m, b) in v if m == "mse"} == {"zero", "train mean", "persistence"}
    assert v[("ret", "mse", "zero")] == "beats" and v[("ret", "hit_rate", "persistence")] == "beats"
    mse_orig = next(r for r in rep.rows if r.metric == "mse_original")
    assert mse_orig.value == pytest.approx(np.mean(((noisy - truth) * 0.01) ** 2))
    # a model that predicts the training mean does not beat the mean; pure noise is worse
    rep2 = build_report([info], {"ret": truth}, {"ret": np.zeros(n)}, {"ret": prev}, resamples=300)
    assert rep2.verdicts()[("ret", "mse", "train mean")] == "does not beat"
    rep3 = build_report([info], {"ret": truth}, {"ret": rng.standard_normal(n)}, {"ret": prev}, resamples=300)
    assert rep3.verdicts()[("ret", "mse", "train mean")] == "worse"


def test_rows_without_a_target_or_persistence_are_left_out():
    _, y, prev, info = _direction_case(400, 4)
    y = y.copy()
    y[:50] = -1
    prev = prev.copy()
    prev[50:100] = -1
    rep = build_report([info], {"dir": y}, {"dir": _logits_for(np.maximum(y, 0), 2, 1.0)}, {"dir": prev}, resamples=50)
    assert rep.n_rows == 300


def test_block_bootstrap_is_seeded_and_widens_with_serial_dependence():
    rng = np.random.default_rng(5)
    iid = rng.standard_normal(4000)
    walk = np.repeat(rng.standard_normal(200), 20)  # strongly dependent: runs of 20
    a = bootstrap_means(iid, 500, 1, np.random.default_rng(0))
    assert np.array_equal(a, bootstrap_means(iid, 500, 1, np.random.default_rng(0)))
    lo, hi = interval(a, 0.95)
    assert lo < iid.mean() < hi
    narrow = np.subtract(*interval(bootstrap_means(walk, 500, 1, np.random.default_rng(0)), 0.95)[::-1])
    wide = np.subtract(*interval(bootstrap_means(walk, 500, 40, np.random.default_rng(0)), 0.95)[::-1])
    assert wide > 2 * narrow  # i.i.d. resampling would understate the uncertainty
    assert block_length(1000) == 10


def test_verdict_rules():
    assert verdict(-0.2, -0.1, lower_is_better=True) == "beats"
    assert verdict(-0.2, 0.1, lower_is_better=True) == "does not beat"
    assert verdict(0.1, 0.2, lower_is_better=True) == "worse"
    assert verdict(0.01, 0.02, lower_is_better=False) == "beats"
    assert verdict(-0.02, -0.01, lower_is_better=False) == "worse"


def test_scored_rows_outputs_and_persistence_from_a_window_set():
    T, L, h = 30, 5, 2
    y = np.arange(T, dtype=np.int64) % 3
    ws = WindowSet(real=np.arange(T, dtype=np.float32)[:, None], cat=np.zeros((T, 0), np.int64), targets={"c": y},
                   starts=np.array([0, 3, 10, 25]), context_length=L)
    rows = score_rows(ws)
    assert rows.tolist() == [*range(0, 8), *range(10, 15), *range(25, 30)]  # each covered row once
    w, j = score_positions(ws)
    assert (w[3], j[3]) == (0, 3)  # row 3: window 0 gives it more context than window 1
    prev = persistence(ws, "c", h)
    expected = [y[r - h] if (r - ws.starts[wi]) >= h else -1 for r, wi in zip(rows, w)]
    assert prev.tolist() == expected and expected.count(-1) == 6
    seen = collect_outputs(lambda real, cat: {"c": real[..., 0] * 10}, ws, batch=3)
    assert seen["c"].tolist() == (rows * 10.0).tolist()  # the output at each row's own position
