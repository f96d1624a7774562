"""Every CLI command has its own entry in docs/cli.md, and that entry names each of the
command's options (not merely some page of the docs)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from seqdb.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = ROOT / "docs" / "cli.md"


def _walk(cmd, path: list[str]):  # noqa: ANN001 - typer vendors its own click: duck-typed
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, [*path, name])
    else:
        yield path, cmd


def command_entries(text: str) -> dict[str, str]:
    """`seqdb X Y` -> the text of its bullet(s) in docs/cli.md (a bullet runs to the next
    bullet or heading)."""
    entries: dict[str, str] = {}
    for item in re.split(r"\n(?=- |#)", text):
        m = re.match(r"- `(seqdb(?: [a-z][a-z0-9-]*)+)", item)
        if m:
            words = m.group(1).split()
            for n in range(2, len(words) + 1):  # `seqdb db upgrade [--revision REV]` names `seqdb db upgrade`
                key = " ".join(words[:n])
                entries[key] = entries.get(key, "") + "\n" + item
    return entries


def _options(cmd) -> list[str]:  # noqa: ANN001
    return [o for p in cmd.params if p.param_type_name == "option" for o in p.opts if o.startswith("--") and o != "--help"]


def test_every_command_has_an_entry_naming_each_of_its_options():
    text = CLI_DOC.read_text(encoding="utf-8")
    entries = command_entries(text)
    root = typer.main.get_command(app)
    missing = []
    for path, cmd in _walk(root, ["seqdb"]):
        line = " ".join(path)
        entry = entries.get(line)
        if entry is None:
            missing.append(f"{line} (no entry)")
            continue
        missing += [f"{line} {opt}" for opt in _options(cmd) if not re.search(re.escape(opt) + r"(?![a-z-])", entry)]
    header = text.split("\n## ", 1)[0]  # the global options are documented once, at the top
    missing += [f"seqdb {opt}" for opt in _options(root) if opt not in header]
    assert not missing, f"docs/cli.md lacks: {missing}"
    assert len(entries) > 20  # the walk really reached the commands


def test_the_docs_check_reads_sections_not_the_whole_page():
    """An option named only under another command does not count."""
    doc = "- `seqdb run --budget B` — runs.\n- `seqdb stop [--all]` — stops.\n"
    entries = command_entries(doc)
    assert "--all" not in entries["seqdb run"] and "--all" in entries["seqdb stop"]
