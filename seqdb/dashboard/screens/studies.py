"""Studies: progress per budget x horizon, states, ETA."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from seqdb.dashboard.charts import LEGEND_TOP
from seqdb.dashboard.common import empty, experiment, query

STATES = ["completed", "pruned", "failed", "running", "pending", "stopped"]

st.title("Studies")
name = experiment()
df = query("SELECT * FROM study_progress WHERE experiment = ? ORDER BY budget_params, horizon, study_kind", (name,))
if df.empty:
    empty(f"No studies of {name} yet: `seqdb run --experiment {name}` makes one per (budget, horizon).")
    st.stop()
m1, m2, m3 = st.columns(3)
m1.metric("studies", len(df))
m2.metric("trials finished", int(df.finished.sum()), help="completed + pruned + failed")
m3.metric("live workers", int(df.live_workers.sum()))
long = df.melt(id_vars=["study"], value_vars=STATES, var_name="state", value_name="trials")
fig = px.bar(long, x="study", y="trials", color="state", category_orders={"state": STATES}, height=380)
fig.update_layout(legend=LEGEND_TOP, margin=dict(t=40))
st.plotly_chart(fig, width="stretch")
df["eta"] = df.eta_s.map(lambda s: "done" if s == 0 else ("-" if s != s or s is None else f"{s / 60:.1f} min"))
st.dataframe(
    df[["study", "experiment", "budget", "horizon", "strategy", "target_trials", *STATES, "progress", "best_val_loss", "live_workers", "eta"]],
    hide_index=True, width="stretch",
    column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="%.2f")},
)
