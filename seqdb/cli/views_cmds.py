"""`seqdb sql`, `seqdb export`, `seqdb scaling` (seqdb/cli/scaling_cmds.py), `seqdb dashboard`: read-only access through the DuckDB views."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from seqdb.cli import scaling_cmds
from seqdb.cli.common import console, open_db, resolve_project

DASHBOARD_APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"  # shipped inside the package
ENV_DASHBOARD_DB = "SEQDB_DASHBOARD_DB"


def _views(ctx: typer.Context):  # noqa: ANN202
    from seqdb.views import connect

    project, _ = open_db(ctx)  # checks the schema revision
    return connect(project.database_url)


def _print_rows(columns: list[str], rows: list[tuple]) -> None:
    out = Table(show_lines=False)
    for name in columns:
        out.add_column(name, overflow="fold")
    for row in rows:
        out.add_row(*("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in row))
    console.print(out)
    console.print(f"{len(rows)} row(s)")


def sql_cmd(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="One SELECT over the views (docs/views.md)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="table | csv | json | parquet (default: table, or the --output suffix)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the result to FILE instead of the terminal."),
    force: bool = typer.Option(False, "--force", help="Replace --output FILE if it exists."),
) -> None:
    """Run a read-only SELECT over the DuckDB views of the live database.

    Example: seqdb sql "SELECT horizon, budget, best_val_loss FROM scaling_points" --format csv
    """
    from seqdb.project import protected_paths
    from seqdb.views.query import check_output, format_for, sql, sql_rows, write_table

    kind = format_for(output, fmt)
    if output is not None:  # never the database, seqdb.yaml or the artifacts; never a silent overwrite
        files, folders = protected_paths(resolve_project(ctx))
        check_output(output, files=files, folders=folders, force=force)
    with _views(ctx) as vc:
        if kind == "table":  # the terminal table needs no Arrow (~0.2 s of import)
            _print_rows(*sql_rows(vc, query))
            return
        table = sql(vc, query)
    if output is not None:
        write_table(table, kind, output)
        console.print(f"wrote {table.num_rows} row(s) to {output}")
    elif kind == "csv":
        import io

        import pyarrow.csv as pacsv

        from seqdb.views.query import _csv_ready

        buf = io.BytesIO()
        pacsv.write_csv(_csv_ready(table), buf)
        sys.stdout.write(buf.getvalue().decode("utf-8"))
    else:
        sys.stdout.write(json.dumps(table.to_pylist(), default=str) + "\n")


def export_cmd(
    ctx: typer.Context,
    views: Optional[List[str]] = typer.Argument(None, help="Views to export (default: all)."),
    output: Path = typer.Option(Path("export"), "--output", help="Folder for <view>.<format> files."),
    fmt: str = typer.Option("parquet", "--format", help="parquet | csv | json."),
) -> None:
    """Export views to Parquet/CSV/JSON files (one file per view).

    Example: seqdb export trials scaling_points --format parquet --output exports
    """
    from seqdb.project import protected_paths
    from seqdb.views.query import check_output, export

    files, folders = protected_paths(resolve_project(ctx))
    check_output(output, files=files, folders=folders, folder=True)  # never into the artifacts folder
    with _views(ctx) as vc:
        paths = export(vc, output, views or (), fmt)
    for p in paths:
        console.print(f"wrote {p}")


def dashboard_cmd(
    ctx: typer.Context,
    port: int = typer.Option(8501, "--port", help="HTTP port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
) -> None:
    """Start the Streamlit dashboard over the live database (read-only).

    Example: seqdb dashboard --port 8501
    """
    project, _ = open_db(ctx)
    env = {**os.environ, ENV_DASHBOARD_DB: project.database_url}
    cmd = [sys.executable, "-m", "streamlit", "run", str(DASHBOARD_APP), "--server.port", str(port),
           "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    console.print(f"dashboard on http://{host}:{port} (Ctrl+C stops it)")
    raise typer.Exit(subprocess.call(cmd, env=env))


def register(app: typer.Typer) -> None:
    app.command("sql")(sql_cmd)
    app.command("export")(export_cmd)
    scaling_cmds.register(app)  # `seqdb scaling` and `seqdb scaling fit`
    app.command("dashboard")(dashboard_cmd)
