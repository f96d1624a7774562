"""Figures the pages share: learning curves one axis per kind of metric, search history with
the best value so far, and Optuna's slice and contour plots of an in-memory study.

Learning curves: every loss metric (train_loss, val_loss, loss_<target> ...) on one axis, the
throughput (tokens_per_s, any *_per_s) on its own, and each other metric (lr, grad_norm,
memory_mb, accuracy_<target> ...) on its own; a log y axis where every value is positive.
Legends sit right of the plot area, clear of the axis titles and of plotly's toolbar.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

LOSS, THROUGHPUT = "losses", "throughput"
LEGEND = dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.02, title_text="")  # right of the plot
STATE_COLORS = {"completed": "#1f77b4", "pruned": "#ff7f0e", "failed": "#d62728", "running": "#2ca02c",
                "pending": "#c7c7c7", "stopped": "#9467bd"}


def metric_group(name: str) -> str:
    """The axis a metric goes on: every loss together, throughput apart, any other metric its own."""
    if "loss" in name:
        return LOSS
    if name.endswith("_per_s"):
        return THROUGHPUT
    return name


def metric_groups(names: list[str]) -> dict[str, list[str]]:
    """{axis: metrics}, losses first, then throughput, then the other metrics by name."""
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(metric_group(name), []).append(name)
    order = [g for g in (LOSS, THROUGHPUT) if g in groups] + sorted(g for g in groups if g not in (LOSS, THROUGHPUT))
    return {g: groups[g] for g in order}


def _legend_right(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(height=height, legend=LEGEND, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def curve_figure(df: pd.DataFrame, group: str, *, log_y: bool, x: str = "step", height: int = 360) -> go.Figure:
    """One axis of learning curves. df: rows (trial, metric, step, epoch, value) of the metrics in
    `group`; one colour per trial (per metric when there is one trial), one dash per metric."""
    several = df.trial.nunique() > 1
    log = log_y and bool((df.value > 0).all())
    fig = px.line(df.sort_values(["trial", "metric", x]), x=x, y="value", color="trial" if several else "metric",
                  line_dash="metric" if several and df.metric.nunique() > 1 else None, markers=len(df) <= 200, log_y=log,
                  labels={"value": group})
    fig.update_yaxes(title=f"{group} (log)" if log else group)
    return _legend_right(fig, height)


def history_figure(df: pd.DataFrame, *, x: str = "number", height: int = 420) -> go.Figure:
    """A study's finished trials: the objective by trial number (or finish time), one colour per
    state, and the best completed value so far as a step line. df: number, state, finished_at, value."""
    df = df.sort_values(x)
    fig = go.Figure()
    for state, rows in df.groupby("state", sort=False):
        fig.add_trace(go.Scatter(x=rows[x], y=rows.value, mode="markers", name=state,
                                 marker=dict(size=7, color=STATE_COLORS.get(state, "gray"), opacity=0.7),
                                 customdata=rows.number, hovertemplate="trial %{customdata}<br>%{y:.5g}<extra></extra>"))
    best = df.value.where(df.state == "completed").cummin().ffill()  # pruned rows keep the best so far
    fig.add_trace(go.Scatter(x=df[x], y=best, mode="lines", line=dict(shape="hv", color="black", width=2), name="best so far"))
    fig.update_xaxes(title="trial number" if x == "number" else "finished at")
    if x == "number":  # whole trial numbers only
        fig.update_xaxes(tick0=0, dtick=max(1, round(len(df) / 10)))
    fig.update_yaxes(title="best validation loss")
    return _legend_right(fig, height)


def best_so_far_figure(df: pd.DataFrame, height: int = 380) -> go.Figure:
    """Every study of an experiment: best completed validation loss so far against finish time.
    df: study, finished_at, best_val_loss (completed trials)."""
    df = df.sort_values(["study", "finished_at"]).assign(best=lambda d: d.groupby("study").best_val_loss.cummin())
    # a step line needs only the trials that improved it, and each study's last trial (10k trials: ~100 points)
    improved = df.best < df.groupby("study").best.shift(fill_value=float("inf"))
    last = ~df.study.duplicated(keep="last")
    df = df[improved | last]
    fig = px.line(df, x="finished_at", y="best", color="study", line_shape="hv", markers=len(df) <= 300,
                  labels={"best": "best validation loss so far", "finished_at": "finished at"})
    return _legend_right(fig, height)


def optuna_figure(fig: go.Figure, height: int) -> go.Figure:
    """Optuna's plots put their title inside the figure; the page has a heading already."""
    fig.update_layout(title=None, height=height, margin=dict(l=10, r=10, t=30, b=10))
    return fig
