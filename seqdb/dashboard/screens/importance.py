"""Importance & parallel coordinates of the searched parameters of one study."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import plotly.express as px
import streamlit as st

from seqdb.dashboard.common import empty, experiment, pick_study, query
from seqdb.search.analysis import param_importance

optuna.logging.set_verbosity(optuna.logging.WARNING)
FANOVA_MAX = 200  # fANOVA's forests grow with the trials (~1 s per 200 on one core): past this many, a seeded sample,
                  # and PED-ANOVA (0.2 s at 1,000 trials) is the default
EVALUATORS = {"fanova": "fANOVA", "ped_anova": "PED-ANOVA", "mdi": "mean decrease in impurity"}
COMPLETED = ("SELECT trial_id, params, best_val_loss FROM trials WHERE study_id = ? AND state = 'completed' "
             "AND best_val_loss IS NOT NULL ORDER BY trial_id")


def rows_of(trials: pd.DataFrame) -> list[dict]:
    return [json.loads(p) if isinstance(p, str) else (p or {}) for p in trials.params]


@st.cache_data(max_entries=64, show_spinner="computing importance ...")
def importance(study_id: int, stamp: tuple, evaluator: str) -> tuple[pd.DataFrame, int]:
    """Optuna's importance (seqdb.search.analysis.param_importance) of the study's completed trials
    and how many it used; recomputed only when `stamp` (their count and last id) changes."""
    trials = query(COMPLETED, (study_id,))
    if evaluator == "fanova" and len(trials) > FANOVA_MAX:
        trials = trials.iloc[np.sort(np.random.default_rng(0).choice(len(trials), FANOVA_MAX, replace=False))]
    scores = param_importance(rows_of(trials), trials.best_val_loss.astype(float).tolist(), min_trials=3, evaluator=evaluator)
    return pd.DataFrame({"parameter": list(scores), "importance": list(scores.values())}), len(trials)


st.title("Importance & parallel coordinates")
name = experiment()
study = pick_study("SELECT study_id, study AS name FROM study_progress WHERE experiment = ? AND completed >= 1 "
                   "ORDER BY budget_params, horizon", f"No study of {name} has completed trials yet.", params=(name,))
trials = query(COMPLETED, (int(study.study_id),))
params = pd.DataFrame(rows_of(trials)).reset_index(drop=True)
if params.empty:
    empty("The completed trials of this study have no searched parameters.")
    st.stop()
evaluator = st.radio("importance", list(EVALUATORS), format_func=EVALUATORS.get, horizontal=True, index=int(len(trials) > FANOVA_MAX),
                     help=f"fANOVA (random forests; on a seeded sample of {FANOVA_MAX} trials past that many), "
                          "PED-ANOVA (fast, from the best trials' distribution) or mean decrease in impurity")
imp, used = importance(int(study.study_id), (len(trials), int(trials.trial_id.max())), evaluator)
if imp.empty:
    st.info("Importance needs at least 3 completed trials and a parameter that varies.")
else:
    fig = px.bar(imp, x="importance", y="parameter", orientation="h", height=320)
    st.plotly_chart(fig.update_layout(margin=dict(t=30)), width="stretch")
    st.caption(f"{EVALUATORS[evaluator]} over {used} of {len(trials)} completed trials")
numeric = params.apply(lambda c: c if pd.api.types.is_numeric_dtype(c) else c.astype("category").cat.codes)
numeric["best_val_loss"] = trials.best_val_loss.values
fig = px.parallel_coordinates(numeric, color="best_val_loss", color_continuous_scale="Viridis_r", height=420)
st.plotly_chart(fig.update_layout(margin=dict(l=90, r=60, t=60, b=30)), width="stretch")  # room for the outer axes' labels
st.caption("parallel coordinates: one line per completed trial; categorical parameters as codes")
