"""Scaling points: one measured (N, loss) pair, optionally with tokens D and a replicate group.

CSV input for `seqdb scaling fit POINTS.csv`: a header row with `N` and `loss` (any order,
case-insensitive), optionally `D` (tokens, for `--law nd`) and `group` (rows with the same
group are seed replicates of one budget). Numbers may use the budget suffixes k/M/B.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from seqdb.errors import ConfigError, DataError

_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
COLUMNS = ("n", "loss", "d", "group")


@dataclass(frozen=True)
class Point:
    N: float
    loss: float
    D: Optional[float] = None
    group: Optional[str] = None


def _number(text: str, where: str) -> float:
    t = text.strip().replace("_", "").replace(",", "")
    scale = _SUFFIX.get(t[-1:].lower(), 1.0) if t and t[-1:].isalpha() else 1.0
    try:
        value = float(t[:-1] if scale != 1.0 else t) * scale
    except ValueError:
        raise DataError(f"{where}: {text!r} is not a number (allowed: e.g. 1e6, 2000000, 2M)") from None
    if not math.isfinite(value) or value <= 0:
        raise DataError(f"{where}: {text!r} must be a positive finite number")
    return value


def _header(row: list[str], path: Path) -> dict[str, int]:
    cols = {c.strip().lower(): i for i, c in enumerate(row)}
    unknown = sorted(set(cols) - set(COLUMNS))
    if unknown:
        raise DataError(f"{path}: unknown column(s) {', '.join(unknown)} (allowed: N, loss, D, group)")
    missing = [c for c in ("n", "loss") if c not in cols]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(m if m == 'loss' else 'N' for m in missing)} (need N and loss)")
    return cols


def read_points_csv(path: Path | str) -> list[Point]:
    """Points of a CSV file; every failure names the file, row and column."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file (expected a CSV with columns N, loss[, D, group])")
    with path.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path}: empty file (expected a header row N, loss[, D, group])")
    cols = _header(rows[0], path)
    points = []
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise DataError(f"{path}: row {i} has {len(row)} field(s), the header has {len(rows[0])}")
        cell = lambda c: row[cols[c]]  # noqa: E731
        d = _number(cell("d"), f"{path}: row {i}, column D") if "d" in cols and cell("d").strip() else None
        group = cell("group").strip() or None if "group" in cols else None
        points.append(Point(_number(cell("n"), f"{path}: row {i}, column N"),
                            _number(cell("loss"), f"{path}: row {i}, column loss"), d, group))
    return points
