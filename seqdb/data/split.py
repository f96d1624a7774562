"""Chronological split with a purge gap, window starts, and horizon-shifted targets.

Rows of all kept sequences are concatenated in (sequence, position) order. Each row gets a
part: 0 train, 1 validation, 2 test, -1 gap (never inside a window).

`within` mode cuts every sequence by position (its own fractions, unless `split.by`):

    | train (n - v - s - 2g) | gap g | validation v | gap g | test s |

with v = round(n * split.validation), s = round(n * split.test), g = split.gap (default: the
largest horizon). `sequences` mode puts whole sequences, in sequence-id order, into train,
validation and test (no gap needed: targets never leave their sequence).

`split.by: <time column>` (with mode within) cuts every sequence at the SAME two times,
computed once over all rows: validation starts at the time below which 1 - v - s of all rows
lie, test at the time below which 1 - s lie. Each sequence keeps its purge gap of g rows before
each cut, so no validation or test period overlaps any training period of any sequence in
calendar time (rows with equal times always fall in one part). The times must not decrease
within a sequence.

Each row t has a `limit[t]`: the last row its targets may look at. For a train row it is the
last gap row before validation, for a validation row the last gap row before test, for a test
row the end of the sequence. A target whose horizon reaches past the limit is ignored (-1 or
NaN). So a training target reads rows only from train and the following gap; validation
inputs and targets start after that gap: no training target overlaps a validation or test
input or target, and no validation target overlaps a test input or target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqdb.errors import DataError

PARTS = ("train", "validation", "test")
GAP = -1


@dataclass
class Layout:
    """Per-row bookkeeping of the split (all arrays over kept rows, length T)."""

    part: np.ndarray  # int8 [T]: 0 train, 1 validation, 2 test, -1 gap
    limit: np.ndarray  # int64 [T]: last row index the targets of row t may use
    seg_start: np.ndarray  # int64 [P]: first row of each contiguous (sequence, part) segment
    seg_end: np.ndarray  # int64 [P]: one past its last row
    seg_part: np.ndarray  # int8 [P]
    skipped: int  # sequences dropped as too short


def sequence_bounds(seq_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of runs of equal sequence codes in a sorted [T] array."""
    change = np.flatnonzero(seq_codes[1:] != seq_codes[:-1]) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    ends = np.concatenate([change, [seq_codes.shape[0]]]).astype(np.int64)
    return starts, ends


def within_layout(starts: np.ndarray, ends: np.ndarray, validation: float, test: float, gap: int) -> list[np.ndarray]:
    """Per sequence, the 6 cut points [start, tr_end, va_start, va_end, te_start, end]."""
    n = ends - starts
    n_val = np.rint(n * validation).astype(np.int64)
    n_test = np.rint(n * test).astype(np.int64)
    te_start = ends - n_test
    va_end = te_start - gap
    va_start = va_end - n_val
    tr_end = va_start - gap
    return [starts, tr_end, va_start, va_end, te_start, ends]


def calendar_cuts(times: np.ndarray, validation: float, test: float, column: str = "split.by") -> tuple[float, float]:
    """(validation start, test start): the two cut times shared by every sequence."""
    ordered = np.sort(times)
    at = lambda q: ordered[min(ordered.shape[0] - 1, int(round(ordered.shape[0] * q)))]  # noqa: E731
    t_va, t_te = at(1 - validation - test), at(1 - test)
    if not ordered[0] < t_va < t_te:
        raise DataError(f"{column}: {np.unique(ordered).shape[0]} distinct time(s) cannot be cut into train, validation and test "
                        f"at the fractions {validation}, {test}; allowed: a column with more distinct times")
    return float(t_va), float(t_te)


def calendar_layout(starts: np.ndarray, ends: np.ndarray, times: np.ndarray, validation: float, test: float, gap: int,
                    column: str = "split.by") -> list[np.ndarray]:
    """Per sequence, the 6 cut points of `within_layout` at the shared cut times. times: [T]."""
    seq = np.repeat(np.arange(starts.shape[0]), ends - starts)  # [T] sequence of each row
    back = np.flatnonzero((np.diff(times) < 0) & (seq[1:] == seq[:-1]))
    if back.size:
        raise DataError(f"{column}: the time decreases within a sequence at row {int(back[0]) + 1} "
                        f"({times[back[0]]} then {times[back[0] + 1]}); allowed: times that never decrease along a sequence")
    t_va, t_te = calendar_cuts(times, validation, test, column)
    per_seq = lambda mask: np.bincount(seq[mask], minlength=starts.shape[0])  # noqa: E731
    te_start = ends - per_seq(times >= t_te)
    va_start = ends - per_seq(times >= t_va)
    return [starts, va_start - gap, va_start, np.maximum(te_start - gap, va_start), te_start, ends]


