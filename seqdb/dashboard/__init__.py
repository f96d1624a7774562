"""The seqdb Streamlit dashboard (started by `seqdb dashboard`)."""
