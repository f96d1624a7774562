"""The `seqdb` command line.

Each command is a short wrapper that validates its input and calls a plain importable
function; `main()` is the one handler that turns domain errors into a one-line message on
stderr and a non-zero exit (SEQDB_DEBUG=1 shows the traceback instead).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from seqdb import __version__
from seqdb.cli import data_cmds, experiment_cmds, launch_cmds, replicate_cmds, results_cmds, run_cmds, study_cmds, views_cmds
from seqdb.cli.common import console, open_db, resolve_project, state
from seqdb.errors import DatabaseError, SeqdbError, redact

app = typer.Typer(
    name="seqdb",
    help="Experiment tracker and trial runner for scaling studies of causal sequence transformers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema: upgrade, current revision.", no_args_is_help=True)
app.add_typer(db_app, name="db")

def _version(value: bool) -> None:
    if value:
        console.print(f"seqdb {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    db: Optional[str] = typer.Option(None, "--db", help="Database URL (overrides SEQDB_DATABASE_URL and seqdb.yaml)."),
    project: Optional[Path] = typer.Option(None, "--project", help="Project folder (default: the nearest with seqdb.yaml)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    st = state(ctx)
    st.db, st.project = db, project


@app.command()
def init(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Folder to create (or an existing seqdb project)."),
) -> None:
    """Make a project: configs/, data/, artifacts/, seqdb.yaml and a migrated database.

    Example: seqdb init myproj
    """
    from seqdb.project import init_project

    project = init_project(path, database=state(ctx).db)
    console.print(f"project {project.root} ready; database {_safe(project.database_url)} at the newest revision")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: str = typer.Option("head", help="Target revision.")) -> None:
    """Migrate the database to the newest schema revision.

    Example: seqdb db upgrade --revision head
    """
    from seqdb.db.engine import create_engine_for
    from seqdb.db.migrate import upgrade

    project = resolve_project(ctx)
    engine = create_engine_for(project.database_url)  # the one command besides init that may create a file
    try:
        console.print(f"database {_safe(project.database_url)} at revision {upgrade(engine, revision)}")
    finally:
        engine.dispose()


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's schema revision and the newest one this seqdb knows.

    Example: seqdb db current
    """
    from seqdb.db.migrate import current_revision, head_revision

    _, engine = open_db(ctx, check_revision=False)
    current, head = current_revision(engine), head_revision()
    note = "up to date" if current == head else "run `seqdb db upgrade`"
    console.print(f"current: {current or 'none'}  head: {head}  ({note})")


@app.command()
def status(ctx: typer.Context) -> None:
    """Counts of studies and trials by state, and live workers.

    Example: seqdb status
    """
    from seqdb.status import collect_status

    _, engine = open_db(ctx)
    report = collect_status(engine)
    table = Table(title="studies")
    for col in ("study", "budget", "horizon", "strategy", *report.states, "total"):
        table.add_column(col, justify="right" if col not in ("study", "strategy") else "left")
    for row in report.studies:
        table.add_row(row.name, row.budget, str(row.horizon), row.strategy, *(str(row.counts.get(s, 0)) for s in report.states), str(row.total))
    console.print(table)
    totals = ", ".join(f"{s} {report.totals.get(s, 0)}" for s in report.states)
    console.print(f"{len(report.studies)} studies; trials: {totals}; live workers: {report.live_workers}")


def _safe(url: str) -> str:
    from seqdb.db.engine import safe_url

    return safe_url(url)


# Each command module owns its commands and adds them with `register(app)`.
for _commands in (experiment_cmds, data_cmds, study_cmds, run_cmds, views_cmds, results_cmds, launch_cmds, replicate_cmds):
    _commands.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every failure into one line and an exit code."""
    from typer._click import exceptions as click  # typer vendors click: its errors are these classes

    debug = os.environ.get("SEQDB_DEBUG") == "1"
    try:
        result = app(args=argv, standalone_mode=False)  # click's errors come here, not as a box
        return result if isinstance(result, int) and not isinstance(result, bool) else 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except click.NoArgsIsHelpError as exc:
        exc.show()  # `seqdb` / `seqdb GROUP` alone: the help page, as before
        return exc.exit_code
    except click.UsageError as exc:
        print(f"error: {_usage_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except click.ClickException as exc:
        print(f"error: {' '.join(redact(exc.format_message()).split())}", file=sys.stderr)
        return exc.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 1
    except SeqdbError as exc:
        if debug:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if debug:
            raise
        print(f"error: {_describe(exc)} (set SEQDB_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return 0


def _describe(exc: Exception) -> str:
    from sqlalchemy.exc import OperationalError

    if isinstance(exc, OperationalError):
        from seqdb.db.engine import first_line

        return DatabaseError(f"database error: {first_line(exc)}").message
    text = " ".join(redact(str(exc)).split())[:500]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _usage_line(exc) -> str:  # noqa: ANN001 - click.UsageError
    """Typer's usage box as one line: `seqdb run: Option '--budget' requires an argument; see ...`."""
    names, ctx = [], exc.ctx
    while ctx is not None and ctx.parent is not None:  # the root's name is how python was called
        names.insert(0, ctx.info_name)
        ctx = ctx.parent
    path = " ".join(["seqdb", *names])
    text = " ".join(redact(exc.format_message()).split()).rstrip(".")
    return f"{path}: {text}; see `{path} --help`"


def entrypoint() -> None:
    code = main()
    import signal  # the command is done: a stop signal during interpreter teardown must not make it "killed"

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, signal.SIG_IGN)
    sys.exit(code)
