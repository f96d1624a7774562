"""The honest test-set report: the final model against naive baselines, with bootstrap intervals.

Scored rows: every row the test windows cover, once, at the position with the longest
context any window gives it (the rows the trainer's test loss covers, without double
counting overlapping windows). Per target:

- categorical (direction, threshold, next category): cross-entropy and accuracy (named
  `hit_rate` for the direction task, where it is the direction hit rate). Baselines: **majority class** (the training split's most
  frequent class; its loss uses the training class frequencies as a fixed distribution) and
  **persistence** (the target observed `horizon` rows earlier, which is known at the time
  of the forecast: the last h-step direction, the current category).
- real (regression): MSE in normalised units and in original units, and the direction hit
  rate (sign agreement). Baselines: **zero** (a zero return: 0 in original units), the
  training **mean**, and **persistence**.

Intervals: a moving-block bootstrap over the scored rows in time order (blocks keep the
serial dependence of a time series; block length ~ n^(1/3)), 95% by default. For each
baseline the paired difference model − baseline gets its own interval, and the verdict is
"beats" only when the whole interval is on the better side; otherwise the report says the
model **does not beat** that baseline (or is worse). Nothing is rounded in the model's favour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import numpy as np

from seqdb.data.windows import WindowSet

LOWER_IS_BETTER = {"loss": True, "mse": True, "mse_original": True, "accuracy": False, "hit_rate": False}


@dataclass
class TargetInfo:
    """What the report must know about one target besides its arrays."""

    name: str
    kind: str  # categorical | real
    n_classes: int = 0
    task: Optional[str] = None
    mean: float = 0.0  # real: original = normalised * std + mean
    std: float = 1.0
    train_class_freq: Optional[list[float]] = None  # categorical: class frequencies in train
    train_mean: float = 0.0  # real: mean of the normalised training targets


@dataclass
class Comparison:
    baseline: str
    value: float
    diff: float  # model - baseline
    diff_low: float
    diff_high: float
    verdict: str  # beats | does not beat | worse


@dataclass
class MetricRow:
    target: str
    metric: str
    value: float
    low: float
    high: float
    comparisons: list[Comparison] = field(default_factory=list)


@dataclass
class TestReport:
    n_rows: int
    confidence: float
    resamples: int
    block: int
    rows: list[MetricRow]

    def to_json(self) -> dict:
        return asdict(self)

    def verdicts(self) -> dict[tuple[str, str, str], str]:
        return {(r.target, r.metric, c.baseline): c.verdict for r in self.rows for c in r.comparisons}


# --------------------------------------------------------------------------------------
# collecting predictions on the test windows
# --------------------------------------------------------------------------------------
def score_positions(ws: WindowSet) -> tuple[np.ndarray, np.ndarray]:
    """(window index, position) scoring each row the windows cover exactly once, at the
    position with the longest context any window gives it; ordered by row (time order)."""
    L = ws.context_length
    rows = (ws.starts[:, None] + np.arange(L)[None, :]).ravel()  # [N * L]
    order = np.lexsort((np.tile(np.arange(L), len(ws)), rows))  # by row, then position
    last = np.r_[rows[order][1:] != rows[order][:-1], True]  # the longest context of each row
    flat = order[last]
    return flat // L, flat % L


def score_rows(ws: WindowSet) -> np.ndarray:
    """The row each scored (window, position) stands for, in time order."""
    w, j = score_positions(ws)
    return ws.starts[w] + j


def collect_outputs(
    predict: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]], ws: WindowSet, batch: int = 256,
    select: Optional[Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] = None,
) -> dict[str, np.ndarray]:
    """Outputs {target: logits [M, K] | pred [M]} at the scored positions of `ws`;
    `select(idx)` gives the model's (real, cat) inputs of windows idx (default: every column)."""
    select = select or (lambda idx: ws.batch(idx)[:2])
    w, j = score_positions(ws)
    out: dict[str, np.ndarray] = {}
    for lo in range(0, len(ws), batch):
        idx = np.arange(lo, min(lo + batch, len(ws)))
        pick = np.flatnonzero((w >= lo) & (w < idx[-1] + 1))
        for name, value in predict(*select(idx)).items():
            value = np.asarray(value)
            if name not in out:
                out[name] = np.empty((len(w), *value.shape[2:]), dtype=value.dtype)
            out[name][pick] = value[w[pick] - lo, j[pick]]
    return out


def persistence(ws: WindowSet, name: str, horizon: int) -> np.ndarray:
    """The target observed `horizon` rows before each scored row, when that row is inside the
    same window (so never from another sequence or split); -1 / NaN where it is not."""
    w, j = score_positions(ws)
    arr = np.asarray(ws.targets[name])
    rows = ws.starts[w] + j
    ok = j >= horizon
    prev = arr[np.where(ok, rows - horizon, rows)]
    missing = -1 if arr.dtype.kind in "iu" else np.nan
    return np.where(ok, prev, missing).astype(arr.dtype)


# --------------------------------------------------------------------------------------
# per-row scores (the bootstrap resamples rows of these)
# --------------------------------------------------------------------------------------
def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def categorical_scores(y: np.ndarray, logits: np.ndarray, prev: np.ndarray, info: TargetInfo) -> dict[str, dict[str, np.ndarray]]:
    """{metric: {"model"|baseline: per-row values}} for a categorical target."""
    logp = log_softmax(logits)
    freq = np.asarray(info.train_class_freq if info.train_class_freq else np.full(logits.shape[1], 1.0 / logits.shape[1]))
    freq = np.clip(freq / freq.sum(), 1e-12, None)
    majority = int(np.argmax(freq))
    rows = np.arange(len(y))
    hits = "hit_rate" if info.task == "direction" else "accuracy"  # for direction, accuracy is the hit rate
    return {
        "loss": {"model": -logp[rows, y], "majority class": -np.log(freq[y])},
        hits: {
            "model": (logp.argmax(axis=-1) == y).astype(np.float64),
            "majority class": (y == majority).astype(np.float64),
            "persistence": (prev == y).astype(np.float64),
        },
    }


