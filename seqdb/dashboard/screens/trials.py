"""Trials: a filterable table, one trial's full config and its learning curves."""

from __future__ import annotations

import streamlit as st

from seqdb.dashboard.common import curves, experiment, options, query, show_curves

COLUMNS = ("trial_id, experiment, budget, horizon, number, state, label, param_count, best_val_loss, epochs_done, "
           "d_model, n_layers, n_head, n_kv_heads, d_ff, learning_rate, dropout, batch_size, accumulation, duration_s")
STATES = ["completed", "running", "pending", "pruned", "failed", "stopped"]

st.title("Trials")
name = experiment()
wanted = st.query_params.get("trial_id", "")  # a link from the Scaling page: ?trial_id=N
c1, c2, c3 = st.columns(3)
budgets = c1.multiselect("budget", options("SELECT DISTINCT budget, budget_params FROM trials WHERE experiment = ? ORDER BY budget_params", (name,)))
horizons = c2.multiselect("horizon", options("SELECT DISTINCT horizon FROM trials WHERE experiment = ? ORDER BY 1", (name,)))
states = c3.multiselect("state", STATES)
where, params = ["experiment = ?"], [name]
for col, values in (("budget", budgets), ("horizon", horizons), ("state", states)):
    if values:
        where.append(f"{col} IN ({', '.join('?' * len(values))})")
        params += list(values)
df = query(f"SELECT {COLUMNS} FROM trials WHERE {' AND '.join(where)} ORDER BY best_val_loss NULLS LAST, trial_id LIMIT 2000", tuple(params))
st.caption(f"{len(df)} trial(s) of {name}" + (" (the first 2000 by loss)" if len(df) == 2000 else ""))
st.dataframe(df, hide_index=True, width="stretch")

ids = df.trial_id.tolist()
if not ids:
    st.info("No trial matches these filters.")
    st.stop()
trial_id = st.selectbox("trial", ids, index=ids.index(int(wanted)) if wanted.isdigit() and int(wanted) in ids else 0)
left, right = st.columns(2)
config = query("SELECT config, state, error FROM trials WHERE trial_id = ?", (int(trial_id),))
with left:
    st.subheader(f"config of trial {trial_id}")
    error = None if config.empty else config.error.iloc[0]
    if isinstance(error, str) and error:
        st.warning(f"trial {trial_id} failed: {error}")
    st.json(config.config.iloc[0] if not config.empty else {})
with right:
    st.subheader("learning curves")
    curve = curves({int(trial_id): str(trial_id)})
    if curve.empty:
        st.info("No metrics recorded for this trial yet.")
    else:
        show_curves(curve, log_y=st.checkbox("log scale", value=False), columns=1)
