"""Importance & parallel coordinates of the searched parameters of one study."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import plotly.express as px
import streamlit as st

from seqdb.dashboard.common import TTL_S, empty, query

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _distribution(values: pd.Series):  # noqa: ANN202
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return optuna.distributions.CategoricalDistribution(sorted({str(v) for v in values}))
    lo, hi = float(values.min()), float(values.max())
    if pd.api.types.is_integer_dtype(values):
        return optuna.distributions.IntDistribution(int(lo), int(hi))
    return optuna.distributions.FloatDistribution(lo, hi, log=lo > 0 and hi / lo > 100)


@st.cache_data(ttl=TTL_S, show_spinner="computing importance ...")
def importance(params: pd.DataFrame, loss: pd.Series) -> pd.DataFrame:
    """fANOVA importance (Optuna) over an in-memory study built from the trials view."""
    varying = [c for c in params.columns if params[c].nunique() > 1]
    if len(varying) == 0 or len(params) < 3:
        return pd.DataFrame(columns=["parameter", "importance"])
    dists = {c: _distribution(params[c]) for c in varying}
    study = optuna.create_study(direction="minimize")
    for (_, row), value in zip(params[varying].iterrows(), loss):
        p = {c: (str(row[c]) if isinstance(dists[c], optuna.distributions.CategoricalDistribution) else row[c].item()) for c in varying}
        study.add_trial(optuna.trial.create_trial(params=p, distributions=dists, value=float(value)))
    scores = optuna.importance.get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    return pd.DataFrame({"parameter": list(scores), "importance": list(scores.values())})


st.title("Importance & parallel coordinates")
studies = query("SELECT study_id, study FROM study_progress WHERE completed >= 1 ORDER BY experiment, budget_params, horizon")
if studies.empty:
    empty("No study with completed trials yet.")
    st.stop()
names = dict(zip(studies.study_id, studies.study))
study_id = st.selectbox("study", list(names), format_func=names.get)
trials = query("SELECT trial_id, params, best_val_loss FROM trials WHERE study_id = ? AND state = 'completed' "
               "AND best_val_loss IS NOT NULL ORDER BY trial_id", (int(study_id),))
params = pd.DataFrame([json.loads(p) if isinstance(p, str) else (p or {}) for p in trials.params]).reset_index(drop=True)
if params.empty:
    empty("The completed trials of this study have no searched parameters.")
    st.stop()
imp = importance(params, trials.best_val_loss.reset_index(drop=True))
if imp.empty:
    st.info("Importance needs at least 3 completed trials and a parameter that varies.")
else:
    st.plotly_chart(px.bar(imp, x="importance", y="parameter", orientation="h", height=320), width="stretch")
numeric = params.apply(lambda c: c if pd.api.types.is_numeric_dtype(c) else c.astype("category").cat.codes)
numeric["best_val_loss"] = trials.best_val_loss.values
st.plotly_chart(px.parallel_coordinates(numeric, color="best_val_loss", color_continuous_scale="Viridis_r", height=420),
                width="stretch")
st.caption("parallel coordinates: one line per completed trial; categorical parameters as codes")
