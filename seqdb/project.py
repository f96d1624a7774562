"""A seqdb project: a folder with `seqdb.yaml`, `configs/`, `data/`, `artifacts/` and a database.

The database URL is chosen, in order, by `--db`, the SEQDB_DATABASE_URL environment variable,
or the project's `seqdb.yaml`. A relative SQLite path in `seqdb.yaml` is relative to the
project folder. Artifacts live under `artifacts_root` (SEQDB_ARTIFACTS overrides it), which may
be shared storage.

No password is ever written to `seqdb.yaml`: `seqdb init --db postgresql://user:PASSWORD@...`
stores the password in the project's `.pgpass` (mode 0600, the libpq format
`host:port:db:user:password`) and writes the URL without it, pointing at that file with
`?passfile=.pgpass` (resolved against the project folder). libpq's own PGPASSWORD and
~/.pgpass work as usual.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from seqdb.errors import ProjectError

PROJECT_FILE = "seqdb.yaml"
PASS_FILE = ".pgpass"
PROJECT_DIRS = ("configs", "data", "artifacts")
DEFAULT_DB_FILE = "seqdb.db"
ENV_URL = "SEQDB_DATABASE_URL"
ENV_PROJECT = "SEQDB_PROJECT"
ENV_ARTIFACTS = "SEQDB_ARTIFACTS"


@dataclass(frozen=True)
class Project:
    root: Path
    database_url: str
    artifacts_root: Path

    @property
    def configs_dir(self) -> Path:
        return self.root / "configs"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"


def find_project_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above `start` that holds seqdb.yaml."""
    env = os.environ.get(ENV_PROJECT)
    if env and start is None:
        start = Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    return None


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve().as_posix()}"


def _read_project_file(root: Path) -> dict:
    path = root / PROJECT_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ProjectError(f"{path}: cannot read project file: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ProjectError(f"{path}: expected a mapping with `database` and `artifacts_root`, found {type(data).__name__}")
    return data


def _resolve_db(root: Path, value: str) -> str:
    if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        rel = value[len("sqlite:///") :]
        return sqlite_url(root / rel)
    return _resolve_passfile(root, value)


def _resolve_passfile(root: Path, value: str) -> str:
    """A relative `?passfile=` in seqdb.yaml is relative to the project folder."""
    from sqlalchemy.engine import make_url

    if "passfile=" not in value:
        return value
    url = make_url(value)
    passfile = Path(str(url.query.get("passfile", "")))
    if not passfile.is_absolute():
        url = url.update_query_dict({"passfile": str((root / passfile).resolve())})
    return url.render_as_string(hide_password=False)


def _pgpass_field(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace(":", "\\:")


def database_setting(root: Path, database: str) -> str:
    """The `database:` value for seqdb.yaml. A Postgres password moves to root/.pgpass
    (0600) and the URL refers to it; the password itself is never in the returned text."""
    from sqlalchemy.engine import URL, make_url

    from seqdb.db.engine import normalize_url

    url = normalize_url(database)
    if url.password is None:
        return database
    line = ":".join(_pgpass_field(v) for v in (url.host or "localhost", url.port or 5432, url.database or "*", url.username or "*", url.password))
    passfile = root / PASS_FILE
    fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(line + "\n")
    os.chmod(passfile, 0o600)
    u = make_url(database)
    bare = URL.create(u.drivername, u.username, None, u.host, u.port, u.database, {**u.query, "passfile": PASS_FILE})
    return bare.render_as_string(hide_password=False)


def load_project(db: str | None = None, project: Path | None = None) -> Project:
    """Resolve the project folder and the database URL (`--db` > env > seqdb.yaml)."""
    root = find_project_root(project) if project is not None else find_project_root()
    if project is not None and root is None:
        raise ProjectError(f"{project}: not a seqdb project (no {PROJECT_FILE}); run `seqdb init {project}`")
    settings = _read_project_file(root) if root else {}
    url = db or os.environ.get(ENV_URL) or (settings.get("database") and _resolve_db(root, str(settings["database"])))
    if not url:
        raise ProjectError(
            f"no database: pass --db URL, set {ENV_URL}, or run inside a project made by `seqdb init PATH`"
        )
    base = root or Path.cwd()
    artifacts = os.environ.get(ENV_ARTIFACTS) or settings.get("artifacts_root") or "artifacts"
    artifacts_root = Path(artifacts)
    if not artifacts_root.is_absolute():
        artifacts_root = (base / artifacts_root).resolve()
    return Project(root=base.resolve(), database_url=url, artifacts_root=artifacts_root)


def protected_paths(project: Project) -> tuple[list[Path], list[Path]]:
    """(files, folders) no command may write an output into: the SQLite database with its
    -wal/-shm/-journal files, seqdb.yaml, .pgpass, and the artifacts root."""
    files = [project.root / PROJECT_FILE, project.root / PASS_FILE]
    db_file = _sqlite_file(project.database_url)
    if db_file is not None:
        files += [Path(f"{db_file}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]
    return files, [project.artifacts_root]


def project_file_text(database: str) -> str:
    return (
        "# seqdb project settings\n"
        "# database: a SQLite path relative to this folder, or postgresql://user@host:5432/db\n"
        f"database: {database}\n"
        "# artifacts_root: where prepared data, checkpoints and exports go (may be shared storage)\n"
        "artifacts_root: artifacts\n"
    )


def init_project(path: Path, database: str | None = None) -> Project:
    """Make a project folder (configs/, data/, artifacts/, seqdb.yaml) and a migrated database.

    Refuses a non-empty folder that is not already a seqdb project. On any failure, whatever
    this call created is removed again, so nothing half-made is left behind.
    """
    from seqdb.db.engine import create_engine_for
    from seqdb.db.migrate import upgrade

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ProjectError(f"{path}: exists and is not a folder")
    existing = path.is_dir() and any(path.iterdir())
    if existing and not (path / PROJECT_FILE).is_file():
        raise ProjectError(f"{path}: folder is not empty and is not a seqdb project (no {PROJECT_FILE}); choose an empty or new folder")
    created: list[Path] = []
    try:
        if not path.exists():
            path.mkdir(parents=True)
            created.append(path)
        for name in PROJECT_DIRS:
            sub = path / name
            if not sub.exists():
                sub.mkdir()
                created.append(sub)
        project_file = path / PROJECT_FILE
        if not project_file.exists():
            if database and not (path / PASS_FILE).exists():
                created.append(path / PASS_FILE)
            db_setting = database_setting(path, database) if database else f"sqlite:///{DEFAULT_DB_FILE}"
            project_file.write_text(project_file_text(db_setting), encoding="utf-8")
            created.append(project_file)
        project = load_project(db=database, project=path)
        db_file = _sqlite_file(project.database_url)
        if db_file is not None and not db_file.exists():
            created += [db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")]
        engine = create_engine_for(project.database_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        return project
    except PermissionError as exc:
        _remove(created)
        raise ProjectError(f"{exc.filename or path}: cannot write here ({exc.strerror}); choose a writable folder") from None
    except OSError as exc:
        _remove(created)
        raise ProjectError(f"{exc.filename or path}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(created)
        raise


def _remove(paths: list[Path]) -> None:
    import shutil

    for p in reversed(paths):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _sqlite_file(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    return None
