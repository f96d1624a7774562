"""The CLI spine: init, db upgrade/current, status, --version, and its one-line errors."""

from __future__ import annotations

import os
import stat

import pytest

from seqdb import __version__
from tests.helpers import assert_one_line_error, run_cli, run_cli_inprocess


def test_version():
    res = run_cli("--version")
    assert res.code == 0 and __version__ in res.out


def test_init_then_status_and_current(tmp_path):
    proj = tmp_path / "demo"
    res = run_cli("init", str(proj))
    assert res.code == 0, res.err
    assert {p.name for p in proj.iterdir()} >= {"configs", "data", "artifacts", "seqdb.yaml", "seqdb.db"}
    res = run_cli("status", cwd=str(proj))
    assert res.code == 0, res.err
    assert "0 studies" in res.out
    res = run_cli("db", "current", cwd=str(proj))
    assert res.code == 0 and "up to date" in res.out
    # re-running init on an existing project is harmless
    assert run_cli("init", str(proj)).code == 0


def test_init_then_postgres_upgrade(tmp_path, pg_url):
    proj = tmp_path / "demo"
    assert run_cli("init", str(proj)).code == 0
    res = run_cli("--db", pg_url, "db", "upgrade", cwd=str(proj))
    assert res.code == 0, res.err
    res = run_cli("--db", pg_url, "status", cwd=str(proj))
    assert res.code == 0, res.err


def test_env_url_overrides_project_file(tmp_path, pg_url):
    proj = tmp_path / "demo"
    assert run_cli("init", str(proj)).code == 0
    res = run_cli("db", "current", cwd=str(proj), env={"SEQDB_DATABASE_URL": pg_url})
    assert res.code == 0 and "current: none" not in res.out


@pytest.mark.parametrize(
    "url, needle",
    [
        ("not a url", "malformed database URL"),
        ("mysql://root@localhost/x", "unsupported database backend"),
        ("sqlite://", "names no file"),
    ],
)
def test_malformed_url(tmp_path, url, needle):
    res = run_cli_inprocess("--db", url, "status")
    assert_one_line_error(res, needle)


def test_unreachable_postgres(tmp_path):
    res = run_cli_inprocess("--db", "postgresql://postgres@127.0.0.1:1/nowhere", "status")
    assert_one_line_error(res, "cannot connect", "127.0.0.1:1")


def test_init_into_non_project_folder_refused(tmp_path):
    target = tmp_path / "stuff"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    res = run_cli("init", str(target))
    assert_one_line_error(res, "not empty", str(target))
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_unknown_revision_refused(tmp_path):
    import sqlalchemy as sa

    proj = tmp_path / "demo"
    assert run_cli("init", str(proj)).code == 0
    eng = sa.create_engine(f"sqlite:///{proj / 'seqdb.db'}")
    with eng.begin() as conn:
        conn.execute(sa.text("UPDATE seqdb_alembic_version SET version_num = 'abcdef123456'"))
    eng.dispose()
    res = run_cli("status", cwd=str(proj))
    assert_one_line_error(res, "abcdef123456", "unknown")


def test_database_without_schema_refused(tmp_path):
    res = run_cli_inprocess("--db", f"sqlite:///{tmp_path / 'empty.db'}", "status")
    assert_one_line_error(res, "seqdb db upgrade")


def test_unwritable_path_refused(tmp_path):
    if os.geteuid() == 0:
        target = "/sys/seqdb_cannot_write_here"  # not writable even by root
    else:
        parent = tmp_path / "ro"
        parent.mkdir()
        parent.chmod(stat.S_IRUSR | stat.S_IXUSR)
        target = str(parent / "proj")
    res = run_cli("init", target)
    assert_one_line_error(res, "cannot write")
    assert not os.path.exists(target)


def test_path_that_is_a_file_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    res = run_cli_inprocess("init", str(target))
    assert_one_line_error(res, "not a folder")


def test_unwritable_database_location_leaves_nothing(tmp_path):
    # A database file that cannot be created (its folder does not exist) fails cleanly.
    proj = tmp_path / "demo"
    res = run_cli("--db", f"sqlite:///{tmp_path / 'missing' / 'x.db'}", "init", str(proj))
    assert_one_line_error(res)
    assert not proj.exists()


def test_debug_shows_traceback(tmp_path):
    res = run_cli("--db", "not a url", "status", env={"SEQDB_DEBUG": "1"})
    assert res.code != 0 and "Traceback" in res.err
