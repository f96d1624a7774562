"""What every CLI command shares: the resolved project, the engine, and output helpers.

Commands stay short: validate input, call a plain importable function, print the result.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
import sys
from typing import TYPE_CHECKING, Annotated, Callable, Iterator, Optional

import typer
from rich.console import Console

if TYPE_CHECKING:  # sqlalchemy, alembic and the project loader are imported when a command needs them
    from sqlalchemy.engine import Engine

    from seqdb.project import Project

# In a pipe or a log file rich would wrap tables at 80 columns; use a wider page there.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(width=_WIDTH)
err_console = Console(stderr=True)


# The options that name one study, declared once: `budget: BudgetOption, horizon:
# HorizonOption, experiment: ExperimentOption = None`.
BudgetOption = Annotated[str, typer.Option("--budget", help="Parameter budget of the study, e.g. 20M, 500k.")]
HorizonOption = Annotated[int, typer.Option("--horizon", help="Prediction horizon of the study.")]
ExperimentOption = Annotated[Optional[str], typer.Option("--experiment", help="Experiment name (default: the only one that fits).")]


@dataclass
class CliState:
    db: Optional[str] = None
    project: Optional[Path] = None


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = CliState()
    return root.obj


def resolve_project(ctx: typer.Context) -> "Project":
    from seqdb.project import load_project

    st = state(ctx)
    return load_project(db=st.db, project=st.project)


@contextmanager
def step_bar(title: str, total: int, enabled: bool = True) -> Iterator[Optional[Callable[[str], None]]]:
    """A rich progress bar over named steps on stderr; yields the `on_step(name)` callback
    (None when disabled) that long-running library functions accept."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(f"{title}: {{task.description}}"), BarColumn(), TimeElapsedColumn(), console=err_console, transient=True)
    task = bar.add_task("starting", total=total)
    seen = {"n": 0}

    def on_step(name: str) -> None:
        bar.update(task, completed=seen["n"], description=name)
        seen["n"] += 1

    with bar:
        yield on_step
        bar.update(task, completed=total, description="done")


def open_db(ctx: typer.Context, *, check_revision: bool = True) -> tuple["Project", "Engine"]:
    """The project and its engine; refuses a database not at the newest revision."""
    from seqdb.db.engine import get_engine
    from seqdb.db.migrate import require_head

    project = resolve_project(ctx)
    engine = get_engine(project.database_url)
    if check_revision:
        require_head(engine)
    return project, engine
