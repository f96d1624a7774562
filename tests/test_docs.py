"""Every CLI command and option is documented in README.md or docs/."""

from __future__ import annotations

from pathlib import Path

import click
import typer

from seqdb.cli.main import app

ROOT = Path(__file__).resolve().parents[1]


def _docs_text() -> str:
    parts = [ROOT.joinpath("README.md").read_text(encoding="utf-8")]
    parts += [p.read_text(encoding="utf-8") for p in sorted(ROOT.joinpath("docs").rglob("*.md"))]
    return "\n".join(parts)


def _walk(cmd: click.Command, path: list[str]):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, [*path, name])


def test_every_command_and_option_is_documented():
    text = _docs_text()
    missing = []
    for path, cmd in _walk(typer.main.get_command(app), ["seqdb"]):
        command_line = " ".join(path)
        if len(path) > 1 and f"`{command_line}" not in text:
            missing.append(command_line)
        for param in cmd.params:
            if isinstance(param, click.Option):
                for opt in param.opts:
                    if opt.startswith("--") and f"{opt}" not in text:
                        missing.append(f"{command_line} {opt}")
    assert not missing, f"undocumented CLI commands/options: {missing}"
