"""What every dashboard page shares: the read-only view connection and cached queries.

Every query goes through the DuckDB views (`seqdb.views`), guarded like `seqdb sql`; results
are cached for TTL_S seconds, so a running study updates live while a page is refreshed.
The database URL comes from SEQDB_DASHBOARD_DB (set by `seqdb dashboard`), else
SEQDB_DATABASE_URL, else `--db URL` after `--` on the streamlit command line.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Optional

import pandas as pd
import streamlit as st

from seqdb.views import connect, sql_df

TTL_S = 5
ENV_DB = "SEQDB_DASHBOARD_DB"


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
def query(sql: str, params: Optional[tuple] = None, _url: Optional[str] = None) -> pd.DataFrame:
    """A guarded SELECT over the views, cached for TTL_S seconds."""
    return sql_df(_views(_url or db_url()), sql, list(params) if params else None)


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


def pick_study(sql: str, none_message: str, label: str = "study") -> pd.Series:
    """The study row chosen by name among the rows of `sql` (columns study_id, name, ...)."""
    rows = query(sql)
    names = {} if rows.empty else {int(i): n for i, n in zip(rows.study_id, rows.name)}
    study_id = pick(label, list(names), none_message, format_func=names.get)
    return rows[rows.study_id == study_id].iloc[0]
