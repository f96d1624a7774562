"""Every command's `--help` ends with one `Example:` line: the command itself, with options
that the command really has (so an example cannot drift from the code)."""

from __future__ import annotations

import re
import shlex

import typer

from seqdb.cli.main import app
from tests.helpers import run_cli_inprocess
from tests.test_docs import _walk


def _example(cmd) -> str | None:  # noqa: ANN001
    found = re.findall(r"^\s*Example:\s*(?:[A-Z_]+=\S+\s+)*(seqdb .+)$", cmd.help or "", flags=re.M)  # env settings may lead
    return found[0].strip() if len(found) == 1 else None


def test_every_command_has_one_example_of_itself_with_real_options():
    bad = []
    for path, cmd in _walk(typer.main.get_command(app), ["seqdb"]):
        line, example = " ".join(path), _example(cmd)
        if example is None:
            bad.append(f"{line}: no single 'Example: seqdb ...' line in its docstring")
            continue
        if shlex.split(example)[: len(path)] != path:
            bad.append(f"{line}: example runs another command: {example}")
            continue
        allowed = {o for c in (cmd, typer.main.get_command(app)) for p in c.params for o in [*p.opts, *p.secondary_opts]}
        unknown = [o for o in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", example) if o not in allowed]
        if unknown:
            bad.append(f"{line}: example uses options it does not have: {unknown}")
            continue
        try:  # the command's own parser accepts it: values of the right type, required options given
            args = shlex.split(example)[len(path):]
            cmd.make_context(line, args).close()
        except Exception as exc:  # noqa: BLE001 - click's usage errors
            bad.append(f"{line}: the parser refuses its example {example!r}: {exc}")
    assert not bad, "\n".join(bad)


def test_the_example_shows_in_help():
    res = run_cli_inprocess("run", "--help")
    assert res.code == 0 and "Example: seqdb run --experiment" in res.out
