"""DuckDB views over the live seqdb database (read-only), `seqdb sql`, and the scaling-law fit.

    from seqdb.views import connect, sql
    with connect("sqlite:///proj/seqdb.db") as vc:
        table = sql(vc, "SELECT * FROM scaling_points")
"""

from seqdb.views.connection import ViewConnection, connect
from seqdb.views.definitions import VIEW_NAMES, VIEWS
from seqdb.views.guard import QueryFailed, QueryRefused, check_select
from seqdb.views.query import export, sql, sql_df, write_table

__all__ = [
    "ViewConnection", "connect", "VIEWS", "VIEW_NAMES", "QueryFailed", "QueryRefused", "check_select",
    "export", "sql", "sql_df", "write_table",
]
