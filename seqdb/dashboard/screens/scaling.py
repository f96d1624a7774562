"""Scaling: best validation loss against exact parameter count, one line per horizon, fitted power law."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from seqdb.dashboard.common import TTL_S, options, pick, query
from seqdb.errors import SeqdbError
from seqdb.experiment.budgets import parse_budget
from seqdb.views.scaling import HorizonScaling, ScalingPoint, fit_horizon

POINT_COLS = "budget, budget_params, param_count, best_val_loss, trial_id, n_finished, n_completed, epochs_total, epochs_mean"


@st.cache_data(ttl=TTL_S, show_spinner="fitting L(N) = E + A·N^-α ...")
def fits(experiment: str, at: int | None, replicates: int) -> list[HorizonScaling]:
    pts = query(f"SELECT horizon, {POINT_COLS} FROM scaling_points WHERE experiment = ? ORDER BY horizon, param_count", (experiment,))
    losses = query("SELECT s.horizon, b.label AS budget, t.best_val_loss FROM tables.trial t "
                   "JOIN tables.study s ON s.study_id = t.study_id JOIN tables.experiment e ON e.experiment_id = s.experiment_id "
                   "JOIN tables.budget b ON b.budget_id = s.budget_id WHERE e.name = ? AND s.kind = 'search' "
                   "AND t.state = 'completed' AND t.best_val_loss IS NOT NULL", (experiment,))
    out = []
    for h, group in pts.groupby("horizon", sort=True):
        points = [ScalingPoint(**{k: r[k] for k in POINT_COLS.split(", ")}) for r in group.to_dict("records")]
        pools = [losses[(losses.horizon == h) & (losses.budget == p.budget)].best_val_loss.tolist() or [p.best_val_loss] for p in points]
        out.append(fit_horizon(HorizonScaling(experiment, int(h), points, losses=pools), at=at, replicates=replicates, seed=0))
    return out


def figure(report: list[HorizonScaling], at: int | None) -> go.Figure:
    fig = go.Figure()
    for i, hs in enumerate(report):
        color = f"hsl({(i * 67) % 360},65%,45%)"
        ns = [p.param_count for p in hs.points]
        fig.add_trace(go.Scatter(x=ns, y=[p.best_val_loss for p in hs.points], mode="markers", name=f"horizon {hs.horizon}",
                                 marker=dict(size=10, color=color), customdata=[[p.trial_id, p.budget] for p in hs.points],
                                 hovertemplate="N=%{x:,}<br>L=%{y:.4f}<br>trial %{customdata[0]} (%{customdata[1]})<extra></extra>"))
        if hs.fit is None:
            continue
        b = hs.bootstrap
        grid = b.n_grid if b is not None else np.geomspace(min(ns) / 2, max(max(ns) * 4, at or 0), 60)
        if b is not None:
            fig.add_trace(go.Scatter(x=np.r_[grid, grid[::-1]], y=np.r_[b.band_high, b.band_low[::-1]], fill="toself",
                                     line=dict(width=0), fillcolor=color.replace("hsl", "hsla").replace(")", ",0.15)"),
                                     name=f"h{hs.horizon} 95% band", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=grid, y=hs.fit.predict(grid), mode="lines", line=dict(color=color, dash="dot"),
                                 name=f"h{hs.horizon} fit: {hs.fit.E:.3g} + {hs.fit.A:.3g}·N^-{hs.fit.alpha:.3g}"))
        if hs.at is not None:
            fig.add_trace(go.Scatter(x=[hs.at.n], y=[hs.at.loss], mode="markers", marker=dict(symbol="star", size=14, color=color),
                                     name=f"h{hs.horizon} at {hs.at.n:,}"))
    fig.update_xaxes(type="log", title="parameters N (exact)")
    fig.update_yaxes(type="log", title="best validation loss")
    fig.update_layout(height=520, legend=dict(orientation="h"))
    return fig


st.title("Scaling")
experiments = options("SELECT experiment FROM scaling_points GROUP BY experiment ORDER BY count(*) DESC, experiment")
c1, c2, c3 = st.columns([2, 1, 1])
experiment = pick("experiment", experiments, "No completed search trials yet: the scaling curve appears when the first trial of a budget finishes.", where=c1)
at_text = c2.text_input("extrapolate to N", value="", placeholder="e.g. 2B")
replicates = c3.number_input("bootstrap replicates", min_value=0, max_value=1000, value=50, step=50)
try:
    at = parse_budget(at_text) if at_text.strip() else None
except SeqdbError as exc:
    st.warning(exc.message)
    at = None
report = fits(experiment, at, int(replicates))
st.plotly_chart(figure(report, at), width="stretch")
for hs in report:
    st.subheader(f"horizon {hs.horizon}")
    if hs.fit is None:
        st.warning(f"No fit for horizon {hs.horizon}: {hs.message}.")
    else:
        b = hs.bootstrap
        iv = (lambda x: f" [{x.low:.4g}, {x.high:.4g}]") if b is not None else (lambda x: "")
        text = (f"L(N) = E + A·N^-α with E = {hs.fit.E:.4g}{iv(b.E) if b else ''}, A = {hs.fit.A:.4g}{iv(b.A) if b else ''}, "
                f"α = {hs.fit.alpha:.4g}{iv(b.alpha) if b else ''} (95% bootstrap intervals)")
        if hs.at is not None:
            text += f"; extrapolated L({hs.at.n:,}) = {hs.at.loss:.4g}" + (iv(hs.at.interval) if hs.at.interval else "")
        st.markdown(text)
    table = [{"budget": p.budget, "N": p.param_count, "best val loss": p.best_val_loss, "trial": f"trials?trial_id={p.trial_id}",
              "finished trials": p.n_finished, "completed": p.n_completed, "epochs": p.epochs_total} for p in hs.points]
    st.dataframe(table, hide_index=True, column_config={"trial": st.column_config.LinkColumn("trial", display_text=r"trial_id=(\d+)")})
