"""Workers: live heartbeat, current trial, throughput."""

from __future__ import annotations

import streamlit as st

from seqdb.dashboard.common import TTL_S, empty, query

st.title("Workers")
df = query("SELECT name, host, device, state, alive, heartbeat_age_s, study, current_trial_id, current_trial_number, "
           "current_trial_step, tokens_per_s, started_at, last_seen_at FROM workers ORDER BY alive DESC, last_seen_at DESC")
if df.empty:
    empty("No worker has started yet: `seqdb run` starts one.")
    st.stop()
alive = df[df.alive]
m1, m2, m3 = st.columns(3)
m1.metric("live workers", len(alive))
m2.metric("silent or stopped", len(df) - len(alive))
m3.metric("tokens/s (live)", f"{alive.tokens_per_s.fillna(0).sum():,.0f}")
st.dataframe(df, hide_index=True, width="stretch",
             column_config={"heartbeat_age_s": st.column_config.NumberColumn("heartbeat age (s)", format="%.0f"),
                            "tokens_per_s": st.column_config.NumberColumn("tokens/s", format="%.0f")})
st.caption(f"alive = running and seen within 120 s; refreshed every {TTL_S} s on reload")
