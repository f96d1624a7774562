"""Learning curves: overlay selected trials."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from seqdb.dashboard.common import options, pick, query

st.title("Learning curves")
metrics = options("SELECT DISTINCT name FROM tables.metric ORDER BY 1")
best = query("SELECT trial_id, experiment || ' ' || budget || ' h' || horizon AS what FROM best_trials ORDER BY experiment, horizon, param_count")
choices = query("SELECT trial_id, experiment || ' ' || budget || ' h' || horizon || ' #' || number AS what FROM trials "
                "WHERE state <> 'pending' ORDER BY trial_id LIMIT 5000")
labels = dict(zip(choices.trial_id, choices.what))
c1, c2 = st.columns([3, 1])
selected = c1.multiselect("trials", list(labels), default=[t for t in best.trial_id.tolist() if t in labels][:8],
                          format_func=lambda t: f"{t}: {labels.get(t, '')}")
metric = pick("metric", metrics, "No metrics recorded yet.", where=c2, index=metrics.index("val_loss") if "val_loss" in metrics else 0)
if not selected:
    st.info("pick one or more trials")
    st.stop()
frames = [query("SELECT * FROM learning_curve(?) WHERE metric = ?", (int(t), metric)).assign(trial=f"{t}: {labels.get(t, '')}") for t in selected]
import pandas as pd  # noqa: E402

df = pd.concat(frames, ignore_index=True)
st.plotly_chart(px.line(df, x="step", y="value", color="trial", log_y=True, height=520, labels={"value": metric}),
                width="stretch")
