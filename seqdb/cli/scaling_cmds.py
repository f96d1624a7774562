"""`seqdb scaling` (the fit over the database) and `seqdb scaling fit POINTS.csv` (any points).

Both print the same fit from `seqdb.scaling.fit.fit_points`: parameters with 95% intervals
(where valid), the flags, and the extrapolation (off under a severe flag unless --force).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from seqdb.cli.common import console, open_db

Objective = typer.Option("ls", "--objective", help="ls (least squares in log space) | huber (delta 1e-3, summed).")
Ci = typer.Option("wald", "--ci", help="wald (Wald-t, default) | bootstrap (parametric, drawn noise scale).")
Bootstrap = typer.Option(200, "--bootstrap", min=0, help="Bootstrap replicates with --ci bootstrap.")
Seed = typer.Option(0, "--seed", help="Seed of the bootstrap.")
Force = typer.Option(False, "--force", help="Extrapolate even under a severe flag.")
AsJson = typer.Option(False, "--json", help="Print JSON instead of tables.")


def _views(ctx: typer.Context):  # noqa: ANN202
    from seqdb.views import connect

    project, _ = open_db(ctx)  # checks the schema revision
    return connect(project.database_url)


def _iv(ci95: dict, key: str) -> str:
    return f"[{ci95[key][0]:.4g}, {ci95[key][1]:.4g}]" if key in ci95 else "(no interval)"


def print_fit(fit) -> None:  # noqa: ANN001 - a seqdb.scaling.result.FitResult
    law = "E + A*N^-alpha" if fit.law == "n" else "E + A*N^-alpha + B*D^-beta"
    how = {"wald_t": f"Wald-t, {fit.df} df", "bootstrap": "parametric bootstrap", "none": "no interval"}.get(fit.ci_method, fit.ci_method)
    s = f", s = {fit.s:.3g}" if fit.s is not None else ""
    console.print(f"fit L = {law}  ({fit.objective} in log space, K = {fit.K} budgets; 95% intervals: {how}{s})")
    for key, value in fit.params.items():
        console.print(f"  {key:<6}= {value:.5g}  {_iv(fit.ci95, key)}")
    for f in fit.flags:
        console.print(f"  [yellow]flag[/yellow] {f}")
    at = fit.at
    if at is not None:
        where = ", ".join(f"{k}={at[k]:,.4g}" for k in ("N", "D", "C") if at.get(k) is not None)
        if at.get("loss") is None:
            console.print(f"  L({where}): {at.get('off', 'no prediction')}")
        else:
            iv = f"[{at['ci95'][0]:.4g}, {at['ci95'][1]:.4g}]" if at.get("ci95") else "(no interval)"
            console.print(f"  L({where}) = {at['loss']:.5g}  {iv}  (extrapolated)")


def _print_points(hs) -> None:  # noqa: ANN001
    table = Table(title=f"{hs.experiment} - horizon {hs.horizon} ({hs.split} loss)")
    test = hs.split == "test"
    for col in ("budget", "N", "best val loss", *(["test loss"] if test else []), "seeds", "seed mean", "seed sd(log)", "trial",
                "finished", "completed", "epochs/trial"):
        table.add_column(col, justify="right")
    for p in hs.points:
        sd = f"{p.seed_log_loss_sd:.3g}" if p.seed_log_loss_sd is not None else "-"
        tl = [f"{p.test_loss:.5g}" if p.test_loss is not None else "-"] if test else []
        table.add_row(p.budget, f"{p.param_count:,}", f"{p.best_val_loss:.5g}", *tl, str(p.n_seeds), f"{p.seed_loss_mean:.5g}", sd,
                      str(p.trial_id), str(p.n_finished), str(p.n_completed), f"{p.epochs_mean:.3g}")
    from seqdb.cli.scaling_nd import print_points_and_fit

    print_points_and_fit(table, hs, print_fit)


def _report_json(hs) -> dict:  # noqa: ANN001
    from dataclasses import asdict

    return {"experiment": hs.experiment, "horizon": hs.horizon, "split": hs.split, "points": [asdict(p) for p in hs.points],
            "fit": None if hs.fit is None else hs.fit.to_json(), "flags": hs.flags if hs.fit is None else hs.fit.flags,
            "message": hs.message}


def _not_found(experiment: Optional[str], horizon: Optional[int]) -> Exception:
    from seqdb.errors import NotFoundError

    what = " ".join(x for x in (f"experiment {experiment!r}" if experiment else "", f"horizon {horizon}" if horizon else "") if x)
    return NotFoundError(f"no completed search trials{' for ' + what if what else ''}; nothing to scale")


def scaling_cmd(
    ctx: typer.Context,
    experiment: Optional[str] = typer.Option(None, "--experiment", help="Only this experiment."),
    horizon: Optional[int] = typer.Option(None, "--horizon", help="Only this horizon."),
    at: Optional[str] = typer.Option(None, "--at", help="Extrapolate the fit to this parameter count (e.g. 2B)."),
    law: str = typer.Option("n", "--law", help="n: L(N) per horizon | nd: L(N, D) over the (budget, tokens) points."),
    at_compute: Optional[float] = typer.Option(None, "--at-compute", help="With --law nd: the compute-optimal (N, D) and loss at C FLOPs."),
    objective: str = Objective, ci: str = Ci, bootstrap: int = Bootstrap, seed: int = Seed, force: bool = Force,
    split: str = typer.Option("validation", "--split", help="validation (default) | test: each budget's selected trial scored once on test."),
    as_json: bool = AsJson,
) -> None:
    """Scaling points per horizon (validation loss of each budget's best trial, seed replicates),
    the fitted power law with 95% intervals, its flags, and the extrapolation.

    Example: seqdb scaling --experiment sp500 --horizon 3 --at 2B
    """
    if ctx.invoked_subcommand is not None:
        return
    from seqdb.experiment.budgets import parse_budget
    from seqdb.views.scaling import scaling_report

    if law == "nd" or at_compute is not None:  # L(N, D): seqdb/cli/scaling_nd.py
        from seqdb.cli.scaling_nd import report_nd
        from seqdb.errors import ConfigError

        if split != "validation":
            raise ConfigError("--split test is for --law n (the L(N, D) points are every evaluation, not one selection per budget)")
        if law != "nd" or at is not None:
            raise ConfigError("--at-compute is for --law nd; with --law nd predict with --at-compute C (FLOPs), not --at")
        with _views(ctx) as vc:
            return report_nd(vc, experiment=experiment, horizon=horizon, at_compute=at_compute, as_json=as_json,
                             objective=objective, ci=ci, bootstrap=bootstrap, seed=seed, force=force)
    n_at = parse_budget(at) if at is not None else None
    if split == "test":
        _score_on_test(ctx, experiment, horizon, quiet=as_json)
    with _views(ctx) as vc:
        report = scaling_report(vc, experiment=experiment, horizon=horizon, split=split, at=n_at, objective=objective, ci=ci,
                                bootstrap=bootstrap, seed=seed, force=force)
    if not report:
        raise _not_found(experiment, horizon)
    if as_json:
        sys.stdout.write(json.dumps([_report_json(hs) for hs in report]) + "\n")
        return
    for hs in report:
        _print_points(hs)
    if split == "validation":
        console.print("losses are validation losses of the trials selected on validation (selection and score on one split; "
                      "--split test scores each selection once on the test split)")
    else:
        console.print("losses are test losses of the trials selected on validation (each scored once; seeds not scored)")


def _score_on_test(ctx: typer.Context, experiment: Optional[str], horizon: Optional[int], quiet: bool) -> None:
    """Score each budget's selected trial on the test split (once; later calls reuse the score)."""
    from seqdb.results.test_scores import score_on_test
    from seqdb.views.scaling import scaling_inputs

    project, engine = open_db(ctx)
    with _views(ctx) as vc:
        ids = [p.trial_id for hs in scaling_inputs(vc, experiment, horizon) for p in hs.points]
    say = None if quiet else (lambda t: console.print(f"scoring trial {t} on the test split (once)"))
    score_on_test(engine, project, ids, on_trial=say)


def fit_cmd(
    points: Path = typer.Argument(..., help="CSV with columns N, loss (optionally D, group)."),
    law: str = typer.Option("n", "--law", help="n: L(N) = E + A N^-alpha | nd: L(N, D) (needs a D column)."),
    objective: str = Objective, ci: str = Ci, bootstrap: int = Bootstrap, seed: int = Seed,
    at: Optional[str] = typer.Option(None, "--at", help="Extrapolate to this parameter count N (e.g. 2B; --law n)."),
    at_compute: Optional[float] = typer.Option(None, "--at-compute", help="With --law nd: predict at this compute budget C (FLOPs)."),
    force: bool = Force, as_json: bool = AsJson,
) -> None:
    """Fit a scaling law to the points of a CSV file (the same fit as `seqdb scaling`).

    Example: seqdb scaling fit points.csv --law n --ci bootstrap --at 2B
    """
    from seqdb.errors import ConfigError
    from seqdb.experiment.budgets import parse_budget
    from seqdb.scaling.fit import fit_points
    from seqdb.scaling.points import read_points_csv

    if at_compute is not None and law != "nd":
        raise ConfigError("--at-compute is for --law nd (allowed with --law n: --at N)")
    target = {"C": at_compute} if at_compute is not None else (parse_budget(at) if at is not None else None)
    result = fit_points(read_points_csv(points), law=law, objective=objective, ci=ci, bootstrap=bootstrap, seed=seed,
                        at=target, force=force)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
    elif result.law == "nd":
        from seqdb.cli.scaling_nd import print_nd_fit

        print_nd_fit(result)
    else:
        print_fit(result)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Scaling-law fits: over the database (no subcommand) or `fit POINTS.csv`.", no_args_is_help=False)
    group.callback(invoke_without_command=True)(scaling_cmd)
    group.command("fit")(fit_cmd)
    app.add_typer(group, name="scaling")
