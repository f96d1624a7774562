"""Compute: L(N, D) over the (size, tokens) ladder. Loss against training tokens per budget
(log-log, one line per N), IsoFLOP slices (loss against N at fixed C = 6 N D), and the
compute-optimal frontier N_opt(C) with its 95% band; the fitted law and exponents beside.

Points come from the `scaling_nd_points` view (every evaluation) and `seqdb.views.scaling_nd`
(the best final point per (budget, tokens) rung, the fit's input); the fit is cached on its
points, so a refresh paints at once.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from seqdb.dashboard.common import TTL_S, db_url, experiment as current_experiment, query
from seqdb.scaling.nd import LawND, frontier
from seqdb.views.scaling_nd import HorizonND, NDPoint, fit_nd_horizon, nd_points


@st.cache_resource
def _views(url: str):  # noqa: ANN202
    from seqdb.views import connect

    return connect(url)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def inputs(experiment: str) -> dict[int, str]:
    """horizon -> that horizon's rung points as JSON (the key of its cached fit)."""
    return {h: json.dumps([asdict(p) for p in pts]) for (_e, h), pts in nd_points(_views(db_url()), experiment).items()}


@st.cache_data(max_entries=64, show_spinner="fitting L(N, D) = E + A·N^-α + B·D^-β ...")
def fitted(experiment: str, horizon: int, payload: str, ci: str) -> HorizonND:
    from seqdb.views.scaling_nd import rung_effort_flags

    points = [NDPoint(**p) for p in json.loads(payload)]
    return fit_nd_horizon(HorizonND(experiment, horizon, points, flags=rung_effort_flags(points)), ci=ci, bootstrap=100, seed=0)


def _color(i: int, alpha: float = 1.0) -> str:
    return f"hsla({(i * 67) % 360},65%,45%,{alpha})"


def tokens_figure(curves, hs: HorizonND, law: LawND | None) -> go.Figure:  # noqa: ANN001 - curves: a DataFrame
    """Loss against tokens, one line per budget: the best loss seen at each token count (every
    evaluation), the final rung points as markers, the fitted L(N, D) dotted."""
    fig = go.Figure()
    for i, (budget, grp) in enumerate(curves.groupby("budget", sort=False)):
        env = grp.groupby("tokens", as_index=False)["val_loss"].min().sort_values("tokens")
        n = int(grp["param_count"].median())
        fig.add_trace(go.Scatter(x=env["tokens"], y=env["val_loss"], mode="lines", line=dict(color=_color(i, 0.45)),
                                 name=f"{budget} (N={n:,}) every evaluation"))
        finals = [p for p in hs.points if p.budget == budget]
        fig.add_trace(go.Scatter(x=[p.tokens for p in finals], y=[p.val_loss for p in finals], mode="markers",
                                 marker=dict(size=9, color=_color(i)), name=f"{budget} final"))
        if law is not None and finals:
            d = np.geomspace(env["tokens"].min(), env["tokens"].max() * 2, 40)
            fig.add_trace(go.Scatter(x=d, y=law.predict(n, d), mode="lines", line=dict(color=_color(i), dash="dot"),
                                     name=f"{budget} fit", showlegend=False))
    fig.update_xaxes(type="log", title="training tokens D")
    fig.update_yaxes(type="log", title="validation loss")
    fig.update_layout(height=460, margin=dict(t=30))
    return fig


def iso_flop_figure(hs: HorizonND, law: LawND, budgets: np.ndarray) -> go.Figure:
    """Loss against N at fixed compute C = 6 N D (the fit), measured points near each C, N_opt starred."""
    fig = go.Figure()
    ns = np.array([p.param_count for p in hs.points], dtype=float)
    for i, c in enumerate(budgets):
        n = np.geomspace(ns.min() / 4, ns.max() * 4, 80)
        fig.add_trace(go.Scatter(x=n, y=law.predict(n, c / 6 / n), mode="lines", line=dict(color=_color(i)), name=f"C = {c:.2g}"))
        near = [p for p in hs.points if abs(np.log(6 * p.param_count * p.tokens / c)) < np.log(1.5)]
        if near:
            fig.add_trace(go.Scatter(x=[p.param_count for p in near], y=[p.val_loss for p in near], mode="markers",
                                     marker=dict(color=_color(i), size=9), showlegend=False))
        a = law.allocation(float(c))
        fig.add_trace(go.Scatter(x=[a.N_opt], y=[a.loss], mode="markers", marker=dict(symbol="star", size=14, color=_color(i)),
                                 showlegend=False, hovertemplate=f"N_opt={a.N_opt:,.0f}<br>D_opt={a.D_opt:,.0f}<extra></extra>"))
    fig.update_xaxes(type="log", title="parameters N")
    fig.update_yaxes(type="log", title="validation loss")
    fig.update_layout(height=420, margin=dict(t=30))
    return fig


