"""`seqdb study create|list|show` and `seqdb trial list|export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from seqdb.cli.common import BudgetOption, ExperimentOption, HorizonOption, console, open_db
from seqdb.errors import ConfigError

study_app = typer.Typer(help="Studies: one search per (experiment, budget, horizon).", no_args_is_help=True)
trial_app = typer.Typer(help="Trials: list them, export one as a standalone training config.", no_args_is_help=True)


def _pick_experiment(engine, name: Optional[str]) -> str:  # noqa: ANN001
    from seqdb.search.plan import pick_experiment

    return pick_experiment(engine, name)


@study_app.command("create")
def create(
    ctx: typer.Context,
    budget: BudgetOption,
    horizon: HorizonOption,
    experiment: ExperimentOption = None,
) -> None:
    """Create the study (budget, architectures, pending trials); a no-op when it exists.

    Example: seqdb study create --experiment sp500 --budget 20M --horizon 3
    """
    from seqdb.search.report import effort_line, summarize
    from seqdb.search.study import ensure_study

    project, engine = open_db(ctx)
    study = ensure_study(engine, project, _pick_experiment(engine, experiment), budget, horizon)
    summary = summarize(engine, study.study_id)
    pending = summary.counts.get("pending", 0)
    console.print(f"study {study.study_id} {study.name}: {study.strategy}, {study.n_trials} trials ({pending} pending)")
    console.print(effort_line(summary))


@study_app.command("list")
def list_cmd(
    ctx: typer.Context,
    experiment: Optional[str] = typer.Option(None, "--experiment", help="Only this experiment's studies."),
) -> None:
    """Every study with its trial counts by state and best value so far.

    Example: seqdb study list --experiment sp500
    """
    from seqdb.search.report import list_studies

    _, engine = open_db(ctx)
    table = Table(title="studies")
    for col in ("id", "study", "strategy", "done/trials", "running", "pending", "pruned", "failed", "best"):
        table.add_column(col, justify="left" if col in ("study", "strategy") else "right", no_wrap=col == "study")
    for st in list_studies(engine, experiment):
        best = f"{st.best['value']:.4g} (#{st.best['trial_id']})" if st.best else "-"
        c = st.counts
        table.add_row(str(st.study_id), st.name, st.strategy, f"{c.get('completed', 0)}/{st.n_trials}",
                      *(str(c.get(x, 0)) for x in ("running", "pending", "pruned", "failed")), best)  # fmt: skip
    console.print(table)


@study_app.command("show")
def show(ctx: typer.Context, study: str = typer.Argument(..., help="Study id or name (experiment/budget/hH).")) -> None:
    """Progress by state, best so far, effort spent, and whether effort is equal across budgets.

    Example: seqdb study show sp500/20M/h3
    """
    from seqdb.search.report import STATES, effort_line, summarize

    _, engine = open_db(ctx)
    st = summarize(engine, study)
    objectives = ", ".join(f"{o['name']} ({o['direction']})" for o in st.objectives)
    console.print(f"study {st.study_id} {st.name} [{st.state}]")
    console.print(f"strategy {st.strategy}; objectives {objectives}; pruner {st.pruner}")
    total = sum(st.counts.values())
    console.print("progress: " + ", ".join(f"{x} {st.counts.get(x, 0)}" for x in STATES) + f"; {total} of {st.n_trials} trials created")
    console.print(f"spent: {total - st.counts.get('pending', 0)} trials started, {st.epochs_done} epochs trained")
    console.print(effort_line(st))
    if st.stats.get("expanded"):
        s = st.stats
        console.print(f"expansion: {s['expanded']} configurations, {s['out_of_budget']} outside the budget, {s['invalid']} invalid, {s['duplicates']} duplicates dropped")
    if st.best:
        label = f" [{st.best['label']}]" if st.best.get("label") else ""
        console.print(f"best: trial {st.best['trial_id']} (#{st.best['number']}){label} {st.objectives[0]['name']} {st.best['value']:.6g}")
        console.print(f"  params: {json.dumps(st.best['params'], default=str)}")
    else:
        console.print("best: no completed trial yet")


@trial_app.command("list")
def trial_list(
    ctx: typer.Context,
    study: str = typer.Option(..., "--study", help="Study id or name."),
    state: Optional[str] = typer.Option(None, "--state", help="Only trials in this state."),
    limit: int = typer.Option(50, "--limit", help="At most this many rows."),
) -> None:
    """A study's trials: state, label, parameter count, best validation loss, searched params.

    Example: seqdb trial list --study sp500/20M/h3 --state completed
    """
    from seqdb.search.report import STATES, list_trials

    if state is not None and state not in STATES:
        raise ConfigError(f"--state {state!r}; allowed: {', '.join(STATES)}")
    _, engine = open_db(ctx)
    table = Table(title=f"trials of {study}")
    for col in ("id", "#", "state", "label", "params", "val_loss", "searched"):
        table.add_column(col, justify="right" if col in ("id", "#", "params", "val_loss") else "left", overflow="fold")
    for t in list_trials(engine, study, state, limit):
        searched = {k: v for k, v in (t.params or {}).items() if k not in ("d_model", "n_head", "n_layers", "d_ff", "n_kv_heads")}
        loss = f"{t.best_val_loss:.4g}" if t.best_val_loss is not None else "-"
        table.add_row(str(t.trial_id), str(t.number), t.state, t.label or "", f"{t.param_count:,}" if t.param_count else "-", loss, json.dumps(searched, default=str))
    console.print(table)


@trial_app.command("retry")
def trial_retry(
    ctx: typer.Context,
    trial_ids: Optional[list[int]] = typer.Argument(None, help="Ids of failed trials to put back in the queue."),
    failed: bool = typer.Option(False, "--failed", help="Every failed trial (of --study, or of every study)."),
    study: Optional[str] = typer.Option(None, "--study", help="With --failed: only this study (id or name)."),
) -> None:
    """Put failed trials back in the queue: pending again, resumed from their newest checkpoint,
    metrics, checkpoints and last error kept, a fresh max_attempts.

    Example: seqdb trial retry --failed --study sp500/20M/h3
    """
    from seqdb.runner.requeue import retry_trials
    from seqdb.search.study import get_study

    if bool(trial_ids) == failed:
        raise ConfigError("seqdb trial retry: give trial ids or --failed, not both and not neither")
    if study is not None and not failed:
        raise ConfigError("seqdb trial retry: --study goes with --failed; allowed: ids alone, or --failed [--study S]")
    _, engine = open_db(ctx)
    study_id = get_study(engine, study).study_id if study is not None else None
    done = retry_trials(engine, trial_ids or None, study_id=study_id)
    console.print(f"{len(done)} trial(s) back in the queue" + (f": {', '.join(map(str, done))}" if done else ""))


@trial_app.command("export")
def trial_export(
    ctx: typer.Context,
    trial_id: int = typer.Argument(..., help="Trial id."),
    as_yaml: bool = typer.Option(False, "--yaml", help="YAML (default: JSON); the same as --format yaml."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write to this file instead of stdout (--format sequifier: a folder)."),
    fmt: str = typer.Option("json", "--format", help="json, yaml, or sequifier (the toolkit's preprocess and train configs)."),
) -> None:
    """A complete, standalone training config of one trial.

    Example: seqdb trial export 42 --format sequifier --output sq42
    """
    from seqdb.search.report import export_trial

    if fmt not in ("json", "yaml", "sequifier"):
        raise ConfigError(f"--format {fmt!r}; allowed: json, yaml, sequifier")
    if fmt == "sequifier":
        return _export_sequifier(ctx, trial_id, output or Path(f"sequifier-trial-{trial_id}"))
    _, engine = open_db(ctx)
    text = export_trial(engine, trial_id, as_yaml=as_yaml or fmt == "yaml")
    if output is None:
        typer.echo(text)
        return
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)
    console.print(f"trial {trial_id} written to {output}")


def _export_sequifier(ctx: typer.Context, trial_id: int, out_dir: Path) -> None:
    """The trial as a sequifier project folder; says what could not be carried over."""
    from seqdb.results.sequifier import export_sequifier, write_sequifier

    project, engine = open_db(ctx)
    export = export_sequifier(engine, project, trial_id)
    for path in write_sequifier(export, out_dir):
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    for note in export.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    for item in export.unsupported:
        console.print(f"not carried over: {item}", highlight=False, soft_wrap=True)
    console.print(f"next: cd {out_dir} && sequifier preprocess --config-path configs/preprocess.yaml && "
                  "sequifier train --config-path configs/train.yaml", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(study_app, name="study")
    app.add_typer(trial_app, name="trial")
