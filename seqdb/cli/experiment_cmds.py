"""`seqdb experiment add | validate | list | show`: experiment definitions in the database."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from seqdb.cli.common import console, open_db, state

experiment_app = typer.Typer(help="Experiment definitions (YAML): add, validate, list, show.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(experiment_app, name="experiment")


def _root(ctx: typer.Context) -> Path:
    """The project root for relative data paths (the current folder outside a project)."""
    from seqdb.project import find_project_root

    st = state(ctx)
    if st.project is not None:
        return find_project_root(st.project) or st.project
    return find_project_root() or Path.cwd()


def _data_note(config, root: Path) -> str:  # noqa: ANN001
    """Check the data file's header when it exists; a note when it does not (yet)."""
    from seqdb.data.read import LongSpec, check_columns, file_columns

    d = config.data
    spec = LongSpec(config.data_file(root), config.data_format(), d.sequence_column, d.position_column, dict(d.columns))
    if not spec.path.is_file():
        return f"note: data file {spec.path} does not exist yet (needed by `seqdb data prepare`)"
    check_columns(spec, file_columns(spec))
    return f"data file {spec.path}: all {len(d.columns) + 2} columns present"


@experiment_app.command("validate")
def validate_cmd(ctx: typer.Context, file: Path = typer.Argument(..., help="Experiment YAML file.")) -> None:
    """Check an experiment YAML (schema, and the data file's columns if it exists); writes nothing.

    Example: seqdb experiment validate configs/sp500.yaml
    """
    from seqdb.experiment.loader import load_experiment

    config = load_experiment(file)
    note = _data_note(config, _root(ctx))
    budgets = ", ".join(f"{label} ({n:,})" for label, n in config.budget_pairs)
    console.print(f"{file}: valid experiment {config.name!r}; horizons {list(config.horizons)}; budgets {budgets}", soft_wrap=True)
    console.print(note, soft_wrap=True)


@experiment_app.command("add")
def add_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Experiment YAML file."),
    replace: bool = typer.Option(False, "--replace", help="Replace a same-named experiment with other content (only while it has no study)."),
) -> None:
    """Register an experiment (re-adding the same content is a no-op).

    Example: seqdb experiment add configs/sp500.yaml
    """
    from seqdb.experiment.loader import load_experiment
    from seqdb.experiment.registry import register_experiment

    project, engine = open_db(ctx)
    note = _data_note(load_experiment(file), project.root)
    row, changed = register_experiment(engine, file, replace=replace)
    verb = "registered" if changed else "already registered (same content)"
    console.print(f"experiment {row.name!r} {verb}; id {row.experiment_id}, hash {row.content_hash[:12]}", soft_wrap=True)
    if note.startswith("note:"):
        console.print(note, soft_wrap=True)


@experiment_app.command("list")
def list_cmd(ctx: typer.Context) -> None:
    """All registered experiments.

    Example: seqdb experiment list
    """
    from seqdb.experiment.registry import list_experiments

    _, engine = open_db(ctx)
    rows = list_experiments(engine)
    table = Table(title="experiments")
    for col in ("id", "name", "target", "horizons", "budgets", "hash", "created"):
        table.add_column(col)
    for r in rows:
        c = r.config
        targets = ", ".join(f"{t['task']}({t['column']})" for t in c["target"])
        table.add_row(str(r.experiment_id), r.name, targets, str(c["horizons"]), ", ".join(c["budgets"]), r.content_hash[:12], f"{r.created_at:%Y-%m-%d %H:%M}")
    console.print(table)
    console.print(f"{len(rows)} experiment(s)", soft_wrap=True)


@experiment_app.command("show")
def show_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Experiment name."),
    as_json: bool = typer.Option(False, "--json", help="Print the validated config (defaults filled in) as JSON."),
) -> None:
    """An experiment's YAML as registered, its budgets and its prepared datasets.

    Example: seqdb experiment show sp500 --json
    """
    from sqlalchemy import select

    from seqdb.db.engine import session_scope
    from seqdb.db.models import Dataset
    from seqdb.experiment.registry import get_experiment

    _, engine = open_db(ctx)
    row, config = get_experiment(engine, name)
    if as_json:
        console.print_json(json.dumps(row.config))
        return
    with session_scope(engine, write=False) as session:
        datasets = session.scalars(select(Dataset).where(Dataset.experiment_id == row.experiment_id)).all()
    console.print(f"# experiment {row.name!r} (id {row.experiment_id}, hash {row.content_hash[:12]}, from {row.source_path})", soft_wrap=True)
    console.print(row.yaml_text, markup=False, highlight=False)
    console.print("budgets: " + ", ".join(f"{label} = {n:,} parameters" for label, n in config.budget_pairs) + f" (tolerance ±{config.tolerance:.0%})", soft_wrap=True)
    for d in datasets:
        console.print(f"dataset {d.dataset_id}: hash {d.content_hash[:12]}, {d.n_rows:,} rows, {d.n_sequences} sequences, {d.path}", soft_wrap=True)
