"""Scaling: each budget's loss (the seed spread as error bars) against exact parameter count,
one curve per horizon, the fitted power law with its 95% band, the intervals and the flags.

The points and flags are read live (cached for TTL_S); a fit is recomputed only when its
points, flags or options change (cached on their JSON), so a refresh paints at once.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from seqdb.dashboard.common import TTL_S, db_url, experiment as current_experiment
from seqdb.errors import SeqdbError
from seqdb.experiment.budgets import parse_budget
from seqdb.scaling.fit import band
from seqdb.views.scaling import HorizonScaling, ScalingPoint, fit_horizon, scaling_inputs


@st.cache_resource
def _views(url: str):  # noqa: ANN202
    from seqdb.views import connect

    return connect(url)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def inputs(experiment: str) -> list[str]:
    """Each horizon's points and flags as JSON (the key of its cached fit)."""
    return [json.dumps(asdict(hs)) for hs in scaling_inputs(_views(db_url()), experiment)]


@st.cache_data(max_entries=256, show_spinner="fitting L(N) = E + A·N^-α ...")
def fitted(payload: str, at: int | None, ci: str, force: bool) -> HorizonScaling:
    d = json.loads(payload)
    hs = HorizonScaling(d["experiment"], d["horizon"], [ScalingPoint(**p) for p in d["points"]], flags=d["flags"])
    return fit_horizon(hs, at=at, ci=ci, bootstrap=200, seed=0, force=force)


def _points_trace(hs: HorizonScaling, color: str) -> go.Scatter:
    ns = [p.param_count for p in hs.points]
    ys = [p.seed_loss_mean for p in hs.points]
    sd = [p.seed_log_loss_sd or 0.0 for p in hs.points]
    hi = [y * (np.exp(s) - 1) for y, s in zip(ys, sd)]
    lo = [y * (1 - np.exp(-s)) for y, s in zip(ys, sd)]
    return go.Scatter(x=ns, y=ys, mode="markers", name=f"horizon {hs.horizon}", marker=dict(size=10, color=color),
                      error_y=dict(type="data", array=hi, arrayminus=lo, visible=any(sd)),
                      customdata=[[p.trial_id, p.budget, p.n_seeds] for p in hs.points],
                      hovertemplate="N=%{x:,}<br>L=%{y:.4f}<br>trial %{customdata[0]} (%{customdata[1]}), "
                                    "%{customdata[2]} seed(s)<extra></extra>")


def _fit_traces(hs: HorizonScaling, color: str, at: int | None) -> list[go.Scatter]:
    ns = [p.param_count for p in hs.points]
    grid = np.geomspace(min(ns) / 2, max(max(ns) * 4, at or 0), 60)
    p, out = hs.fit.params, []
    b = band(hs.fit, grid)
    if b is not None and np.isfinite(b[0]).all() and np.isfinite(b[1]).all():
        out.append(go.Scatter(x=np.r_[grid, grid[::-1]], y=np.r_[b[1], b[0][::-1]], fill="toself", line=dict(width=0),
                              fillcolor=color.replace("hsl", "hsla").replace(")", ",0.15)"), name=f"h{hs.horizon} 95% band",
                              hoverinfo="skip"))
    out.append(go.Scatter(x=grid, y=hs.fit.predict(grid), mode="lines", line=dict(color=color, dash="dot"),
                          name=f"h{hs.horizon} fit: {p['E']:.3g} + {p['A']:.3g}·N^-{p['alpha']:.3g}"))
    a = hs.fit.at
    if a is not None and a.get("loss") is not None:
        err = dict(type="data", array=[a["ci95"][1] - a["loss"]], arrayminus=[a["loss"] - a["ci95"][0]]) if a.get("ci95") else None
        out.append(go.Scatter(x=[a["N"]], y=[a["loss"]], mode="markers", marker=dict(symbol="star", size=14, color=color),
                              error_y=err, name=f"h{hs.horizon} at {a['N']:,.0f}"))
    return out


def figure(report: list[HorizonScaling], at: int | None) -> go.Figure:
    fig = go.Figure()
    for i, hs in enumerate(report):
        color = f"hsl({(i * 67) % 360},65%,45%)"
        fig.add_trace(_points_trace(hs, color))
        if hs.fit is not None:
            fig.add_traces(_fit_traces(hs, color, at))
    fig.update_xaxes(type="log", title="parameters N (exact)")
    fig.update_yaxes(type="log", title="validation loss (geometric mean over seeds)")
    fig.update_layout(height=560, legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), margin=dict(t=60))  # above: clear of the axis title
    return fig


def _iv(fit, key: str) -> str:  # noqa: ANN001
    return f" [{fit.ci95[key][0]:.4g}, {fit.ci95[key][1]:.4g}]" if key in fit.ci95 else ""


def describe(hs: HorizonScaling) -> str:
    fit = hs.fit
    how = {"wald_t": f"Wald-t, {fit.df} df", "bootstrap": "parametric bootstrap"}.get(fit.ci_method, "none (see the flags)")
    text = (f"L(N) = E + A·N^-α with E = {fit.params['E']:.4g}{_iv(fit, 'E')}, A = {fit.params['A']:.4g}{_iv(fit, 'A')}, "
            f"α = {fit.params['alpha']:.4g}{_iv(fit, 'alpha')} (95% intervals: {how})")
    a = fit.at
    if a is not None and a.get("loss") is not None:
        ci = f" [{a['ci95'][0]:.4g}, {a['ci95'][1]:.4g}]" if a.get("ci95") else " (no interval)"
        text += f"; extrapolated L({a['N']:,.0f}) = {a['loss']:.4g}{ci}"
    elif a is not None:
        text += f"; {a['off']}"
    return text


def show(hs: HorizonScaling) -> None:
    st.subheader(f"horizon {hs.horizon}")
    if hs.fit is None:
        st.warning(f"No fit for horizon {hs.horizon}: {hs.message}.")
    else:
        st.markdown(describe(hs))
    for f in (hs.fit.flags if hs.fit is not None else hs.flags):
        st.warning(f)
    table = [{"budget": p.budget, "N": p.param_count, "best val loss": p.best_val_loss, "seeds": p.n_seeds,
              "seed mean": p.seed_loss_mean, "seed sd (log)": p.seed_log_loss_sd, "trial": f"trials?trial_id={p.trial_id}",
              "finished trials": p.n_finished, "completed": p.n_completed, "epochs/trial": p.epochs_mean} for p in hs.points]
    st.dataframe(table, hide_index=True, column_config={"trial": st.column_config.LinkColumn("trial", display_text=r"trial_id=(\d+)")})


st.title("Scaling")
experiment = current_experiment()  # the sidebar's filter, shared by every page
payloads = inputs(experiment)
if not payloads:
    st.info(f"No completed search trials of {experiment} yet: the scaling curve appears when the first trial of a budget finishes.")
    st.stop()
c1, c2, c3 = st.columns([2, 1, 1])
at_text = c1.text_input("extrapolate to N", value="", placeholder="e.g. 2B")
ci = c2.selectbox("interval", ["wald", "bootstrap"], help="Wald-t (calibrated, docs/scaling.md) or parametric bootstrap")
force = c3.checkbox("extrapolate despite severe flags", value=False)
try:
    at = parse_budget(at_text) if at_text.strip() else None
except SeqdbError as exc:
    st.warning(exc.message)
    at = None
report = [fitted(p, at, ci, force) for p in payloads]
st.plotly_chart(figure(report, at), width="stretch")
st.caption("Losses are validation losses of the trials selected on validation (selection and score on one split).")
for hs in report:
    show(hs)
