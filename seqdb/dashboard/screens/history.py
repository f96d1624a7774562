"""History: best loss so far per study; one study's trials in order, and Optuna's slice and contour plots."""

from __future__ import annotations

import json

import optuna
import streamlit as st

from seqdb.dashboard.charts import best_so_far_figure, history_figure, optuna_figure
from seqdb.dashboard.common import experiment, pick_study, query
from seqdb.search.analysis import memory_study

optuna.logging.set_verbosity(optuna.logging.WARNING)
FINISHED = "('completed', 'pruned', 'failed')"


@st.cache_resource(max_entries=8, show_spinner=False)
def study_of(study_id: int, stamp: tuple) -> tuple[optuna.Study, list[str]]:
    """An in-memory Optuna study of the completed trials (rebuilt when `stamp`, their count and last id, changes)."""
    rows = query("SELECT params, best_val_loss FROM trials WHERE study_id = ? AND state = 'completed' "
                 "AND best_val_loss IS NOT NULL ORDER BY trial_id", (study_id,))
    params = [json.loads(p) if isinstance(p, str) else (p or {}) for p in rows.params]
    return memory_study(params, rows.best_val_loss.astype(float).tolist())


st.title("History")
name = experiment()
done = query("SELECT study, finished_at, best_val_loss FROM trials WHERE experiment = ? AND state = 'completed' "
             "AND best_val_loss IS NOT NULL AND finished_at IS NOT NULL", (name,))
if not done.empty:
    st.subheader(f"best validation loss so far, every study of {name}")
    st.plotly_chart(best_so_far_figure(done), width="stretch")
study = pick_study("SELECT study_id, study AS name FROM study_progress WHERE experiment = ? AND finished >= 1 "
                   "ORDER BY budget_params, horizon, study_kind", f"No finished trials in {name} yet.", params=(name,))
trials = query(f"SELECT trial_id, number, state, finished_at, best_val_loss AS value FROM trials WHERE study_id = ? "
               f"AND state IN {FINISHED} AND best_val_loss IS NOT NULL", (int(study.study_id),))
st.subheader(f"history of {study['name']}")
x = st.radio("x axis", ["trial number", "finished at"], horizontal=True)
st.plotly_chart(history_figure(trials, x="number" if x == "trial number" else "finished_at"), width="stretch")
completed = trials[trials.state == "completed"]
st.caption(f"{len(trials)} finished trial(s) with a loss, {len(completed)} completed; the line is the best completed loss so far")

opt, varying = study_of(int(study.study_id), (len(completed), int(completed.trial_id.max()) if len(completed) else 0))
if len(completed) < 2 or not varying:
    st.info("Slice and contour plots need two completed trials and a searched parameter that varies.")
    st.stop()
st.subheader("slice: the loss against each searched parameter")
st.plotly_chart(optuna_figure(optuna.visualization.plot_slice(opt, params=varying), 380), width="stretch")
if len(varying) < 2:
    st.info(f"A contour plot needs two searched parameters that vary; {study['name']} varies only {varying[0]}.")
    st.stop()
st.subheader("contour: the loss over two searched parameters")
c1, c2 = st.columns(2)
px_name = c1.selectbox("x parameter", varying, index=0)
py_name = c2.selectbox("y parameter", [v for v in varying if v != px_name], index=0)
st.plotly_chart(optuna_figure(optuna.visualization.plot_contour(opt, params=[px_name, py_name]), 480), width="stretch")
