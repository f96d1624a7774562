"""`seqdb sql`, `seqdb export`, `seqdb scaling`, `seqdb dashboard`: read-only access through the DuckDB views."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from seqdb.cli.common import console, open_db

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
) -> None:
    """Run a read-only SELECT over the DuckDB views of the live database."""
    from seqdb.views.query import format_for, sql, sql_rows, write_table

    kind = format_for(output, fmt)
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
    """Export views to Parquet/CSV/JSON files (one file per view)."""
    from seqdb.views.query import export

    with _views(ctx) as vc:
        paths = export(vc, output, views or (), fmt)
    for p in paths:
        console.print(f"wrote {p}")


def _fmt_iv(iv) -> str:  # noqa: ANN001
    return f"[{iv.low:.4g}, {iv.high:.4g}]" if iv is not None else "-"


def _print_scaling(hs) -> None:  # noqa: ANN001
    table = Table(title=f"{hs.experiment} - horizon {hs.horizon}")
    for col in ("budget", "N", "best loss", "trial", "finished", "completed", "epochs", "epochs/trial"):
        table.add_column(col, justify="right")
    for p in hs.points:
        table.add_row(p.budget, f"{p.param_count:,}", f"{p.best_val_loss:.5g}", str(p.trial_id), str(p.n_finished),
                      str(p.n_completed), str(p.epochs_total), f"{p.epochs_mean:.3g}")
    console.print(table)
    if hs.fit is None:
        console.print(f"no fit: {hs.message}")
        return
    b = hs.bootstrap
    console.print(f"fit L(N) = E + A*N^-alpha  (Huber in log space; 95% bootstrap intervals, {b.replicates if b else 0} replicates)")
    console.print(f"  E     = {hs.fit.E:.5g}  {_fmt_iv(b.E if b else None)}")
    console.print(f"  A     = {hs.fit.A:.5g}  {_fmt_iv(b.A if b else None)}")
    console.print(f"  alpha = {hs.fit.alpha:.5g}  {_fmt_iv(b.alpha if b else None)}")
    if hs.at is not None:
        console.print(f"  L({hs.at.n:,}) = {hs.at.loss:.5g}  {_fmt_iv(hs.at.interval)}  (extrapolated)")


def _scaling_json(hs) -> dict:  # noqa: ANN001
    from dataclasses import asdict

    b = hs.bootstrap
    return {
        "experiment": hs.experiment, "horizon": hs.horizon, "points": [asdict(p) for p in hs.points],
        "fit": None if hs.fit is None else {"E": hs.fit.E, "A": hs.fit.A, "alpha": hs.fit.alpha},
        "intervals": None if b is None else {k: [getattr(b, k).low, getattr(b, k).high] for k in ("E", "A", "alpha")},
        "at": None if hs.at is None else {"n": hs.at.n, "loss": hs.at.loss,
                                           "interval": None if hs.at.interval is None else [hs.at.interval.low, hs.at.interval.high]},
        "message": hs.message,
    }


def scaling_cmd(
    ctx: typer.Context,
    experiment: Optional[str] = typer.Option(None, "--experiment", help="Only this experiment."),
    horizon: Optional[int] = typer.Option(None, "--horizon", help="Only this horizon."),
    at: Optional[str] = typer.Option(None, "--at", help="Extrapolate the fit to this parameter count (e.g. 2B)."),
    bootstrap: int = typer.Option(200, "--bootstrap", min=0, help="Bootstrap replicates for the intervals (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Scaling points per horizon, the fitted power law with intervals, and the effort per budget."""
    from seqdb.errors import NotFoundError
    from seqdb.experiment.budgets import parse_budget
    from seqdb.views.scaling import scaling_report

    n_at = parse_budget(at) if at is not None else None
    with _views(ctx) as vc:
        report = scaling_report(vc, experiment=experiment, horizon=horizon, at=n_at, replicates=bootstrap, seed=seed)
    if not report:
        what = " ".join(x for x in (f"experiment {experiment!r}" if experiment else "", f"horizon {horizon}" if horizon else "") if x)
        raise NotFoundError(f"no completed search trials{' for ' + what if what else ''}; nothing to scale")
    if as_json:
        sys.stdout.write(json.dumps([_scaling_json(hs) for hs in report], default=float) + "\n")
        return
    for hs in report:
        _print_scaling(hs)


def dashboard_cmd(
    ctx: typer.Context,
    port: int = typer.Option(8501, "--port", help="HTTP port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
) -> None:
    """Start the Streamlit dashboard over the live database (read-only)."""
    project, _ = open_db(ctx)
    env = {**os.environ, ENV_DASHBOARD_DB: project.database_url}
    cmd = [sys.executable, "-m", "streamlit", "run", str(DASHBOARD_APP), "--server.port", str(port),
           "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    console.print(f"dashboard on http://{host}:{port} (Ctrl+C stops it)")
    raise typer.Exit(subprocess.call(cmd, env=env))


def register(app: typer.Typer) -> None:
    app.command("sql")(sql_cmd)
    app.command("export")(export_cmd)
    app.command("scaling")(scaling_cmd)
    app.command("dashboard")(dashboard_cmd)
