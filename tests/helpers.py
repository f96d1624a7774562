"""Helpers for tests: run the CLI in-process or as a subprocess and capture its output."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str, env: dict | None = None, cwd: str | None = None, timeout: float = 600) -> CliResult:
    """Run `python -m seqdb ARGS` in a subprocess (a real process: real exit code, real stderr)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("SEQDB_DEBUG", None) if "SEQDB_DEBUG" not in (env or {}) else None
    proc = subprocess.run(
        [sys.executable, "-m", "seqdb", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def run_cli_inprocess(*args: str) -> CliResult:
    """Run the CLI's `main()` in this process (fast; for many small invocations)."""
    from seqdb.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return CliResult(code, out.getvalue(), err.getvalue())


def assert_one_line_error(result: CliResult, *needles: str) -> None:
    assert result.code != 0, f"expected failure, got 0: {result.out}"
    lines = [line for line in result.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected a one-line error, got: {result.err!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
