"""Output of the L(N, D) fit: `seqdb scaling --law nd` (over the database) and
`seqdb scaling fit POINTS.csv --law nd` (any points). The commands live in scaling_cmds.py."""

from __future__ import annotations

import json
import sys
from typing import Optional

from rich.table import Table

from seqdb.cli.common import console


def _iv(ci95: dict, key: str, fmt: str = ".4g") -> str:
    return f"[{ci95[key][0]:{fmt}}, {ci95[key][1]:{fmt}}]" if key in ci95 else "(no interval)"


def print_nd_fit(fit) -> None:  # noqa: ANN001 - a seqdb.scaling.result.FitResult with law "nd"
    how = {"wald_t": f"Wald-t, {fit.df} df", "bootstrap": "parametric bootstrap", "none": "no interval"}.get(fit.ci_method, fit.ci_method)
    s = f", s = {fit.s:.3g}" if fit.s is not None else ""
    console.print(f"fit L(N, D) = E + A*N^-alpha + B*D^-beta  ({fit.objective} in log space, K = {fit.K} points; "
                  f"95% intervals: {how}{s})")
    for key, value in fit.params.items():
        console.print(f"  {key:<6}= {value:.5g}  {_iv(fit.ci95, key)}")
    co = fit.extra["compute_optimal"]
    civ = co.get("ci95", {})
    console.print(f"compute-optimal under C = 6ND: N_opt = G*(C/6)^a, D_opt = (C/6)/N_opt  "
                  f"(a + b = {co['a'] + co['b']:.3g})")
    console.print(f"  a = {co['a']:.4g} {_iv(civ, 'a')}   b = {co['b']:.4g} {_iv(civ, 'b')}   G = {co['G']:.4g} {_iv(civ, 'G')}")
    for f in fit.flags:
        console.print(f"  [yellow]flag[/yellow] {f}")
    _print_at(fit.at)


def _print_at(at: Optional[dict]) -> None:
    if at is None:
        return
    if at.get("loss") is None:
        console.print(f"  at C = {at['C']:.4g} FLOPs: {at.get('off', 'no prediction')}")
        return
    iv = lambda k: f"[{at[k][0]:.4g}, {at[k][1]:.4g}]" if at.get(k) else "(no interval)"  # noqa: E731
    console.print(f"  at C = {at['C']:.4g} FLOPs: N_opt = {at['N_opt']:.4g} {iv('N_opt_ci95')}, "
                  f"D_opt = {at['D_opt']:.4g} {iv('D_opt_ci95')}, loss = {at['loss']:.5g} {iv('ci95')}")


def _print_points(hs) -> None:  # noqa: ANN001 - a seqdb.views.scaling_nd.HorizonND
    table = Table(title=f"{hs.experiment} - horizon {hs.horizon}: final validation loss per (budget, tokens)")
    for col in ("budget", "N", "D (tokens)", "FLOPs", "loss", "trial", "completed"):
        table.add_column(col, justify="right")
    for p in hs.points:
        flops = f"{p.flops:.3g}" if p.flops else "-"
        table.add_row(p.budget, f"{p.param_count:,}", f"{p.tokens:,}", flops, f"{p.val_loss:.5g}", str(p.trial_id), str(p.n_trials))
    print_points_and_fit(table, hs, print_nd_fit)


def _report_json(hs) -> dict:  # noqa: ANN001
    from dataclasses import asdict

    return {"experiment": hs.experiment, "horizon": hs.horizon, "law": "nd", "points": [asdict(p) for p in hs.points],
            "fit": None if hs.fit is None else hs.fit.to_json(), "flags": hs.flags if hs.fit is None else hs.fit.flags,
            "message": hs.message}


def report_nd(vc, *, experiment: Optional[str], horizon: Optional[int], at_compute: Optional[float], as_json: bool,  # noqa: ANN001
              **fit_options) -> None:
    """`seqdb scaling --law nd`: the (budget, tokens) points and the L(N, D) fit per horizon."""
    from seqdb.errors import NotFoundError
    from seqdb.views.scaling_nd import scaling_nd_report

    at = {"C": float(at_compute)} if at_compute is not None else None
    report = scaling_nd_report(vc, experiment=experiment, horizon=horizon, at=at, **fit_options)
    if not report:
        what = "".join(x for x in (f" for experiment {experiment!r}" if experiment else "", f" at horizon {horizon}" if horizon else ""))
        raise NotFoundError(f"no completed search trials with recorded tokens{what}; nothing to fit (tokens are recorded "
                            "at each evaluation by this version's trainer)")
    if as_json:
        sys.stdout.write(json.dumps([_report_json(hs) for hs in report]) + "\n")
        return
    for hs in report:
        _print_points(hs)


def print_points_and_fit(table, hs, print_fit) -> None:  # noqa: ANN001
    """The points table, then the fit (`print_fit`) or why there is none, with its flags."""
    console.print(table)
    if hs.fit is None:
        console.print(f"no fit: {hs.message}")
        for f in hs.flags:
            console.print(f"  [yellow]flag[/yellow] {f}")
    else:
        print_fit(hs.fit)
