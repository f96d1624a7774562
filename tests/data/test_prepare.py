"""`seqdb data prepare` against a real database (SQLite and Postgres): registration, cache
hits that do no work, new hashes on any change, the memory-mapped view, and bad input that
gives one line and leaves nothing behind."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sqlalchemy import func, select

from seqdb.data import prepare as prep
from seqdb.data.prepare import prepare_dataset
from seqdb.data.prepared import open_prepared
from seqdb.db.engine import session_scope
from seqdb.db.models import Dataset
from seqdb.errors import DataError
from tests.data.synth import long_frame
from tests.helpers import assert_one_line_error, run_cli_inprocess


def _datasets(engine) -> int:
    with session_scope(engine, write=False) as s:
        return s.scalar(select(func.count()).select_from(Dataset))


def test_prepare_registers_then_cache_hit_does_no_work(project, engine, setup, monkeypatch):
    name = setup()
    row = prepare_dataset(engine, project, name)
    assert row.n_rows == 180 and row.n_sequences == 3 and len(row.content_hash) == 64
    assert set(row.splits) >= {"train", "validation", "test", "gap", "mode"}
    assert row.statistics["real"]["x"]["n"] == row.splits["train"]["rows"]
    assert row.id_maps == {"c": {"a": 2, "b": 3, "c": 4, "d": 5}}
    data = open_prepared(row.path)
    w = data.windows("train", 3)
    assert isinstance(w.real, np.memmap) and w.real.shape == (180, 3) and w.cat.shape == (180, 1)
    real, cat, tgt = w.batch(np.array([0, len(w) - 1]))
    assert real.shape == (2, 8, 3) and cat.shape == (2, 8, 1) and tgt["x"].shape == (2, 8)
    spec = data.data_spec(3, input_columns=["c", "y"], embedding_dims={"c": 4})
    assert [(i.name, i.kind, i.vocab_size, i.embedding_dim) for i in spec.inputs] == [("y", "real", 0, None), ("c", "categorical", 6, 4)]
    assert spec.targets[0].kind == "categorical" and spec.targets[0].n_classes == 2 and spec.dataset_hash == row.content_hash

    def no_work(*_a, **_k):  # fault injection: a cache hit must not read the data again
        raise AssertionError("cache hit did work")

    monkeypatch.setattr(prep, "read_long", no_work)
    again = prepare_dataset(engine, project, name)
    assert again.dataset_id == row.dataset_id and _datasets(engine) == 1


def test_any_change_gives_a_new_hash_and_same_settings_share(project, engine, setup):
    first = prepare_dataset(engine, project, setup())
    other_ctx = prepare_dataset(engine, project, setup(name="synth-ctx", context_length=6))
    same = prepare_dataset(engine, project, setup(name="synth-same"))
    assert other_ctx.content_hash != first.content_hash
    assert same.dataset_id == first.dataset_id  # same file and settings: one dataset
    frame = long_frame().with_columns(pl.when(pl.col("itemPosition") == 110).then(9.0).otherwise(pl.col("x")).alias("x"))
    frame.write_csv(project.root / "data" / "long.csv")
    changed = prepare_dataset(engine, project, "synth")
    assert changed.content_hash not in (first.content_hash, other_ctx.content_hash) and _datasets(engine) == 3


def test_transform_raw_matches_the_prepared_arrays(project, engine, setup):
    frame = long_frame(seed=3)
    row = prepare_dataset(engine, project, setup(frame=frame.reverse()))  # order does not matter
    data = open_prepared(row.path)
    real, cat, seq_ids, positions = data.transform_raw(frame.with_columns(pl.col("c").replace("d", "new")))
    assert np.allclose(real, data.array("real"), atol=1e-6)
    stored = np.asarray(data.array("cat"))
    assert (cat[stored != 5] == stored[stored != 5]).all() and (cat[stored == 5] == 1).all()
    assert seq_ids == [10, 11, 12] and (positions == data.array("positions")).all()


def test_cli_prepare(project, engine, setup):
    name = setup()
    res = run_cli_inprocess("--project", str(project.root), "data", "prepare", "--experiment", name, "--no-progress")
    assert res.code == 0, res.err
    assert "180 rows, 3 sequences" in res.out and "train" in res.out


def test_sp500_writer(tmp_path):
    out = tmp_path / "sp.csv"
    res = run_cli_inprocess("data", "sp500", str(out), "--yearly")
    assert res.code == 0, res.err
    sp = pl.read_csv(out)
    assert sp.height == 5030 and sp["sequenceId"].n_unique() == 20
    assert set(sp.columns) >= {"sequenceId", "itemPosition", "log_return", "log_range", "log_volume_change", "weekday", "month", "move"}
    assert sp["move"].n_unique() == 5 and sp["weekday"].n_unique() == 5


# ---- bad input: one line naming file/column/row, exit != 0, nothing registered or written ------
CSV_HEADER = b"sequenceId,itemPosition,x,y,z,c\n"


def _rows(n: int = 40, seq: int = 1) -> bytes:
    return b"".join(b"%d,%d,%.3f,%.3f,0.5,%s\n" % (seq, i, np.sin(i), np.cos(i), b"ab"[i % 2 : i % 2 + 1]) for i in range(n))


BAD_FILES = {
    "misspelled column": (b"sequenceId,itemPosition,x,yy,z,c\n" + _rows()[32:], ["column 'y' (data.columns.y) not in the file (did you mean 'yy'?)"]),
    "duplicate position": (CSV_HEADER + _rows() + b"1,5,0.1,0.2,0.5,a\n", ["sequence 1 has position 5 twice (lines 7 and 42)"]),
    "nan in real": (CSV_HEADER + _rows() + b"1,40,NaN,0.2,0.5,a\n", ["line 42: column 'x' is nan", "data.nan_policy"]),
    "inf in real": (CSV_HEADER + _rows() + b"1,40,0.1,inf,0.5,a\n", ["line 42: column 'y' is inf"]),
    "empty real": (CSV_HEADER + _rows() + b"1,40,0.1,,0.5,a\n", ["line 42: column 'y' is empty"]),
    "text in real": (CSV_HEADER + _rows() + b"1,40,0.1,high,0.5,a\n", ["line 42: column 'y' holds 'high'", "a number"]),
    "too short": (CSV_HEADER + _rows(10), ["all 1 sequences are shorter than context_length + max horizon (11 rows; longest 10)"]),
    "single category": (CSV_HEADER + _rows().replace(b",b\n", b",a\n"), ["categorical column 'c' has 1 distinct value(s)"]),
    "not utf-8": (CSV_HEADER + _rows() + b"1,40,0.1,0.2,0.5,caf\xe9\n", ["line 42: byte 0xe9 is not UTF-8"]),
    "truncated": (CSV_HEADER + _rows() + b"1,40,0.1", ["last line has 3 of 6 fields", "truncated"]),
    "empty split": (CSV_HEADER + _rows(30), ["split leaves validation empty (6 rows, 0 windows of context_length 8)", "a larger split.validation"]),
    "null position": (CSV_HEADER + _rows() + b"1,,0.1,0.2,0.5,a\n", ["line 42: column 'itemPosition' (data.position_column) is empty"]),
}


def _nothing_left(project, engine) -> None:
    assert _datasets(engine) == 0
    folder = project.artifacts_root / "datasets"
    assert not folder.exists() or not list(folder.iterdir()), list(folder.iterdir())


def test_bad_csv_is_one_line_and_leaves_nothing(project, engine, setup):
    """Every case in BAD_FILES (one database per backend, for speed)."""
    name = setup()
    for case, (content, needles) in BAD_FILES.items():
        (project.root / "data" / "long.csv").write_bytes(content)
        res = run_cli_inprocess("--project", str(project.root), "data", "prepare", "--experiment", name)
        assert_one_line_error(res, "long.csv", *needles)
        assert res.code == DataError.exit_code, case
        _nothing_left(project, engine)


PARQUET_CASES = {
    "string real": ["column 'y' has parquet type String; allowed: a numeric type"],
    "float position": ["column 'itemPosition' (data.position_column) has parquet type Float64; allowed: an integer type"],
    "truncated": ["cannot read", "truncated or corrupt", "allowed: a complete parquet file"],
    "missing file": ["data file not found"],
}


def test_bad_parquet_is_one_line_and_leaves_nothing(project, engine, setup):
    name = setup(filename="long.parquet")
    path = project.root / "data" / "long.parquet"
    for case, needles in PARQUET_CASES.items():
        frame = long_frame()
        if case == "string real":
            frame.with_columns(pl.col("y").cast(pl.Utf8)).write_parquet(path)
        elif case == "float position":
            frame.with_columns(pl.col("itemPosition").cast(pl.Float64)).write_parquet(path)
        elif case == "truncated":
            frame.write_parquet(path)
            path.write_bytes(path.read_bytes()[:-200])
        else:
            path.unlink()
        res = run_cli_inprocess("--project", str(project.root), "data", "prepare", "--experiment", name)
        assert_one_line_error(res, "long.parquet", *needles)
        _nothing_left(project, engine)


def test_concurrent_prepares_make_one_folder_and_one_row(project, engine, setup):
    """Two preparations of the same dataset at once (as two workers would) agree on one."""
    import threading

    name = setup()
    rows, errors = [], []

    def run():
        try:
            rows.append(prepare_dataset(engine, project, name))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert rows[0].dataset_id == rows[1].dataset_id and _datasets(engine) == 1
    folders = list((project.artifacts_root / "datasets").iterdir())
    assert [f.name for f in folders] == [rows[0].content_hash[:16]]
    assert open_prepared(rows[0].path).windows("test", 1).starts.size > 0
