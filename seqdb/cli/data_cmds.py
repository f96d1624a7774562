"""`seqdb data prepare` and `seqdb data sp500`: prepared datasets and the real example data."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from seqdb.cli.common import console, open_db, step_bar

data_app = typer.Typer(help="Data: prepare an experiment's dataset, write the S&P 500 example data.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("prepare")
def prepare_cmd(
    ctx: typer.Context,
    experiment: str = typer.Option(..., "--experiment", "-e", help="Name of a registered experiment."),
    progress: bool = typer.Option(None, "--progress/--no-progress", help="Show a progress bar (default: on a terminal)."),
) -> None:
    """Prepare (or find cached) the experiment's dataset: windows, split, maps, statistics.

    Example: seqdb data prepare --experiment sp500
    """
    import time

    from seqdb.data.prepare import STEPS, prepare_dataset

    project, engine = open_db(ctx)
    started = time.perf_counter()
    with step_bar("prepare", STEPS, enabled=sys.stderr.isatty() if progress is None else progress) as on_step:
        row = prepare_dataset(engine, project, experiment, on_step=on_step)
    took = time.perf_counter() - started
    s = row.splits
    parts = ", ".join(f"{p} {s[p]['rows']:,} rows / {s[p]['windows']:,} windows" for p in ("train", "validation", "test"))
    skipped = s.get("skipped_sequences", 0)
    console.print(f"dataset {row.dataset_id} ({row.content_hash[:12]}) for {experiment!r}: {row.n_rows:,} rows, {row.n_sequences} sequences; {parts}", soft_wrap=True)
    if skipped:
        console.print(f"skipped {skipped} sequence(s) shorter than context_length + max horizon", soft_wrap=True)
    from seqdb.data.transform import describe_missing

    for line in describe_missing((row.statistics or {}).get("missing") or {}, (row.settings or {}).get("nan_policy", "error")):
        console.print(f"missing values: {line}", soft_wrap=True, markup=False, highlight=False)
    console.print(f"at {row.path} ({took:.2f} s)", soft_wrap=True)


@data_app.command("sp500")
def sp500_cmd(
    out: Path = typer.Argument(..., help="Output file (.csv, or .parquet by suffix)."),
    yearly: bool = typer.Option(False, "--yearly", help="One sequence per calendar year instead of one long sequence."),
) -> None:
    """Write the S&P 500 daily data shipped with `arch` in seqdb's long format.

    Example: seqdb data sp500 data/sp500.csv --yearly
    """
    from seqdb.data.sp500 import write_sp500

    frame = write_sp500(out, yearly=yearly)
    n_seq = frame["sequenceId"].n_unique()
    console.print(f"wrote {frame.height:,} rows, {n_seq} sequence(s), columns {', '.join(frame.columns)} to {out}", soft_wrap=True)