def frontier_figure(fr: dict) -> go.Figure:
    """N_opt and D_opt against C, with the 95% band of N_opt where the fit has one."""
    fig = go.Figure()
    c = fr["C"]
    if "N_opt_lo" in fr:
        fig.add_trace(go.Scatter(x=np.r_[c, c[::-1]], y=np.r_[fr["N_opt_hi"], fr["N_opt_lo"][::-1]], fill="toself",
                                 line=dict(width=0), fillcolor=_color(0, 0.15), name="N_opt 95% band", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=c, y=fr["N_opt"], mode="lines", line=dict(color=_color(0)), name="N_opt(C)"))
    fig.add_trace(go.Scatter(x=c, y=fr["D_opt"], mode="lines", line=dict(color=_color(1), dash="dash"), name="D_opt(C)"))
    fig.update_xaxes(type="log", title="compute C (FLOPs, C = 6 N D)")
    fig.update_yaxes(type="log", title="parameters / tokens")
    fig.update_layout(height=420, margin=dict(t=30))
    return fig


def _iv(ci95: dict, key: str) -> str:
    return f" [{ci95[key][0]:.3g}, {ci95[key][1]:.3g}]" if key in ci95 else ""


def describe(hs: HorizonND) -> str:
    f, p = hs.fit, hs.fit.params
    co = f.extra["compute_optimal"]
    civ = co.get("ci95", {})
    how = {"wald_t": f"Wald-t, {f.df} df", "bootstrap": "parametric bootstrap"}.get(f.ci_method, "none (see the flags)")
    return (f"L(N, D) = E + A·N^-α + B·D^-β: E = {p['E']:.4g}{_iv(f.ci95, 'E')}, A = {p['A']:.4g}{_iv(f.ci95, 'A')}, "
            f"α = {p['alpha']:.4g}{_iv(f.ci95, 'alpha')}, B = {p['B']:.4g}{_iv(f.ci95, 'B')}, β = {p['beta']:.4g}{_iv(f.ci95, 'beta')} "
            f"({f.K} points; 95% intervals: {how}).  \nCompute-optimal: N_opt ∝ C^a with a = {co['a']:.3g}{_iv(civ, 'a')}, "
            f"D_opt ∝ C^b with b = {co['b']:.3g}{_iv(civ, 'b')} (a + b = 1), G = {co['G']:.3g}{_iv(civ, 'G')}.")


def show(experiment: str, horizon: int, payload: str, ci: str) -> None:
    hs = fitted(experiment, horizon, payload, ci)
    st.subheader(f"horizon {horizon}")
    curves = query("SELECT budget, param_count, tokens, val_loss FROM scaling_nd_points WHERE experiment = ? AND horizon = ? "
                   "AND state = 'completed' ORDER BY param_count, tokens", (experiment, int(horizon)))
    law = None if hs.fit is None else LawND(**hs.fit.params)
    st.plotly_chart(tokens_figure(curves, hs, law), width="stretch")
    if hs.fit is None:
        st.warning(f"No L(N, D) fit for horizon {horizon}: {hs.message}.")
        return
    st.markdown(describe(hs))
    for f in hs.fit.flags:
        st.warning(f)
    flops = np.array([6.0 * p.param_count * p.tokens for p in hs.points])
    c1, c2 = st.columns(2)
    c1.plotly_chart(iso_flop_figure(hs, law, np.geomspace(flops.min(), flops.max(), 4)), width="stretch")
    cs = np.geomspace(flops.min() / 10, flops.max() * 100, 40)
    c2.plotly_chart(frontier_figure(frontier(hs.fit.extra["_fit"], cs)), width="stretch")
    st.dataframe([asdict(p) for p in hs.points], hide_index=True)


st.title("Compute")
experiment = current_experiment()
payloads = inputs(experiment)
if not payloads:
    st.info(f"No completed search trials with recorded tokens in {experiment}: this page fits L(N, D) over the final "
            "points of a (size, tokens) ladder (`tokens:` / `tokens_per_param:` / `compute:` in the experiment).")
    st.stop()
ci = st.selectbox("interval", ["wald", "bootstrap"], help="Wald-t (default) or parametric bootstrap (docs/scaling.md)")
st.caption("One point per (budget, tokens): the lowest final validation loss of that rung's completed trials. "
           "Under a decaying schedule only final points are comparable (docs/scaling.md).")
for h, payload in sorted(payloads.items()):
    show(experiment, h, payload, ci)
