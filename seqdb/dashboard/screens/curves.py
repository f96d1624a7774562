"""Learning curves: compare trials, the losses on one axis, throughput and every other metric on its own."""

from __future__ import annotations

import streamlit as st

from seqdb.dashboard.common import curves, experiment, query, show_curves

st.title("Learning curves")
name = experiment()
best = query("SELECT trial_id FROM best_trials WHERE experiment = ? ORDER BY horizon, param_count", (name,))
choices = query("SELECT trial_id, budget || ' h' || horizon || ' #' || number AS what, state FROM trials "
                "WHERE experiment = ? AND state <> 'pending' ORDER BY best_val_loss NULLS LAST, trial_id LIMIT 5000", (name,))
if choices.empty:
    st.info(f"No trial of {name} has started yet.")
    st.stop()
labels = {int(t): f"{t}: {w}" for t, w in zip(choices.trial_id, choices.what)}  # trial id: budget, horizon, number
states = dict(zip(choices.trial_id.astype(int), choices.state))
c1, c2, c3 = st.columns([4, 1, 1])
selected = c1.multiselect("trials", list(labels), default=[t for t in best.trial_id.tolist() if t in labels][:8] or list(labels)[:1],
                          format_func=lambda t: f"{labels[t]} ({states[t]})", help="default: the best trial of each budget and horizon")
x = c2.radio("x axis", ["step", "epoch"], horizontal=True)
log_y = c3.checkbox("log scale", value=True, help="y on a log scale wherever every value is positive")
if not selected:
    st.info("Pick one or more trials.")
    st.stop()
df = curves({t: labels[t] for t in selected})
if df.empty:
    st.info("No metrics recorded for these trials yet.")
    st.stop()
metrics = sorted(df.metric.unique())
shown = st.multiselect("metrics", metrics, default=metrics)
show_curves(df[df.metric.isin(shown)], log_y=log_y, x=x)
st.caption(f"{len(selected)} trial(s) of {name}; losses share one axis, throughput and each other metric have their own")