def real_scores(y: np.ndarray, pred: np.ndarray, prev: np.ndarray, info: TargetInfo) -> dict[str, dict[str, np.ndarray]]:
    """{metric: {"model"|baseline: per-row values}} for a real target (y, pred normalised)."""
    to_orig = lambda v: v.astype(np.float64) * info.std + info.mean  # noqa: E731
    zero = np.full(len(y), (0.0 - info.mean) / (info.std or 1.0))  # 0 in original units, normalised
    mean = np.full(len(y), info.train_mean)
    preds = {"model": pred, "zero": zero, "train mean": mean, "persistence": prev}
    y_orig = to_orig(y)
    out = {
        "mse": {k: (v.astype(np.float64) - y) ** 2 for k, v in preds.items()},
        "mse_original": {k: (to_orig(v) - y_orig) ** 2 for k, v in preds.items()},
        "hit_rate": {k: (np.sign(to_orig(v)) == np.sign(y_orig)).astype(np.float64) for k, v in preds.items() if k not in ("zero", "train mean")},
    }
    return out


def valid_mask(y: np.ndarray, prev: np.ndarray, kind: str) -> np.ndarray:
    """Rows with a target and a persistence value (the same rows for every comparison)."""
    if kind == "categorical":
        return (y >= 0) & (prev >= 0)
    return np.isfinite(y) & np.isfinite(prev)


# --------------------------------------------------------------------------------------
# the moving-block bootstrap
# --------------------------------------------------------------------------------------
def block_length(n: int) -> int:
    return max(1, int(round(n ** (1.0 / 3.0))))


def bootstrap_means(values: np.ndarray, resamples: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `resamples` moving-block resamples of `values` (time order) [resamples]."""
    n = len(values)
    block = min(block, n)
    n_blocks = max(1, n // block)
    sums = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    block_sums = sums[block:] - sums[:-block]  # [n - block + 1]
    starts = rng.integers(0, len(block_sums), size=(resamples, n_blocks))
    return block_sums[starts].sum(axis=1) / (n_blocks * block)


def interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    a = (1.0 - confidence) / 2.0
    return float(np.quantile(samples, a)), float(np.quantile(samples, 1.0 - a))


def verdict(low: float, high: float, lower_is_better: bool) -> str:
    better_side = high < 0 if lower_is_better else low > 0
    worse_side = low > 0 if lower_is_better else high < 0
    return "beats" if better_side else ("worse" if worse_side else "does not beat")


def compare(metric: str, series: dict[str, np.ndarray], target: str, *, resamples: int, block: int, confidence: float, seed: int) -> MetricRow:
    """One metric row: the model's mean with its interval and one comparison per baseline.
    Each resample uses the same block starts for the model and the baselines (paired)."""
    model = series["model"]
    boot = lambda v: bootstrap_means(v, resamples, block, np.random.default_rng(seed))  # noqa: E731 - same starts
    low, high = interval(boot(model), confidence)
    row = MetricRow(target, metric, float(model.mean()), low, high)
    for name, base in series.items():
        if name == "model":
            continue
        diff = model - base
        d_low, d_high = interval(boot(diff), confidence)
        row.comparisons.append(
            Comparison(name, float(base.mean()), float(diff.mean()), d_low, d_high, verdict(d_low, d_high, LOWER_IS_BETTER[metric]))
        )
    return row


def build_report(
    targets: list[TargetInfo],
    y: dict[str, np.ndarray],
    outputs: dict[str, np.ndarray],
    prev: dict[str, np.ndarray],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    block: Optional[int] = None,
) -> TestReport:
    """The report from the scored rows: true targets, model outputs and persistence values
    per target (normalised units / class ids), rows in time order."""
    rows: list[MetricRow] = []
    n_used = 0
    for info in targets:
        mask = valid_mask(y[info.name], prev[info.name], info.kind)
        yt, out, pv = y[info.name][mask], outputs[info.name][mask], prev[info.name][mask]
        n_used = max(n_used, int(mask.sum()))
        if len(yt) < 2:
            continue
        blk = block or block_length(len(yt))
        scores = categorical_scores(yt.astype(np.int64), out, pv.astype(np.int64), info) if info.kind == "categorical" else real_scores(yt, out, pv, info)
        for metric, series in scores.items():
            rows.append(compare(metric, series, info.name, resamples=resamples, block=blk, confidence=confidence, seed=seed))
    return TestReport(n_used, confidence, resamples, block or block_length(max(n_used, 1)), rows)


def summary_lines(report: TestReport) -> list[str]:
    """One sentence per (target, metric, baseline), stating plainly whether the model beats it."""
    pct = int(round(report.confidence * 100))
    lines = []
    for r in report.rows:
        for c in r.comparisons:
            lines.append(
                f"{r.target} {r.metric}: model {r.value:.4g} vs {c.baseline} {c.value:.4g} — "
                f"the model {c.verdict} {c.baseline} (difference {c.diff:+.3g}, {pct}% CI [{c.diff_low:+.3g}, {c.diff_high:+.3g}])"
            )
    return lines

