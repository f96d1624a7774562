"""Real data for the examples: S&P 500 daily prices shipped with the `arch` package.

`write_sp500(out)` writes a long-format CSV, one row per trading day (1999-01-05 .. 2018-12-31,
5030 rows), with these columns:

- `sequenceId`: 0 (one long series) or, with `yearly=True`, the calendar year;
- `itemPosition`: the trading-day index (0, 1, ...), counted over the whole series;
- `date`: ISO date (not a feature; kept for reading the file);
- `log_return`: 100 * log(close_t / close_{t-1}) (percent log return of the adjusted close);
- `log_range`: 100 * log(high_t / low_t) (intraday range, a volatility proxy);
- `log_volume_change`: log(volume_t / volume_{t-1});
- `weekday`: Mon .. Fri (categorical);
- `month`: Jan .. Dec (categorical);
- `move`: the day's return in fixed buckets (categorical, thresholds fixed in advance, not
  fitted to the data): `down_big` (< -1%), `down` (-1% .. -0.25%), `flat` (-0.25% .. 0.25%),
  `up` (0.25% .. 1%), `up_big` (> 1%).
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import polars as pl

from seqdb.data.read import write_long
from seqdb.errors import DataError

MOVE_EDGES = (-1.0, -0.25, 0.25, 1.0)  # percent log-return bucket edges
MOVE_LABELS = ("down_big", "down", "flat", "up", "up_big")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def sp500_source() -> Path:
    """The `sp500.csv.gz` file inside the installed `arch` package (found without importing
    arch, whose import takes seconds)."""
    spec = importlib.util.find_spec("arch")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the `arch` package is not installed; allowed: `pip install arch` (it ships the S&P 500 data)")
    path = Path(spec.submodule_search_locations[0]) / "data" / "sp500" / "sp500.csv.gz"
    if not path.is_file():
        raise DataError(f"{path}: not found in the installed arch package; allowed: arch >= 7 with its data sets")
    return path


def sp500_frame(yearly: bool = False) -> pl.DataFrame:
    """The S&P 500 daily series in seqdb's long format (see the module docstring)."""
    raw = pl.read_csv(gzip.decompress(sp500_source().read_bytes()))  # Date as M/D/YYYY
    raw = raw.with_columns(pl.col("Date").str.to_date("%m/%d/%Y")).sort("Date")
    close = raw["Adj Close"].to_numpy().astype(np.float64)
    high, low = raw["High"].to_numpy().astype(np.float64), raw["Low"].to_numpy().astype(np.float64)
    volume = raw["Volume"].to_numpy().astype(np.float64)
    log_return = 100.0 * np.diff(np.log(close))  # [N-1]
    frame = pl.DataFrame(
        {
            "date": raw["Date"][1:],
            "log_return": log_return,
            "log_range": 100.0 * np.log(high[1:] / low[1:]),
            "log_volume_change": np.diff(np.log(volume)),
            "move": np.asarray(MOVE_LABELS)[np.searchsorted(MOVE_EDGES, log_return, side="right")],
        }
    )
    weekday = pl.col("date").dt.weekday().replace_strict(list(range(1, 8)), list(WEEKDAYS), return_dtype=pl.Utf8)
    month = pl.col("date").dt.month().replace_strict(list(range(1, 13)), list(MONTHS), return_dtype=pl.Utf8)
    frame = frame.with_columns(
        weekday.alias("weekday"),
        month.alias("month"),
        (pl.col("date").dt.year() if yearly else pl.lit(0)).cast(pl.Int64).alias("sequenceId"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("itemPosition"),
    )
    order = ["sequenceId", "itemPosition", "date", "log_return", "log_range", "log_volume_change", "weekday", "month", "move"]
    return frame.select(order)


def write_sp500(out: Path | str, *, yearly: bool = False) -> pl.DataFrame:
    """Write the long-format CSV (or Parquet, by suffix) atomically; returns the frame."""
    out = Path(out)
    frame = sp500_frame(yearly=yearly)
    write_long(frame, out, csv=out.suffix.lower() not in (".parquet", ".pq"))
    return frame