def build_layout(starts: np.ndarray, ends: np.ndarray, *, mode: str, validation: float, test: float, gap: int, skipped: int = 0,
                 times: np.ndarray | None = None, by: str = "split.by") -> Layout:
    """Assign every row of the (already length-filtered) sequences to a part; `times` [T]: cut by calendar."""
    if mode == "within":
        if times is None:
            cuts = within_layout(starts, ends, validation, test, gap)
        else:
            cuts = calendar_layout(starts, ends, times, validation, test, gap, column=by)
        s, tr_end, va_start, va_end, te_start, e = cuts
        segs = [(s, np.maximum(tr_end, s), 0, va_start - 1), (np.maximum(va_start, s), va_end, 1, te_start - 1), (te_start, e, 2, e - 1)]
    else:
        n_seq = starts.shape[0]
        n_val, n_test = int(round(n_seq * validation)), int(round(n_seq * test))
        part_of = np.zeros(n_seq, dtype=np.int8)
        part_of[max(0, n_seq - n_test - n_val) : n_seq - n_test] = 1
        part_of[n_seq - n_test :] = 2
        segs = [(np.where(part_of == p, starts, ends), ends, p, ends - 1) for p in (0, 1, 2)]
    return _rows_from_segments(starts, ends, segs, skipped=skipped)


def _rows_from_segments(starts: np.ndarray, ends: np.ndarray, segs: list, skipped: int) -> Layout:
    """Expand (start, end, part, limit) segments per sequence into per-row arrays."""
    total = int(ends[-1]) if ends.size else 0
    part = np.full(total, GAP, dtype=np.int8)
    limit = np.full(total, -1, dtype=np.int64)
    seg_start, seg_end, seg_part = [], [], []
    for a, b, p, lim in segs:
        a, b, lim = np.asarray(a), np.asarray(b), np.broadcast_to(lim, np.shape(a))
        ok = b > a
        a, b, lim = a[ok], b[ok], lim[ok]
        idx = _ranges(a, b)
        part[idx] = p
        limit[idx] = np.repeat(lim, b - a)
        seg_start.append(a)
        seg_end.append(b)
        seg_part.append(np.full(a.shape, p, dtype=np.int8))
    order = np.argsort(np.concatenate(seg_start), kind="stable")
    return Layout(part, limit, np.concatenate(seg_start)[order], np.concatenate(seg_end)[order], np.concatenate(seg_part)[order], skipped)


def _ranges(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Concatenation of arange(a[i], b[i]) for all i, without a Python loop."""
    lengths = b - a
    if lengths.sum() == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(a - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(lengths.sum(), dtype=np.int64) + offsets


def window_starts(layout: Layout, part: int, context_length: int, stride: int, *, cover_end: bool) -> np.ndarray:
    """int64 [N]: start rows of the windows inside the part's segments (stride apart; with
    `cover_end` one more window aligned to each segment's end, so every row is covered)."""
    sel = layout.seg_part == part
    a, b = layout.seg_start[sel], layout.seg_end[sel]
    fits = (b - a) >= context_length
    a, b = a[fits], b[fits]
    last = b - context_length  # last valid start per segment
    count = (last - a) // stride + 1
    starts = np.repeat(a, count) + stride * (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    if cover_end:
        extra = last[(last - a) % stride != 0]
        starts = np.sort(np.concatenate([starts, extra]))
    return starts.astype(np.int64)


# ---- targets ---------------------------------------------------------------------------
def forward_sum(x: np.ndarray, h: int) -> np.ndarray:
    """float64 [T]: x[t+1] + ... + x[t+h] (NaN where t+h runs past the array)."""
    out = np.full(x.shape[0], np.nan)
    if h < x.shape[0]:
        acc = np.zeros(x.shape[0] - h)
        for k in range(1, h + 1):
            acc += x[k : x.shape[0] - h + k]
        out[: x.shape[0] - h] = acc
    return out


def forward_value(x: np.ndarray, h: int, fill: float | int) -> np.ndarray:
    """[T]: x[t+h] (`fill` where t+h runs past the array)."""
    out = np.full(x.shape[0], fill, dtype=x.dtype)
    if h < x.shape[0]:
        out[: x.shape[0] - h] = x[h:]
    return out


def valid_mask(layout: Layout, h: int) -> np.ndarray:
    """bool [T]: row t is in a part and t+h does not pass its limit."""
    t = np.arange(layout.part.shape[0])
    return (layout.part != GAP) & (t + h <= layout.limit)


def check_parts(layout: Layout, counts: dict[str, int], context_length: int, source: str) -> None:
    """Every part must hold at least one window."""
    for name, n in counts.items():
        if n == 0:
            rows = int((layout.part == PARTS.index(name)).sum())
            raise DataError(
                f"{source}: split leaves {name} empty ({rows} rows, 0 windows of context_length {context_length}); "
                f"allowed: longer sequences, {'a larger split.' + name if name != 'train' else 'smaller split.validation/test'}, or a smaller context_length"
            )
