"""Data preparation: `seqdb data prepare` against `sequifier preprocess` on the same data.

    .venv/bin/python benchmarks/bench_prepare.py [--rows 1000000] [--sequences 1000] [--repeat 1]

Both tools get the same long-format CSV (sequenceId, itemPosition, 3 real columns, 1
categorical column with 20 values; `--sequences` sequences of equal length), the same
context window (64 rows), stride (64, non-overlapping, sequifier's default) and a
0.7 / 0.15 / 0.15 split within each sequence. Each runs as its own CLI process (seqdb: the
whole command including the database registration; sequifier: from the separate venv at
/work/peers/venv, see shared/PEERS.md). Wall time is measured around the process, peak RSS
as the largest sum of RSS over the process and all its children (sequifier forks workers),
sampled every 10 ms with psutil. A second seqdb row uses stride 1 (every window, the
training default), which sequifier is not asked to do.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
import psutil

ROOT = Path(__file__).resolve().parents[1]
SEQDB = [sys.executable, "-m", "seqdb"]
PEER_BIN = Path(os.environ.get("SEQUIFIER_BIN", "/work/peers/venv/bin/sequifier"))
CONTEXT, STRIDE = 64, 64


def make_data(path: Path, rows: int, sequences: int, seed: int = 0) -> None:
    """Random-walk features, a 20-value category; rows split evenly over the sequences."""
    rng = np.random.default_rng(seed)
    per = rows // sequences
    frame = pl.DataFrame(
        {
            "sequenceId": np.repeat(np.arange(sequences), per),
            "itemPosition": np.tile(np.arange(per), sequences),
            "x1": rng.normal(size=per * sequences).cumsum() / 100,
            "x2": rng.normal(size=per * sequences),
            "x3": rng.uniform(size=per * sequences),
            "cat": np.char.add("v", rng.integers(0, 20, size=per * sequences).astype(str)),
        }
    )
    frame.write_csv(path)


def measure(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float, int, str]:
    """(wall seconds, peak tree RSS in MiB, exit code, stderr tail) of one process tree."""
    started = time.perf_counter()
    proc = psutil.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc))
        time.sleep(0.01)
    wall = time.perf_counter() - started
    _, err = proc.communicate()
    return wall, peak / 2**20, proc.returncode, err.decode(errors="replace")[-800:]


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def seqdb_project(work: Path, data: Path, stride: int, name: str) -> Path:
    proj = work / f"seqdb-{name}"
    subprocess.run([*SEQDB, "init", str(proj)], check=True, capture_output=True)
    (proj / "configs" / "bench.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: {name}
            data:
              path: {data}
              columns: {{x1: real, x2: real, x3: real, cat: categorical}}
              stride: {stride}
              eval_stride: {STRIDE}
            target: {{column: cat, task: next_category}}
            context_length: {CONTEXT}
            horizons: [1]
            split: {{validation: 0.15, test: 0.15, gap: 0}}
            budgets: [100k]
            """
        )
    )
    subprocess.run([*SEQDB, "experiment", "add", "configs/bench.yaml"], cwd=proj, check=True, capture_output=True)
    return proj


def sequifier_project(work: Path, data: Path) -> Path:
    proj = work / "sequifier"
    (proj / "configs").mkdir(parents=True)
    (proj / "configs" / "preprocess.yaml").write_text(
        textwrap.dedent(
            f"""\
            project_root: .
            preprocessing_data_path: {data}
            read_format: csv
            write_format: parquet
            selected_columns: [x1, x2, x3, cat]
            split_ratios: [0.7, 0.15, 0.15]
            split_method: within_sequence
            window_length: {CONTEXT}
            max_target_offset: 1
            window_stride: {STRIDE}
            max_rows: null
            seed: 1010
            """
        )
    )
    return proj


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--sequences", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool (the best wall time is kept)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    try:
        data = work / "long.csv"
        make_data(data, args.rows, args.sequences)
        print(f"data: {args.rows:,} rows, {args.sequences} sequences, {data.stat().st_size / 2**20:.1f} MiB CSV; context {CONTEXT}, stride {STRIDE}")
        results = []
        for label, stride in ((f"seqdb data prepare (stride {STRIDE})", STRIDE), ("seqdb data prepare (stride 1, all windows)", 1)):
            runs = []
            for i in range(args.repeat):
                proj = seqdb_project(work, data, stride, f"bench-s{stride}-{i}")
                runs.append(measure([*SEQDB, "data", "prepare", "--experiment", f"bench-s{stride}-{i}", "--no-progress"], proj))
            results.append((label, runs))
        if PEER_BIN.exists():
            runs = []
            for i in range(args.repeat):
                proj = sequifier_project(work / f"peer{i}", data)
                runs.append(measure([str(PEER_BIN), "preprocess", "--config-path", "configs/preprocess.yaml"], proj))
            results.append((f"sequifier preprocess (stride {STRIDE})", runs))
        else:
            print(f"peer not found at {PEER_BIN}; see shared/PEERS.md")
        report(results)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(results: list) -> None:
    rows = []
    for label, runs in results:
        bad = [r for r in runs if r[2] != 0]
        if bad:
            print(f"{label}: FAILED (exit {bad[0][2]}): {bad[0][3]}")
            continue
        rows.append((label, min(r[0] for r in runs), max(r[1] for r in runs)))
    peer = next((r for r in rows if r[0].startswith("sequifier")), None)
    print(f"\n| {'tool':<44} | {'wall s':>7} | {'peak RSS MiB':>12} | {'speed-up':>8} | {'memory':>7} |")
    print(f"|{'-' * 46}|{'-' * 9}|{'-' * 14}|{'-' * 10}|{'-' * 9}|")
    for label, wall, rss in rows:
        speed = f"{peer[1] / wall:.1f}x" if peer else "-"
        mem = f"{rss / peer[2]:.2f}" if peer else "-"
        print(f"| {label:<44} | {wall:>7.2f} | {rss:>12.0f} | {speed:>8} | {mem:>7} |")


if __name__ == "__main__":
    main()
