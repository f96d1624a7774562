"""`seqdb scaling fit POINTS.csv`: CSV reading (one-line errors naming file, row, column) and the JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqdb.errors import ConfigError, DataError
from seqdb.scaling.points import Point, read_points_csv
from tests.helpers import assert_one_line_error, run_cli_inprocess

N6 = np.geomspace(1e5, 1e8, 6)


def write(tmp_path, text: str, name: str = "points.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_points_with_suffixes_groups_and_any_column_order(tmp_path):
    path = write(tmp_path, "loss,group,N\n2.5,a,500k\n2.4,a,500k\n2.0,b,2M\n1.8,c,1e7\n\n")
    assert read_points_csv(path) == [Point(5e5, 2.5, None, "a"), Point(5e5, 2.4, None, "a"), Point(2e6, 2.0, None, "b"),
                                     Point(1e7, 1.8, None, "c")]
    assert read_points_csv(write(tmp_path, "N,D,loss\n1e6,2e9,2.0\n", "d.csv")) == [Point(1e6, 2.0, 2e9, None)]


@pytest.mark.parametrize("text,needle", [
    ("N,los\n1,2\n", "unknown column(s) los"),
    ("N,group\n1,a\n", "missing column(s) loss"),
    ("N,loss\n1e6,two\n", "row 2, column loss: 'two' is not a number"),
    ("N,loss\n1e6,2.0\n-5,1.0\n", "row 3, column N: '-5' must be a positive"),
    ("N,loss\n1e6\n", "row 2 has 1 field(s), the header has 2"),
    ("", "empty file"),
])
def test_bad_csv_is_one_line_naming_file_row_and_column(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as exc:
        read_points_csv(path)
    assert needle in exc.value.message and str(path) in exc.value.message and "\n" not in exc.value.message
    with pytest.raises(ConfigError, match="no such file"):
        read_points_csv(tmp_path / "missing.csv")


def test_fit_cli_json_and_table(tmp_path):
    rng = np.random.default_rng(2)
    loss = (1.7 + 400 * N6**-0.34) * np.exp(rng.normal(0, 0.01, 6))
    path = write(tmp_path, "N,loss\n" + "".join(f"{n:.6g},{v:.10g}\n" for n, v in zip(N6, loss)))
    out = run_cli_inprocess("scaling", "fit", str(path), "--at", "2B", "--json")
    assert out.code == 0, out.err
    fit = json.loads(out.out)
    assert (fit["law"], fit["K"], fit["df"], fit["ci_method"]) == ("n", 6, 3, "wald_t") and fit["at"]["N"] == 2e9
    assert fit["ci95"]["alpha"][0] < fit["params"]["alpha"] < fit["ci95"]["alpha"][1]
    boot = json.loads(run_cli_inprocess("scaling", "fit", str(path), "--ci", "bootstrap", "--bootstrap", "20", "--seed", "3",
                                        "--objective", "huber", "--json").out)
    assert (boot["ci_method"], boot["objective"]) == ("bootstrap", "huber")
    text = run_cli_inprocess("scaling", "fit", str(path), "--at", "2B")
    assert text.code == 0 and "Wald-t, 3 df" in text.out and "alpha =" in text.out and "(extrapolated)" in text.out


def test_fit_cli_flags_turn_the_extrapolation_off_unless_forced(tmp_path):
    path = write(tmp_path, "N,loss\n" + "".join(f"{n:.6g},0.668\n" for n in N6))
    off = json.loads(run_cli_inprocess("scaling", "fit", str(path), "--at", "2B", "--json").out)
    assert any(f.startswith("not_decreasing") for f in off["flags"]) and off["at"]["loss"] is None
    text = run_cli_inprocess("scaling", "fit", str(path), "--at", "2B")
    assert "flag not_decreasing" in text.out and "extrapolation off: not_decreasing" in text.out
    forced = json.loads(run_cli_inprocess("scaling", "fit", str(path), "--at", "2B", "--force", "--json").out)
    assert forced["at"]["loss"] == pytest.approx(0.668, rel=1e-3)
    two = write(tmp_path, "N,loss\n1e6,2\n1e7,1.5\n", "two.csv")
    assert_one_line_error(run_cli_inprocess("scaling", "fit", str(two)), "at least 3 distinct budgets")
    assert_one_line_error(run_cli_inprocess("scaling", "fit", str(path), "--ci", "exact"), "--ci", "wald, bootstrap")
    assert_one_line_error(run_cli_inprocess("scaling", "fit", str(path), "--at-compute", "1e20"), "--at-compute")
    assert_one_line_error(run_cli_inprocess("scaling", "fit", str(tmp_path / "none.csv")), "none.csv", "no such file")
