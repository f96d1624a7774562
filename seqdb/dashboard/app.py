"""seqdb dashboard: scaling curves, studies, history, trials, learning curves, importance, Pareto fronts, workers.

Run through `seqdb dashboard [--port]`; read-only over the live database. Every page has its
own URL (`/scaling`, `/studies`, ...); `/` opens the Scaling page. The sidebar's experiment
filter and the auto-refresh (while workers are live) are drawn here, before the page runs.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from seqdb.dashboard.common import experiment_control, live_refresh

PAGES = Path(__file__).resolve().parent / "screens"  # not pages/, which Streamlit would list itself

st.set_page_config(page_title="seqdb", layout="wide")
scaling = st.Page(PAGES / "scaling.py", title="Scaling", url_path="scaling")


def home() -> None:
    """`/`: the Scaling page at its own URL (a default page would only live at `/`)."""
    st.switch_page(scaling, query_params=st.query_params.to_dict())


nav = st.navigation([
    st.Page(home, title="Home", url_path="home", default=True, visibility="hidden"),
    scaling,
    st.Page(PAGES / "compute.py", title="Compute", url_path="compute"),
    st.Page(PAGES / "studies.py", title="Studies", url_path="studies"),
    st.Page(PAGES / "history.py", title="History", url_path="history"),
    st.Page(PAGES / "trials.py", title="Trials", url_path="trials"),
    st.Page(PAGES / "curves.py", title="Learning curves", url_path="curves"),
    st.Page(PAGES / "importance.py", title="Importance", url_path="importance"),
    st.Page(PAGES / "pareto.py", title="Pareto", url_path="pareto"),
    st.Page(PAGES / "workers.py", title="Workers", url_path="workers"),
])
experiment_control()
live_refresh()
nav.run()
