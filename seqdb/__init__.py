"""seqdb: a database-centric experiment tracker and trial runner for scaling studies.

From a notebook: `db = seqdb.open("myproj")`, then `db.scaling()`, `db.trials()`,
`db.curve(trial_id)` and `db.sql("SELECT ...")` (see docs/python.md).
"""

__version__ = "0.1.0"


def open(path_or_url, *, frame: str = "polars"):  # noqa: A001, ANN001, ANN201 - `seqdb.open` on purpose
    """The database of a project folder, a SQLite file or a database URL, read-only, with
    `sql()`, `scaling()`, `trials()` and `curve(trial_id)` returning polars (or, with
    `frame="pandas"`, pandas) data frames. Imported on first call: `import seqdb` stays cheap."""
    from seqdb.app.notebook import open_notebook

    return open_notebook(path_or_url, frame=frame)
