"""Trials: a filterable table, one trial's full config and its learning curve."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from seqdb.dashboard.common import options, pick, query

COLUMNS = ("trial_id, experiment, budget, horizon, number, state, label, param_count, best_val_loss, epochs_done, "
           "d_model, n_layers, n_head, n_kv_heads, d_ff, learning_rate, dropout, batch_size, accumulation, duration_s")

st.title("Trials")
experiments = options("SELECT DISTINCT experiment FROM trials ORDER BY 1")
wanted = st.query_params.get("trial_id")  # a link from the Scaling page: ?trial_id=N
linked = options("SELECT experiment FROM trials WHERE trial_id = ?", (int(wanted),)) if wanted and wanted.isdigit() else []
c1, c2, c3, c4 = st.columns(4)
experiment = pick("experiment", experiments, "No trials yet.", where=c1, index=experiments.index(linked[0]) if linked else 0)
budgets = c2.multiselect("budget", options("SELECT DISTINCT budget FROM trials WHERE experiment = ? ORDER BY budget_params", (experiment,)))
horizons = c3.multiselect("horizon", options("SELECT DISTINCT horizon FROM trials WHERE experiment = ? ORDER BY 1", (experiment,)))
states = c4.multiselect("state", ["completed", "running", "pending", "pruned", "failed", "stopped"])
where, params = ["experiment = ?"], [experiment]
for col, values in (("budget", budgets), ("horizon", horizons), ("state", states)):
    if values:
        where.append(f"{col} IN ({', '.join('?' * len(values))})")
        params += list(values)
df = query(f"SELECT {COLUMNS} FROM trials WHERE {' AND '.join(where)} ORDER BY best_val_loss NULLS LAST, trial_id LIMIT 2000", tuple(params))
st.caption(f"{len(df)} trial(s)")
st.dataframe(df, hide_index=True, width="stretch")

ids = df.trial_id.tolist()
default = int(wanted) if wanted and wanted.isdigit() and int(wanted) in ids else (ids[0] if ids else None)
if default is None:
    st.stop()
trial_id = st.selectbox("trial", ids, index=ids.index(default))
left, right = st.columns(2)
config = query("SELECT config, params, batch_config, error FROM trials WHERE trial_id = ?", (int(trial_id),))
with left:
    st.subheader(f"config of trial {trial_id}")
    st.json(config.config.iloc[0] if not config.empty else {})
with right:
    st.subheader("learning curve")
    curve = query("SELECT * FROM learning_curve(?)", (int(trial_id),))
    if curve.empty:
        st.info("no metrics recorded for this trial yet")
    else:
        st.plotly_chart(px.line(curve, x="step", y="value", color="metric", markers=True, height=360), width="stretch")
