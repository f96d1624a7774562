"""`seqdb sql` and `seqdb export`: run a guarded SELECT, write the result as a table/CSV/JSON/Parquet."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import duckdb

from seqdb.errors import ConfigError
from seqdb.views.connection import ViewConnection
from seqdb.views.guard import QueryFailed, check_select

if TYPE_CHECKING:  # pyarrow (~0.2 s) is imported by the functions that build Arrow tables
    import pyarrow as pa

FORMATS = ("table", "csv", "json", "parquet")
EXPORT_FORMATS = ("parquet", "csv", "json")


def _run(vc: ViewConnection, query: str, params: Sequence[Any] | None, fetch):  # noqa: ANN001, ANN202
    """Check and run one SELECT on a fresh cursor; `fetch(result)` reads it."""
    cur = vc.cursor()
    try:
        check_select(cur, query)
        try:
            return fetch(cur.execute(query, list(params) if params else None))
        except duckdb.Error as exc:
            text = str(exc).strip()
            raise QueryFailed(f"query failed: {text.splitlines()[0] if text else type(exc).__name__}") from None
    finally:
        cur.close()


def sql(vc: ViewConnection, query: str, params: Sequence[Any] | None = None) -> "pa.Table":
    """Run one read-only SELECT over the views; the result as an Arrow table."""
    return _run(vc, query, params, lambda res: res.fetch_arrow_table())


def sql_rows(vc: ViewConnection, query: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple]]:
    """Like `sql`, as (column names, row tuples) without Arrow (the terminal table's form)."""
    return _run(vc, query, params, lambda res: ([d[0] for d in res.description], res.fetchall()))


def sql_df(vc: ViewConnection, query: str, params: Sequence[Any] | None = None):  # noqa: ANN201
    """Like `sql`, as a pandas DataFrame (the dashboard's form)."""
    return sql(vc, query, params).to_pandas()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _write_json(table: "pa.Table", path: Path) -> None:
    rows = [{k: _jsonable(v) for k, v in row.items()} for row in table.to_pylist()]
    path.write_text(json.dumps(rows, default=str, indent=None) + "\n", encoding="utf-8")


def _csv_ready(table: "pa.Table") -> "pa.Table":
    """CSV cannot hold lists/structs: write those columns as JSON text."""
    import pyarrow as pa

    cols = []
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_nested(col.type):
            col = pa.array([None if v is None else json.dumps(v, default=str) for v in col.to_pylist()], pa.string())
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def write_table(table: "pa.Table", fmt: str, path: Path) -> Path:
    """Write `table` to `path` atomically (temp file in the same folder, then rename)."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; allowed: {', '.join(EXPORT_FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        elif fmt == "csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(_csv_ready(table), tmp)
        else:
            _write_json(table, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; an export is for others to read too
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def check_output(path: Path, *, files: Sequence[Path] = (), folders: Sequence[Path] = (), force: bool = False,
                 folder: bool = False) -> Path:
    """Refuse an output path that is one of `files` (the database, seqdb.yaml ...) or inside
    one of `folders` (the artifacts root), and an existing file unless `force`. `folder`:
    the path is an output folder (`seqdb export`), only its place is checked."""
    target = Path(path).expanduser().resolve()
    for f in files:
        if target == Path(f).resolve():
            raise ConfigError(f"--output {path}: is the project's {Path(f).name}; allowed: a path outside the database files, seqdb.yaml and the artifacts folder")
    for d in folders:
        if target == Path(d).resolve() or Path(d).resolve() in target.parents:
            raise ConfigError(f"--output {path}: is inside the artifacts folder {d}; allowed: a path outside the database files, seqdb.yaml and the artifacts folder")
    if folder:
        return target
    if target.is_dir():
        raise ConfigError(f"--output {path}: is a folder; allowed: a file path")
    if target.exists() and not force:
        raise ConfigError(f"--output {path}: exists; allowed: a new file, or --force to replace it")
    return target


def format_for(output: Path | None, fmt: str | None) -> str:
    """The output format: explicit, else from the file suffix, else a table on the terminal."""
    if fmt:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown --format {fmt!r}; allowed: {', '.join(FORMATS)}")
        if fmt == "parquet" and output is None:
            raise ConfigError("--format parquet needs --output FILE")
        return fmt
    if output is not None:
        suffix = output.suffix.lstrip(".").lower()
        if suffix in EXPORT_FORMATS:
            return suffix
        raise ConfigError(f"cannot tell the format of {output}: use --format ({', '.join(EXPORT_FORMATS)})")
    return "table"


def export(vc: ViewConnection, out_dir: Path, views: Sequence[str] = (), fmt: str = "parquet") -> list[Path]:
    """Write each view (default: all) to OUT_DIR/<view>.<fmt>; returns the files written."""
    from seqdb.views.definitions import VIEW_NAMES

    names = list(views) or list(VIEW_NAMES)
    unknown = [v for v in names if v not in VIEW_NAMES]
    if unknown:
        raise ConfigError(f"unknown view {unknown[0]!r}; allowed: {', '.join(VIEW_NAMES)}")
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown --format {fmt!r}; allowed: {', '.join(EXPORT_FORMATS)}")
    tables = {name: sql(vc, f"SELECT * FROM {name}") for name in names}  # read all before writing
    return [write_table(t, fmt, Path(out_dir) / f"{name}.{fmt}") for name, t in tables.items()]
