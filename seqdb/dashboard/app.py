"""seqdb dashboard: scaling curves, studies, trials, learning curves, importance, Pareto fronts, workers.

Run through `seqdb dashboard [--port]`; read-only over the live database.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent / "screens"  # not pages/, which Streamlit would list itself

st.set_page_config(page_title="seqdb", layout="wide")
nav = st.navigation([
    st.Page(PAGES / "scaling.py", title="Scaling", url_path="scaling", default=True),
    st.Page(PAGES / "studies.py", title="Studies", url_path="studies"),
    st.Page(PAGES / "trials.py", title="Trials", url_path="trials"),
    st.Page(PAGES / "curves.py", title="Learning curves", url_path="curves"),
    st.Page(PAGES / "importance.py", title="Importance", url_path="importance"),
    st.Page(PAGES / "pareto.py", title="Pareto", url_path="pareto"),
    st.Page(PAGES / "workers.py", title="Workers", url_path="workers"),
])
nav.run()
