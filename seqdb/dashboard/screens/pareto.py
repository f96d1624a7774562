"""Pareto: the non-dominated trials of multi-objective studies."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from seqdb.dashboard.common import empty, experiment, pick_study, query

st.title("Pareto")
name = experiment()
study = pick_study("SELECT s.study_id, s.name FROM tables.study s JOIN tables.experiment e ON e.experiment_id = s.experiment_id "
                   "WHERE e.name = ? AND json_array_length(s.objectives) >= 2 ORDER BY s.study_id",
                   f"No multi-objective study in {name}: set two or more objectives (e.g. val_loss and latency) in the experiment.",
                   params=(name,))
study_id = int(study.study_id)
obj = query("SELECT trial_id, objective_index, objective, direction, value FROM trial_objectives "
            "WHERE study_id = ? AND state = 'completed'", (study_id,))
front = query("SELECT trial_id, number, param_count, best_val_loss, objectives, objective_values FROM pareto_front "
              "WHERE study_id = ? ORDER BY trial_id", (study_id,))
objectives = obj.sort_values("objective_index").objective.unique().tolist()
if obj.empty or len(objectives) < 2:
    empty("No completed trials with all objective values yet.")
    st.stop()
wide = obj.pivot_table(index="trial_id", columns="objective", values="value").reset_index()
wide["on front"] = wide.trial_id.isin(front.trial_id)
c1, c2 = st.columns(2)
x = c1.selectbox("x", objectives, index=0)
y = c2.selectbox("y", objectives, index=1)
fig = px.scatter(wide, x=x, y=y, color="on front", hover_data=["trial_id"], height=480,
                 color_discrete_map={True: "crimson", False: "lightgray"})
line = wide[wide["on front"]].sort_values(x)
fig.add_scatter(x=line[x], y=line[y], mode="lines", line=dict(color="crimson", dash="dot"), name="front", showlegend=False)
st.plotly_chart(fig, width="stretch")
st.caption(f"{len(front)} non-dominated of {len(wide)} completed trials; directions: "
           + ", ".join(f"{o} {d}" for o, d in obj.groupby("objective").direction.first().items()))
st.dataframe(front, hide_index=True, width="stretch")
