"""The statement guard: only one SELECT over the views reaches DuckDB.

This is the first of three read-only layers (the others: the READ_ONLY attachment and the
locked DuckDB configuration, see `seqdb.views.connection`). It gives a clear one-line
refusal instead of a DuckDB error, and it closes the one hole the other layers leave: table
functions that run raw SQL on the attached database (`postgres_execute`, `sqlite_query`,
`query`, ...). Only table functions on the allow-list below may appear.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import duckdb

from seqdb.errors import SeqdbError

ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "learning_curve", "json_each", "json_tree"})


class QueryRefused(SeqdbError):
    """A statement that is not a read-only SELECT over the views."""

    exit_code = 2


class QueryFailed(SeqdbError):
    """A SELECT that DuckDB could not run (syntax, unknown column, ...)."""

    exit_code = 2


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _walk(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _table_functions(con: duckdb.DuckDBPyConnection, sql: str) -> set[str]:
    """Names of the table functions a SELECT calls (from DuckDB's own parse tree)."""
    # The text goes in as a quoted literal, not a bound parameter: binding a Python str makes
    # DuckDB import pandas (~0.5 s of every `seqdb sql`). Quotes are doubled, so it stays one literal.
    literal = "'" + sql.replace("'", "''") + "'"
    raw = con.execute(f"SELECT json_serialize_sql({literal}::VARCHAR)").fetchone()[0]
    tree = json.loads(raw)
    if tree.get("error"):
        raise QueryRefused(f"only SELECT queries are allowed: {tree.get('error_message', 'cannot parse')}")
    names = set()
    for node in _walk(tree):
        if node.get("type") == "TABLE_FUNCTION" and isinstance(node.get("function"), dict):
            names.add(str(node["function"].get("function_name", "")).lower())
    return names


def check_select(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise QueryRefused unless `sql` is exactly one SELECT using allowed table functions."""
    if not sql or not sql.strip():
        raise QueryRefused("empty query; give one SELECT statement over the views (see docs/views.md)")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryFailed(f"cannot parse query: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise QueryRefused(f"exactly one statement is allowed, found {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        name = str(kind).split(".")[-1]
        raise QueryRefused(f"refused a {name} statement: the views are read-only, only SELECT is allowed")
    bad = sorted(_table_functions(con, sql) - ALLOWED_TABLE_FUNCTIONS)
    if bad:
        allowed = ", ".join(sorted(ALLOWED_TABLE_FUNCTIONS))
        raise QueryRefused(f"table function {bad[0]}() is not allowed in seqdb queries; allowed: {allowed}")
