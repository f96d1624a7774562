"""Studies: progress per budget x horizon, states, ETA."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from seqdb.dashboard.charts import LEGEND, STATE_COLORS
from seqdb.dashboard.common import empty, experiment, query

STATES = ["completed", "pruned", "failed", "running", "pending", "stopped"]


def experiment_eta_s(df) -> float | None:  # noqa: ANN001
    """Seconds until every study reaches its target: the remaining trials at each study's mean trial
    time, spread over the live workers (one pool moves from study to study); None before a trial finishes."""
    remaining = df.remaining.where(df.remaining > 0, 0)
    if remaining.sum() == 0:
        return 0.0
    known = df.mean_trial_s.notna()
    if not known.any():
        return None
    mean_s = df.mean_trial_s.fillna(df.mean_trial_s[known].mean())
    return float((remaining * mean_s).sum()) / max(int(df.live_workers.sum()), 1)


def eta_text(s: float | None) -> str:
    if s is None or s != s:
        return "-"
    return "done" if s == 0 else (f"{s / 60:.1f} min" if s < 3600 * 3 else f"{s / 3600:.1f} h")


st.title("Studies")
name = experiment()
df = query("SELECT * FROM study_progress WHERE experiment = ? ORDER BY budget_params, horizon, study_kind", (name,))
if df.empty:
    empty(f"No studies of {name} yet: `seqdb run --experiment {name}` makes one per (budget, horizon).")
    st.stop()
m1, m2, m3, m4 = st.columns(4)
m1.metric("studies complete", f"{int((df.remaining == 0).sum())} / {len(df)}")
m2.metric("trials finished", f"{int(df.finished.sum())} / {int(df.target_trials.sum())}", help="completed + pruned + failed, of the targets")
m3.metric("live workers", int(df.live_workers.sum()))
m4.metric("experiment ETA", eta_text(experiment_eta_s(df)), help="remaining trials x mean trial time per study, shared by the live workers")
long = df.melt(id_vars=["study"], value_vars=STATES, var_name="state", value_name="trials")
fig = px.bar(long, x="study", y="trials", color="state", category_orders={"state": STATES}, color_discrete_map=STATE_COLORS,
             height=380)
fig.update_layout(legend=LEGEND)
st.plotly_chart(fig, width="stretch")
df["eta"] = df.eta_s.map(eta_text)
st.dataframe(
    df[["study", "budget", "horizon", "strategy", "target_trials", *STATES, "progress", "best_val_loss", "live_workers", "eta"]],
    hide_index=True, width="stretch",
    column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="%.2f")},
)
