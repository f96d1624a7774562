"""Read and check long-format data (sequenceId, itemPosition, feature columns) with polars.

`read_long(path, spec)` returns a frame sorted by (sequence, position) with the columns
`__line` (where the row is in the file, for error messages), the sequence and position
columns, real columns as Float64 and categorical columns as Utf8. Every problem is a one-line
`DataError` naming the file, the column and the line/row: missing or misspelled columns,
wrong parquet types, unparsable numbers, non-UTF-8 bytes, a truncated file, nulls in the
sequence or position column, and duplicate positions within a sequence.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from seqdb.errors import DataError

LINE = "__line"  # 1-based line (CSV, header = line 1) or row (parquet) of each input row


@dataclass(frozen=True)
class LongSpec:
    """What to read: the file, its format and the columns with their kinds."""

    path: Path
    format: str  # csv | parquet
    sequence_column: str
    position_column: str
    columns: dict[str, str]  # name -> real | categorical (input order kept)

    @property
    def real_columns(self) -> list[str]:
        return [c for c, k in self.columns.items() if k == "real"]

    @property
    def cat_columns(self) -> list[str]:
        return [c for c, k in self.columns.items() if k == "categorical"]

    @property
    def where(self) -> str:
        return "line" if self.format == "csv" else "row"


def read_long(spec: LongSpec) -> pl.DataFrame:
    """The checked long-format frame, sorted by (sequence, position)."""
    if not spec.path.is_file():
        raise DataError(f"{spec.path}: data file not found; allowed: an existing csv or parquet file (data.path)")
    frame = _read_csv(spec) if spec.format == "csv" else _read_parquet(spec)
    _check_keys(frame, spec)
    if not _is_sorted(frame, spec.sequence_column, spec.position_column):
        frame = frame.sort([spec.sequence_column, spec.position_column], maintain_order=True)
        _check_duplicates(frame, spec)
    return frame


def _is_sorted(frame: pl.DataFrame, seq: str, pos: str) -> bool:
    """Rows already in (sequence, strictly increasing position) order (no sort needed, and
    no duplicate positions possible)."""
    s, p = pl.col(seq), pl.col(pos)
    ok = (s > s.shift(1)) | ((s == s.shift(1)) & (p > p.shift(1)))
    return bool(frame.select(ok.slice(1).all()).item())


def file_columns(spec: LongSpec) -> dict[str, pl.DataType]:
    """Column name -> dtype from the header/schema only (cheap)."""
    try:
        if spec.format == "csv":
            return dict(pl.scan_csv(spec.path, infer_schema_length=100).collect_schema())
        return dict(pl.scan_parquet(spec.path).collect_schema())
    except (pl.exceptions.PolarsError, OSError) as exc:
        allowed = "a CSV file with a header row" if spec.format == "csv" else "a complete parquet file"
        raise DataError(f"{spec.path}: cannot read the {spec.format} header: {_first_line(exc)} (truncated or corrupt?); allowed: {allowed}") from None


def check_columns(spec: LongSpec, present: dict[str, pl.DataType]) -> None:
    """Every configured column exists in the file (with a did-you-mean hint)."""
    wanted = {spec.sequence_column: "data.sequence_column", spec.position_column: "data.position_column"}
    wanted.update({c: f"data.columns.{c}" for c in spec.columns})
    for col, field in wanted.items():
        if col not in present:
            hint = difflib.get_close_matches(col, list(present), n=1)
            near = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise DataError(f"{spec.path}: column {col!r} ({field}) not in the file{near}; allowed: {', '.join(present)}")


# ---- CSV ---------------------------------------------------------------------------------
def _read_csv(spec: LongSpec) -> pl.DataFrame:
    present = file_columns(spec)
    check_columns(spec, present)
    _check_not_truncated(spec, list(present))
    overrides = {c: pl.Float64 for c in spec.real_columns} | {c: pl.Utf8 for c in spec.cat_columns}
    overrides[spec.position_column] = pl.Int64
    needed = [spec.sequence_column, spec.position_column, *spec.columns]
    try:
        lazy = pl.scan_csv(spec.path, schema_overrides=overrides, infer_schema_length=10_000)
        return lazy.select(needed).with_row_index(LINE, offset=2).collect()
    except pl.exceptions.PolarsError as exc:
        raise _diagnose_csv(spec, exc) from None


def _check_not_truncated(spec: LongSpec, header: list[str]) -> None:
    """A last line with fewer fields than the header (and no final newline) means a cut file."""
    with open(spec.path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    if not tail or tail.endswith(b"\n"):
        return
    last = tail.rsplit(b"\n", 1)[-1]
    if last.count(b",") + 1 < len(header):
        raise DataError(f"{spec.path}: the last line has {last.count(b',') + 1} of {len(header)} fields and no newline (truncated file?); allowed: a complete CSV file")


def _diagnose_csv(spec: LongSpec, exc: Exception) -> DataError:
    """Turn a polars parse error into a line-precise message (slow path, errors only)."""
    raw = spec.path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = raw.count(b"\n", 0, bad.start) + 1
        return DataError(f"{spec.path}: line {line}: byte 0x{raw[bad.start]:02x} is not UTF-8; allowed: a UTF-8 encoded CSV file")
    text = pl.scan_csv(spec.path, infer_schema=False).select([spec.position_column, *spec.real_columns])
    frame = text.with_row_index(LINE, offset=2).collect()
    for col, dtype in [(spec.position_column, pl.Int64)] + [(c, pl.Float64) for c in spec.real_columns]:
        cast = frame[col].cast(dtype, strict=False)
        bad_rows = frame.filter(cast.is_null() & frame[col].is_not_null())
        if bad_rows.height:
            row = bad_rows.row(0, named=True)
            kind = "an integer position" if col == spec.position_column else "a number (real column)"
            return DataError(f"{spec.path}: line {row[LINE]}: column {col!r} holds {row[col]!r}; allowed: {kind}")
    return DataError(f"{spec.path}: cannot parse the CSV: {_first_line(exc)}; allowed: a comma-separated UTF-8 file with a header")


# ---- Parquet -----------------------------------------------------------------------------
def _read_parquet(spec: LongSpec) -> pl.DataFrame:
    present = file_columns(spec)
    check_columns(spec, present)
    for col in spec.real_columns:
        if not present[col].is_numeric():
            raise DataError(f"{spec.path}: column {col!r} has parquet type {present[col]}; allowed: a numeric type (real column)")
    if not present[spec.position_column].is_integer():
        raise DataError(f"{spec.path}: column {spec.position_column!r} (data.position_column) has parquet type {present[spec.position_column]}; allowed: an integer type")
    casts = [pl.col(c).cast(pl.Float64) for c in spec.real_columns] + [pl.col(c).cast(pl.Utf8) for c in spec.cat_columns]
    needed = [spec.sequence_column, spec.position_column, *spec.columns]
    try:
        lazy = pl.scan_parquet(spec.path).select(needed).with_columns(casts)
        return lazy.with_row_index(LINE, offset=1).with_columns(pl.col(spec.position_column).cast(pl.Int64)).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{spec.path}: cannot read the parquet file: {_first_line(exc)} (truncated or corrupt?); allowed: a complete parquet file") from None


# ---- keys --------------------------------------------------------------------------------
def _check_keys(frame: pl.DataFrame, spec: LongSpec) -> None:
    if frame.height == 0:
        raise DataError(f"{spec.path}: no data rows; allowed: a file with at least one row per sequence")
    for col, field in ((spec.sequence_column, "data.sequence_column"), (spec.position_column, "data.position_column")):
        nulls = frame.filter(pl.col(col).is_null())
        if nulls.height:
            raise DataError(f"{spec.path}: {spec.where} {nulls[LINE][0]}: column {col!r} ({field}) is empty; allowed: a value on every row")


def _check_duplicates(frame: pl.DataFrame, spec: LongSpec) -> None:
    seq, pos = spec.sequence_column, spec.position_column
    dup = (pl.col(seq) == pl.col(seq).shift(1)) & (pl.col(pos) == pl.col(pos).shift(1))
    rows = frame.select(pl.col(seq), pl.col(pos), pl.col(LINE), pl.col(LINE).shift(1).alias("prev"), dup.alias("dup")).filter(pl.col("dup"))
    if rows.height:
        r = rows.row(0, named=True)
        raise DataError(
            f"{spec.path}: sequence {r[seq]!r} has position {r[pos]} twice ({spec.where}s {min(r['prev'], r[LINE])} and {max(r['prev'], r[LINE])}); allowed: unique positions within a sequence"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def write_long(frame, out: Path, *, csv: bool) -> None:  # noqa: ANN001 - a polars DataFrame
    """Write a long-format frame atomically (CSV or Parquet): a temporary name, then a rename;
    a failure leaves nothing behind and is one line naming the file."""
    import os

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        frame.write_csv(tmp) if csv else frame.write_parquet(tmp)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{out}: cannot write ({exc.strerror or exc}); allowed: a writable path") from None
