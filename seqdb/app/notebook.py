"""`seqdb.open(path_or_url)`: the seqdb database from a notebook, as data frames.

    db = seqdb.open("myproj")                   # a project folder, a .db file or a database URL
    db.scaling(experiment="sp500")              # best validation loss per (horizon, budget)
    db.trials(state="completed")                # one row per trial, config flattened
    db.curve(42)                                # step, epoch, one column per metric
    db.sql("SELECT * FROM study_progress")      # any read-only SELECT over the views

Every query goes through the same read-only DuckDB views as `seqdb sql` and the dashboard
(docs/views.md), over the live database: a cell run again sees the rows the workers have
committed since. Frames are polars by default, pandas with `frame="pandas"`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from seqdb.errors import ConfigError, ProjectError

FRAMES = ("polars", "pandas")


def database_url(path_or_url: str | Path) -> str:
    """A database URL from a URL, a project folder (its seqdb.yaml) or a SQLite file."""
    from seqdb.project import PROJECT_FILE, load_project

    text = str(path_or_url)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / PROJECT_FILE).is_file():
            raise ProjectError(f"{path}: not a seqdb project (no {PROJECT_FILE}); give a project folder, a .db file or a database URL")
        return load_project(project=path).database_url
    if path.is_file():
        return f"sqlite:///{path.resolve()}"
    raise ProjectError(f"{path}: no such project folder or database file; give a project folder, a .db file or a database URL")


class SeqdbNotebook:
    """One read-only view connection; `close()` it (or use `with seqdb.open(...) as db:`)."""

    def __init__(self, url: str, *, frame: str = "polars"):
        from seqdb.db.engine import get_engine
        from seqdb.db.migrate import require_head
        from seqdb.views import connect

        if frame not in FRAMES:
            raise ConfigError(f"frame={frame!r} is not a frame kind; allowed: {', '.join(FRAMES)}")
        require_head(get_engine(url))  # an old schema would fail in the views with a less clear message
        self.url, self.frame = url, frame
        self._vc = connect(url)

    # -- any query ---------------------------------------------------------------------------
    def sql(self, query: str, params: Optional[Sequence[Any]] = None):  # noqa: ANN201
        """One read-only SELECT over the views (`?` placeholders take `params`)."""
        from seqdb.views import sql

        table = sql(self._vc, query, params)
        if self.frame == "pandas":
            return table.to_pandas()
        import polars as pl

        return pl.from_arrow(table)

    # -- the common questions ----------------------------------------------------------------
    def scaling(self, experiment: Optional[str] = None, horizon: Optional[int] = None):  # noqa: ANN201
        """The `scaling_points` view: per (experiment, horizon, budget) the best trial's exact
        parameter count and validation loss, with the effort spent; ordered for plotting."""
        where, params = _where({"experiment": experiment, "horizon": horizon})
        return self.sql(f"SELECT * FROM scaling_points{where} ORDER BY experiment, horizon, param_count", params)

    def trials(self, experiment: Optional[str] = None, study: Optional[str] = None, state: Optional[str] = None):  # noqa: ANN201
        """The `trials` view (one row per trial, its config flattened), filtered."""
        where, params = _where({"experiment": experiment, "study": study, "state": state})
        return self.sql(f"SELECT * FROM trials{where} ORDER BY trial_id", params)

    def curve(self, trial_id: int, metrics: Optional[Sequence[str]] = None):  # noqa: ANN201
        """One trial's learning curve, wide: `step`, `epoch` and one column per metric
        (train_loss, val_loss, lr, tokens_per_s ...; NULL where a metric was not logged)."""
        names = list(metrics) if metrics else [r[0] for r in self._rows(
            "SELECT DISTINCT metric FROM learning_curve(?) ORDER BY metric", [int(trial_id)])]
        if not names:
            from seqdb.errors import NotFoundError

            raise NotFoundError(f"trial {trial_id} has no metric rows (no such trial, or it has not reported yet)")
        cols = ", ".join(f"max(value) FILTER (WHERE metric = ?) AS {_quote(n)}" for n in names)
        return self.sql(f"SELECT step, max(epoch) AS epoch, {cols} FROM learning_curve(?) GROUP BY step ORDER BY step",
                        [*names, int(trial_id)])

    def views(self) -> list[str]:
        """The names of the views (docs/views.md describes each)."""
        from seqdb.views import VIEW_NAMES

        return sorted(VIEW_NAMES)

    def _rows(self, query: str, params: Optional[Sequence[Any]]) -> list[tuple]:
        from seqdb.views.query import sql_rows

        return sql_rows(self._vc, query, params)[1]

    # -- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        self._vc.close()

    def __enter__(self) -> "SeqdbNotebook":
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.close()

    def __repr__(self) -> str:
        from seqdb.db.engine import safe_url

        return f"seqdb.open({safe_url(self.url)!r}): sql(), scaling(), trials(), curve(trial_id), views()"


def _where(filters: dict[str, Any]) -> tuple[str, list]:
    given = {k: v for k, v in filters.items() if v is not None}
    if not given:
        return "", []
    return " WHERE " + " AND ".join(f"{k} = ?" for k in given), list(given.values())


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def open_notebook(path_or_url: str | Path, *, frame: str = "polars") -> SeqdbNotebook:
    return SeqdbNotebook(database_url(path_or_url), frame=frame)
