"""A small real project (S&P 500 demo data, one registered experiment, one study with a
pending trial, experiments whose data files are bad) and a snapshot of it: the row count of
every table and every file with its sha256. A bad input must leave both exactly as they were."""

from __future__ import annotations

import copy
import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from tests.helpers import run_cli_inprocess

BAD_DATA = {  # experiment name -> (data file name, file bytes)
    "bad-missing-file": ("missing.csv", None),
    "bad-garbage-bytes": ("garbage.csv", b"\x00\xff\xfe not a csv \x00\x01"),
    "bad-no-columns": ("nocols.csv", b"sequenceId,itemPosition,other\n0,0,1\n0,1,2\n"),
    "bad-empty": ("empty.csv", b""),
    "bad-text-in-real": ("text.csv", b"sequenceId,itemPosition,log_return,log_range,log_volume_change,weekday\n" + b"".join(
        f"0,{i},abc,0.1,0.2,{i % 5}\n".encode() for i in range(200))),
    "bad-nan-real": ("nan.csv", b"sequenceId,itemPosition,log_return,log_range,log_volume_change,weekday\n" + b"".join(
        f"0,{i},{'nan' if i == 50 else 0.01},0.1,0.2,{i % 5}\n".encode() for i in range(200))),
}


def snapshot(root: Path) -> dict:
    """{"files": {relpath: sha256}, "rows": {table: count}} of a project. Not listed: -shm
    and an EMPTY -wal (SQLite readers of a WAL database open both; they hold no data)."""
    files = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.name.endswith("-shm") and not (p.name.endswith("-wal") and p.stat().st_size == 0):
            files[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    db = root / "seqdb.db"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        rows = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()
    return {"files": files, "rows": rows}


def _checkpoint_wal(db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _bad_experiment(base: dict, name: str, data_file: str) -> dict:
    exp = copy.deepcopy(base)
    exp["name"], exp["data"]["path"] = name, f"data/{data_file}"
    return exp


@pytest.fixture(scope="session")
def corpus_project(tmp_path_factory) -> Path:
    """The project every corpus case runs against (made once; cases must not change it)."""
    from seqdb.app.demo import demo_experiment, setup_project
    from seqdb.db.engine import dispose_engines
    from seqdb.experiment.registry import register_experiment

    root = tmp_path_factory.mktemp("corpus") / "proj"
    exp = demo_experiment(quick=True)
    _, engine, _ = setup_project(root, True, experiment=exp)
    for name, (file_name, content) in BAD_DATA.items():
        if content is not None:
            (root / "data" / file_name).write_bytes(content)
        cfg = root / "configs" / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump(_bad_experiment(exp, name, file_name), sort_keys=False))
        register_experiment(engine, cfg)
    engine.dispose()
    res = run_cli_inprocess("--project", str(root), "study", "create", "--experiment", exp["name"], "--budget", "10k", "--horizon", "1")
    assert res.code == 0, res.err
    dispose_engines()
    _checkpoint_wal(root / "seqdb.db")
    return root


@pytest.fixture
def scratch(tmp_path) -> Path:
    """A folder outside the project for the bad input files of one case."""
    return tmp_path


@pytest.fixture(scope="session")
def old_revision_db(tmp_path_factory) -> Path:
    src = Path(__file__).resolve().parents[1] / "db" / "fixtures" / "74e1974d8ca3.db"
    dst = tmp_path_factory.mktemp("oldrev") / "old.db"
    shutil.copy(src, dst)
    return dst
