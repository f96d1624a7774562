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

import os
from pathlib import Path

import numpy as np
import polars as pl

from seqdb.errors import DataError

MOVE_EDGES = (-1.0, -0.25, 0.25, 1.0)  # percent log-return bucket edges
MOVE_LABELS = ("down_big", "down", "flat", "up", "up_big")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def sp500_frame(yearly: bool = False) -> pl.DataFrame:
    """The S&P 500 daily series in seqdb's long format (see the module docstring)."""
    import arch.data.sp500

    raw = arch.data.sp500.load()
    dates = raw.index.to_numpy().astype("datetime64[D]")
    close = raw["Adj Close"].to_numpy(dtype=np.float64)
    high, low = raw["High"].to_numpy(dtype=np.float64), raw["Low"].to_numpy(dtype=np.float64)
    volume = raw["Volume"].to_numpy(dtype=np.float64)
    log_return = 100.0 * np.diff(np.log(close))  # [N-1]
    frame = pl.DataFrame(
        {
            "date": dates[1:],
            "log_return": log_return,
            "log_range": 100.0 * np.log(high[1:] / low[1:]),
            "log_volume_change": np.diff(np.log(volume)),
            "move": np.asarray(MOVE_LABELS)[np.searchsorted(MOVE_EDGES, log_return, side="right")],
        }
    )
    frame = frame.with_columns(
        pl.col("date").dt.weekday().map_elements(lambda d: WEEKDAYS[d - 1], return_dtype=pl.Utf8).alias("weekday"),
        pl.col("date").dt.month().map_elements(lambda m: MONTHS[m - 1], return_dtype=pl.Utf8).alias("month"),
        (pl.col("date").dt.year() if yearly else pl.lit(0)).cast(pl.Int64).alias("sequenceId"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("itemPosition"),
    )
    order = ["sequenceId", "itemPosition", "date", "log_return", "log_range", "log_volume_change", "weekday", "month", "move"]
    return frame.select(order)


def write_sp500(out: Path | str, *, yearly: bool = False) -> pl.DataFrame:
    """Write the long-format CSV (or Parquet, by suffix) atomically; returns the frame."""
    out = Path(out)
    frame = sp500_frame(yearly=yearly)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        if out.suffix.lower() in (".parquet", ".pq"):
            frame.write_parquet(tmp)
        else:
            frame.write_csv(tmp)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{out}: cannot write ({exc.strerror or exc}); allowed: a writable path") from None
    return frame
