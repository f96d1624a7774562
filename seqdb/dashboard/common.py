"""What every dashboard page shares: the read-only view connection, cached queries, the
experiment filter and the auto-refresh.

Every query goes through the DuckDB views (`seqdb.views`), guarded like `seqdb sql`; results
are cached for TTL_S seconds, so a running study updates live while a page is refreshed.
The database URL comes from SEQDB_DASHBOARD_DB (set by `seqdb dashboard`), else
SEQDB_DATABASE_URL, else `--db URL` after `--` on the streamlit command line.
The experiment filter is one sidebar control drawn by app.py before the page runs (so it keeps
its value from page to page); pages read it with `experiment()`. `?experiment=NAME` in the URL
selects it, and so does `?trial_id=N` (the trial's experiment).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Optional

import pandas as pd
import streamlit as st

from seqdb.views import connect, sql_df

TTL_S = 5
REFRESH_S = 10  # auto-refresh period while workers are live (longer than TTL_S: every refresh reads fresh rows)
ENV_DB = "SEQDB_DASHBOARD_DB"
EXPERIMENT = "experiment"  # session-state key of the shared filter (and its URL query parameter)
_SYNCED = "_experiment_in_url"  # the value this session last wrote to the URL
_RUN_AT = "_page_run_at"


def db_url() -> str:
    url = os.environ.get(ENV_DB) or os.environ.get("SEQDB_DATABASE_URL")
    if not url and "--db" in sys.argv[:-1]:
        url = sys.argv[sys.argv.index("--db") + 1]
    if not url:
        st.error("no database: start the dashboard with `seqdb dashboard` (or set SEQDB_DASHBOARD_DB)")
        st.stop()
    return url


@st.cache_resource
def _views(url: str):  # noqa: ANN202
    return connect(url)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _query(url: str, sql: str, params: Optional[tuple]) -> pd.DataFrame:
    return sql_df(_views(url), sql, list(params) if params else None)


def query(sql: str, params: Optional[tuple] = None) -> pd.DataFrame:
    """A guarded SELECT over the views of this dashboard's database, cached for TTL_S seconds."""
    return _query(db_url(), sql, params)


def options(sql: str, params: Optional[tuple] = None) -> list[Any]:
    df = query(sql, params)
    return [] if df.empty else df.iloc[:, 0].tolist()


def empty(message: str) -> None:
    st.info(message)


def pick(label: str, values: list, none_message: str, *, where: Any = st, index: int = 0, format_func: Callable = str) -> Any:
    """A select box over `values` (in `where`: st or a column); with no values the page shows
    `none_message` and stops."""
    if not values:
        empty(none_message)
        st.stop()
    return where.selectbox(label, values, index=index, format_func=format_func)


def pick_study(sql: str, none_message: str, label: str = "study", params: Optional[tuple] = None) -> pd.Series:
    """The study row chosen by name among the rows of `sql` (columns study_id, name, ...)."""
    rows = query(sql, params)
    names = {} if rows.empty else {int(i): n for i, n in zip(rows.study_id, rows.name)}
    study_id = pick(label, list(names), none_message, format_func=names.get)
    return rows[rows.study_id == study_id].iloc[0]


# ------------------------------------------------------------------------------------------
# the experiment filter: one control for every page
# ------------------------------------------------------------------------------------------
def experiments() -> list[str]:
    """Every experiment, the newest first (the one being worked on: the default)."""
    return options("SELECT name FROM tables.experiment ORDER BY created_at DESC, experiment_id DESC")


def _from_url(names: list[str]) -> Optional[str]:
    """The experiment the URL asks for (?experiment=, else ?trial_id='s), if the URL changed since this session wrote it."""
    wanted = st.query_params.get(EXPERIMENT)
    if wanted is not None:
        return wanted if wanted in names and wanted != st.session_state.get(_SYNCED) else None
    trial = st.query_params.get("trial_id", "")
    linked = options("SELECT experiment FROM trials WHERE trial_id = ?", (int(trial),)) if trial.isdigit() else []
    return linked[0] if linked else None


def experiment_control() -> Optional[str]:
    """Draw the sidebar's experiment filter (app.py, before the page); None when there is no experiment."""
    names = experiments()
    if st.session_state.get(EXPERIMENT) not in names:
        st.session_state.pop(EXPERIMENT, None)
    if not names:
        return None
    if (url_choice := _from_url(names)) is not None:
        st.session_state[EXPERIMENT] = url_choice
    chosen = st.sidebar.selectbox("experiment", names, key=EXPERIMENT, help="filters every page")
    st.query_params[EXPERIMENT] = st.session_state[_SYNCED] = chosen
    return chosen


def experiment() -> str:
    """The experiment chosen in the sidebar; with none, the page says so and stops."""
    name = st.session_state.get(EXPERIMENT)
    if name is None:
        empty("No experiments yet: `seqdb experiment add experiment.yaml` registers one.")
        st.stop()
    return name


# ------------------------------------------------------------------------------------------
# auto-refresh: rerun the page on a timer, only while a worker is live
# ------------------------------------------------------------------------------------------
@st.fragment(run_every=REFRESH_S)
def _tick() -> None:
    # Runs once with the page (just stamped: nothing to do), then every REFRESH_S seconds: rerun the page.
    if time.monotonic() - st.session_state.get(_RUN_AT, 0.0) >= REFRESH_S / 2:
        st.rerun()


def live_refresh() -> int:
    """While the workers view shows live workers, refresh the page every REFRESH_S seconds; the count."""
    live = query("SELECT count(*) AS n FROM workers WHERE alive")
    n = int(live.n.iloc[0]) if not live.empty else 0
    if n:
        st.session_state[_RUN_AT] = time.monotonic()
        with st.sidebar:
            _tick()
        st.sidebar.caption(f"auto-refresh every {REFRESH_S} s: {n} live worker{'s' if n != 1 else ''}")
    return n


# ------------------------------------------------------------------------------------------
# learning curves: the Trials and Learning curves pages
# ------------------------------------------------------------------------------------------
def curves(labels: dict[int, str]) -> pd.DataFrame:
    """Every metric row of the trials {trial_id: label} (learning_curve(), the fast path per
    trial), with a `trial` column holding the label."""
    frames = [query("SELECT * FROM learning_curve(?)", (int(t),)).assign(trial=label) for t, label in labels.items()]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["trial", "metric", "step", "epoch", "value"])


def show_curves(df: pd.DataFrame, *, log_y: bool, x: str = "step", columns: int = 2) -> None:
    """The losses on one full-width axis, then throughput and every other metric on its own axis, `columns` per row."""
    from seqdb.dashboard.charts import LOSS, curve_figure, metric_groups

    groups = metric_groups(df.metric.unique().tolist())
    if LOSS in groups:
        st.markdown(f"**{LOSS}**: " + ", ".join(groups[LOSS]))
        st.plotly_chart(curve_figure(df[df.metric.isin(groups.pop(LOSS))], LOSS, log_y=log_y, x=x, height=420), width="stretch")
    cells = st.columns(columns) if groups else []
    for i, (group, names) in enumerate(groups.items()):
        with cells[i % columns]:
            st.markdown(f"**{group}**")
            st.plotly_chart(curve_figure(df[df.metric.isin(names)], group, log_y=log_y, x=x, height=300), width="stretch")
