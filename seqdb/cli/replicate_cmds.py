"""`seqdb replicate`: rerun each budget's best search trial with new seeds (seqdb/search/replicate.py)."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from seqdb.cli.common import console, open_db


def replicate_cmd(
    ctx: typer.Context,
    experiment: str = typer.Option(..., "--experiment", help="Experiment name."),
    horizon: int = typer.Option(..., "--horizon", help="Prediction horizon."),
    budget: Optional[str] = typer.Option(None, "--budget", help="Only this budget (e.g. 20M; default: every budget)."),
    seeds: int = typer.Option(3, "--seeds", help="Seeds per budget (the best trial's seed + 1 .. + SEEDS)."),
) -> None:
    """Add pending trials that rerun each budget's best configuration with new seeds.

    Example: seqdb replicate --experiment sp500 --horizon 3 --seeds 3
    """
    from seqdb.experiment.budgets import parse_budget
    from seqdb.search.replicate import add_replicates

    n_params = parse_budget(budget) if budget is not None else None
    _, engine = open_db(ctx)
    reps = add_replicates(engine, experiment, horizon, n_params=n_params, seeds=seeds)
    table = Table(title=f"seed replicates: {experiment} horizon {horizon}")
    for col in ("budget", "replicates trial", "seed", "trial", "status"):
        table.add_column(col, justify="right")
    for r in reps:
        table.add_row(r.budget, str(r.replicate_of), str(r.seed), str(r.trial_id), "added" if r.created else "already there")
    console.print(table)
    added = sum(r.created for r in reps)
    console.print(f"{added} trial(s) added; `seqdb run --experiment {experiment}` runs them, `seqdb scaling` uses them")


def register(app: typer.Typer) -> None:
    app.command("replicate")(replicate_cmd)
