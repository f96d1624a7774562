"""Importance & parallel coordinates of the searched parameters of one study."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import plotly.express as px
import streamlit as st

from seqdb.dashboard.common import TTL_S, empty, experiment, pick_study, query
from seqdb.search.analysis import param_importance

optuna.logging.set_verbosity(optuna.logging.WARNING)


@st.cache_data(ttl=TTL_S, show_spinner="computing importance ...")
def importance(params: list[dict], loss: list[float]) -> pd.DataFrame:
    """fANOVA importance (seqdb.search.analysis.param_importance) of the trials view's rows."""
    scores = param_importance(params, loss, min_trials=3)
    return pd.DataFrame({"parameter": list(scores), "importance": list(scores.values())})


st.title("Importance & parallel coordinates")
name = experiment()
study = pick_study("SELECT study_id, study AS name FROM study_progress WHERE experiment = ? AND completed >= 1 "
                   "ORDER BY budget_params, horizon", f"No study of {name} has completed trials yet.", params=(name,))
trials = query("SELECT trial_id, params, best_val_loss FROM trials WHERE study_id = ? AND state = 'completed' "
               "AND best_val_loss IS NOT NULL ORDER BY trial_id", (int(study.study_id),))
rows = [json.loads(p) if isinstance(p, str) else (p or {}) for p in trials.params]
params = pd.DataFrame(rows).reset_index(drop=True)
if params.empty:
    empty("The completed trials of this study have no searched parameters.")
    st.stop()
imp = importance(rows, trials.best_val_loss.astype(float).tolist())
if imp.empty:
    st.info("Importance needs at least 3 completed trials and a parameter that varies.")
else:
    st.plotly_chart(px.bar(imp, x="importance", y="parameter", orientation="h", height=320), width="stretch")
numeric = params.apply(lambda c: c if pd.api.types.is_numeric_dtype(c) else c.astype("category").cat.codes)
numeric["best_val_loss"] = trials.best_val_loss.values
st.plotly_chart(px.parallel_coordinates(numeric, color="best_val_loss", color_continuous_scale="Viridis_r", height=420),
                width="stretch")
st.caption("parallel coordinates: one line per completed trial; categorical parameters as codes")
