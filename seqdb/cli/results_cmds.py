"""`seqdb best`, `seqdb train`, `seqdb report`, `seqdb infer`: the results of a study."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from seqdb.cli.common import BudgetOption, ExperimentOption, HorizonOption, console, err_console, open_db


def best(
    ctx: typer.Context,
    budget: BudgetOption,
    horizon: HorizonOption,
    experiment: ExperimentOption = None,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the result as JSON to this file (best_params.json)."),
) -> None:
    """The best completed trial: architecture, training parameters, batch configuration, loss.

    Example: seqdb best --budget 20M --horizon 3 --json
    """
    from seqdb.results.best import best_trial, write_json_atomic

    _, engine = open_db(ctx)
    result = best_trial(engine, budget, horizon, experiment)
    data = result.to_json()
    if out is not None:
        write_json_atomic(out, data)
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    _print_best(result)
    if out is not None:
        console.print(f"written to {out}")


def _print_best(r) -> None:  # noqa: ANN001 - a BestTrial
    a = r.architecture
    counts = ", ".join(f"{k} {v}" for k, v in r.n_trials.items() if k != "total")
    console.print(f"[bold]{r.experiment}[/bold] budget {r.budget} horizon {r.horizon}: study {r.study_name} ({r.n_trials['total']} trials: {counts})")
    console.print(f"best trial {r.trial_id} (#{r.trial_number}): best validation loss {r.best_val_loss:.6g} at step {r.best_step}")
    table = Table(title="architecture", show_header=False)
    for key in ("d_model", "n_layers", "n_head", "n_kv_heads", "d_ff", "activation", "attention", "positional", "norm", "prenorm", "dropout", "param_count", "non_embedding_params"):
        if a.get(key) is not None:
            table.add_row(key, f"{a[key]:,}" if key.endswith(("count", "params")) else str(a[key]))
    console.print(table)
    train = Table(title="training", show_header=False)
    for key, value in r.training.items():
        train.add_row(key, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    console.print(train)
    batch = ", ".join(f"{k} {v}" for k, v in r.batch_config.items()) or "not recorded"
    console.print(f"batch configuration: {batch}")
    if r.params:
        console.print("searched parameters: " + ", ".join(f"{k}={v}" for k, v in r.params.items()))


def train(
    ctx: typer.Context,
    budget: BudgetOption,
    horizon: HorizonOption,
    experiment: ExperimentOption = None,
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Epochs of the final training (default: the experiment's training.max_epochs)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    resamples: int = typer.Option(1000, "--resamples", min=10, help="Bootstrap resamples of the test report."),
    no_export: bool = typer.Option(False, "--no-export", help="Skip the ONNX export."),
) -> None:
    """Final training with the best parameters, test-set report and ONNX export.

    Example: seqdb train --budget 20M --horizon 3 --epochs 20
    """
    from seqdb.results.final import final_training

    project, engine = open_db(ctx)
    result = final_training(engine, project, budget, horizon, experiment=experiment, epochs=epochs, device=device,
                            resamples=resamples, export=not no_export, say=console.print)
    _print_report(result.report)
    for art in result.artifacts:
        check = f", verified: max |onnx - torch| {art.meta['max_abs_diff']:.2g}" if "max_abs_diff" in (art.meta or {}) else ""
        console.print(f"artifact {art.artifact_id}: {art.kind} {art.path} ({art.bytes:,} bytes, sha256 {art.sha256[:12]}…{check})", highlight=False, soft_wrap=True)
    if result.artifacts:
        gen = next((a.artifact_id for a in result.artifacts if a.kind == "onnx_generative"), None)
        if gen is not None:
            console.print(f"next: seqdb infer --model {gen} --data NEW_DATA.csv --probabilities")


def report(
    ctx: typer.Context,
    budget: BudgetOption,
    horizon: HorizonOption,
    experiment: ExperimentOption = None,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """The test-set report of the final model (written by `seqdb train`).

    Example: seqdb report --budget 20M --horizon 3
    """
    from seqdb.results.final import load_report

    _, engine = open_db(ctx)
    rep = load_report(engine, budget, horizon, experiment)
    if as_json:
        print(json.dumps(rep.to_json(), indent=2))
        return
    _print_report(rep)


def _print_report(rep) -> None:  # noqa: ANN001 - a TestReport
    from seqdb.results.report import summary_lines

    pct = int(round(rep.confidence * 100))
    table = Table(title=f"test set: {rep.n_rows} scored rows, {pct}% block-bootstrap intervals ({rep.resamples} resamples, block {rep.block})")
    for col in ("target", "metric", "model", f"{pct}% CI", "baseline", "baseline value", "model - baseline", "verdict"):
        table.add_column(col)
    for r in rep.rows:
        for i, c in enumerate(r.comparisons):
            first = i == 0
            style = "green" if c.verdict == "beats" else ("red" if c.verdict == "worse" else "yellow")
            table.add_row(r.target if first else "", r.metric if first else "", f"{r.value:.4g}" if first else "",
                          f"[{r.low:.4g}, {r.high:.4g}]" if first else "", c.baseline, f"{c.value:.4g}",
                          f"{c.diff:+.3g} [{c.diff_low:+.3g}, {c.diff_high:+.3g}]", f"[{style}]{c.verdict}[/{style}]")
    console.print(table)
    for line in summary_lines(rep):
        console.print(line, highlight=False)


def infer(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", help="An ONNX file exported by seqdb, or the id of its artifact row."),
    data: Path = typer.Option(..., "--data", help="Raw long-format data (csv or parquet) with the model's columns."),
    output: Optional[Path] = typer.Option(None, "--output", help="Where to write the answers (.parquet or .csv; default: <data>-predictions.parquet)."),
    probabilities: bool = typer.Option(False, "--probabilities", help="Also write one probability column per class."),
    embeddings: bool = typer.Option(False, "--embeddings", help="Also write the embedding model's vectors."),
    autoregress: int = typer.Option(0, "--autoregress", min=0, help="Forecast this many steps past each sequence's end, feeding predictions back."),
    sample: bool = typer.Option(False, "--sample", help="Sample categorical targets instead of the argmax."),
    temperature: float = typer.Option(1.0, "--temperature", help="Softmax temperature for --sample and --probabilities."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampler."),
    all_rows: bool = typer.Option(False, "--all-rows", help="One answer per input row instead of one per sequence."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Windows per ONNX Runtime call."),
) -> None:
    """Predictions, probabilities, embeddings or forecasts from an exported model (ONNX Runtime).

    Example: seqdb infer --model 7 --data data/prompt.csv --autoregress 200 --sample --temperature 0.8
    """
    from seqdb.results.infer import InferOptions
    from seqdb.results.infer import infer as run_infer

    path, sha = _model_path(ctx, model)
    opts = InferOptions(probabilities=probabilities, embeddings=embeddings, autoregress=autoregress, sample=sample,
                        temperature=temperature, seed=seed, all_rows=all_rows, batch_size=batch_size)
    out = output or data.with_name(f"{data.stem}-predictions.parquet")
    with _window_progress() as tick:
        opts.on_windows = tick
        result = run_infer(path, data, out, opts, expected_sha256=sha)
    for column, n in result.unknown.items():
        if n:
            err_console.print(f"note: {n} value(s) of {column} not in the model's id map were read as 'other' (id 1)")
    console.print(f"{result.frame.height} answer row(s) from {result.n_input_rows} input row(s) written to {result.output}")


@contextmanager
def _window_progress():
    """A live count of the windows run through ONNX Runtime (stderr, gone when done)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("infer: {task.completed:,.0f} windows"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("infer", total=None)
        yield lambda n: bar.advance(task, n)


def _model_path(ctx: typer.Context, model: str) -> tuple[Path, Optional[str]]:
    """A file path as given; a bare integer that is not a file names an artifact row."""
    if Path(model).exists() or not model.isdigit():
        return Path(model), None
    from seqdb.results.final import artifact_file

    _, engine = open_db(ctx)
    return artifact_file(engine, int(model))


def register(app: typer.Typer) -> None:
    app.command("best")(best)
    app.command("train")(train)
    app.command("report")(report)
    app.command("infer")(infer)
