"""Workers: live heartbeat, current trial, throughput."""

from __future__ import annotations

import streamlit as st

from seqdb.dashboard.common import REFRESH_S, empty, experiment, query

st.title("Workers")
name = experiment()
df = query("SELECT w.name, w.host, w.device, w.state, w.alive, w.heartbeat_age_s, w.study, w.current_trial_id, "
           "w.current_trial_number, w.current_trial_step, w.tokens_per_s, w.started_at, w.last_seen_at FROM workers w "
           "LEFT JOIN study_progress p ON p.study_id = w.study_id WHERE p.experiment = ? OR w.study_id IS NULL "
           "ORDER BY w.alive DESC, w.last_seen_at DESC", (name,))
if df.empty:
    empty(f"No worker has run a study of {name} yet: `seqdb run --experiment {name}` starts one.")
    st.stop()
alive = df[df.alive]
m1, m2, m3 = st.columns(3)
m1.metric("live workers", len(alive))
m2.metric("silent or stopped", len(df) - len(alive))
m3.metric("tokens/s (live)", f"{alive.tokens_per_s.fillna(0).sum():,.0f}")
st.dataframe(df, hide_index=True, width="stretch",
             column_config={"heartbeat_age_s": st.column_config.NumberColumn("heartbeat age (s)", format="%.0f"),
                            "tokens_per_s": st.column_config.NumberColumn("tokens/s", format="%.0f")})
st.caption(f"workers of {name}'s studies and workers between studies; alive = running and seen within 120 s; "
           f"the page refreshes itself every {REFRESH_S} s while a worker is live")
