"""DuckDB views over the live seqdb database (read-only), `seqdb sql`, and the scaling-law fit.

    from seqdb.views import connect, sql
    with connect("sqlite:///proj/seqdb.db") as vc:
        table = sql(vc, "SELECT * FROM scaling_points")

The names below are imported on first use (PEP 562), so `import seqdb.views.query` does not
pay for modules the caller never touches.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "ViewConnection": "connection", "connect": "connection",
    "VIEWS": "definitions", "VIEW_NAMES": "definitions",
    "QueryFailed": "guard", "QueryRefused": "guard", "check_select": "guard",
    "export": "query", "sql": "query", "sql_df": "query", "sql_rows": "query", "write_table": "query",
}

__all__ = list(_WHERE)


def __getattr__(name: str):  # noqa: ANN202
    if name not in _WHERE:
        raise AttributeError(f"module 'seqdb.views' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"seqdb.views.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
