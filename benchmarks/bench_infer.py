"""`seqdb infer`: rows per second with ONNX Runtime against PyTorch eager, same model, same data.

    .venv/bin/python benchmarks/bench_infer.py [--sequences 100] [--rows-per-sequence 400]
        [--d-model 128] [--layers 4] [--context 64] [--repeat 3]

A CausalTransformer (random weights: speed does not depend on them) with 3 real inputs and
1 categorical input (20 values), a direction target and a regression target, is exported with
seqdb's exporter (verified ≤ 1e-4). Raw long-format data (`--sequences` × `--rows-per-sequence`
rows) goes through the same `seqdb.results.infer.infer_frame` pipeline (sorting, id maps,
normalisation, windowing, decoding into original units) with two predictors:

- ONNX Runtime (CPU execution provider, default threads) — what `seqdb infer` runs;
- PyTorch eager (`torch.inference_mode`, default threads) on the same model.

Two modes: `last` (one forecast per sequence, the default of `seqdb infer`) and `all-rows`
(one answer per input row, each from its own window of up to `context` rows). Rows/s counts
input rows consumed per second; the best of `--repeat` runs is reported. The answers of both
backends are compared (largest absolute difference of the regression output).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seqdb.config.trial import DataSpec, InputColumn, ModelConfig, TargetSpec  # noqa: E402
from seqdb.model.transformer import CausalTransformer  # noqa: E402
from seqdb.results.infer import InferOptions, infer_frame, load_model  # noqa: E402
from seqdb.results.onnx_export import _Generative, export_one  # noqa: E402
from seqdb.results.spec import InferenceSpec, InputSpec, TargetOut  # noqa: E402

CATS = [f"v{i}" for i in range(20)]


def build(d_model: int, layers: int, context: int) -> tuple[CausalTransformer, InferenceSpec]:
    torch.manual_seed(0)
    data = DataSpec(
        context_length=context,
        inputs=[*(InputColumn(name=f"x{i}", kind="real") for i in (1, 2, 3)), InputColumn(name="cat", kind="categorical", vocab_size=22)],
        targets=[TargetSpec(name="direction", kind="categorical", n_classes=2), TargetSpec(name="ret", kind="real")],
    )  # fmt: skip
    cfg = ModelConfig(d_model=d_model, n_layers=layers, n_head=max(1, d_model // 32), d_ff=4 * d_model)
    spec = InferenceSpec(
        context_length=context, sequence_column="sequenceId", position_column="itemPosition",
        real_inputs=[InputSpec(name=f"x{i}", kind="real") for i in (1, 2, 3)],
        cat_inputs=[InputSpec(name="cat", kind="categorical", id_map={c: i + 2 for i, c in enumerate(CATS)})],
        targets=[TargetOut(name="direction", kind="categorical", n_classes=2, classes=["down", "up"]), TargetOut(name="ret", kind="real", std=0.01)],
    )  # fmt: skip
    return CausalTransformer(cfg, data).eval(), spec


def make_data(sequences: int, per: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = sequences * per
    return pl.DataFrame({
        "sequenceId": np.repeat(np.arange(sequences), per), "itemPosition": np.tile(np.arange(per), sequences),
        "x1": rng.normal(size=n), "x2": rng.normal(size=n), "x3": rng.uniform(size=n),
        "cat": np.array(CATS)[rng.integers(0, 20, size=n)],
    })  # fmt: skip


def torch_predictor(model: CausalTransformer, spec: InferenceSpec):
    wrapper = _Generative(model, spec).eval()
    names = [f"target__{t.name}" for t in spec.targets]

    def predict(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = wrapper(*(torch.from_numpy(v) for v in feeds.values()))
        return {n: o.numpy() for n, o in zip(names, out)}

    return predict


def timed(frame: pl.DataFrame, spec: InferenceSpec, predict, all_rows: bool, repeat: int) -> tuple[float, pl.DataFrame]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = infer_frame(frame, spec, InferOptions(all_rows=all_rows, batch_size=256), predict).frame
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=100)
    ap.add_argument("--rows-per-sequence", type=int, default=400)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    model, spec = build(args.d_model, args.layers, args.context)
    n_params = sum(p.numel() for p in model.parameters())
    frame = make_data(args.sequences, args.rows_per_sequence)
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_one(model, spec, Path(tmp) / "bench.onnx")
        ort_predict = load_model(exported.path).predictor
        torch_predict = torch_predictor(model, spec)
        print(f"model: d_model {args.d_model}, {args.layers} layers, context {args.context}, {n_params:,} parameters; "
              f"data: {frame.height:,} rows in {args.sequences} sequences; torch threads {torch.get_num_threads()}; "
              f"export verified, max |onnx - torch| {exported.max_abs_diff:.2g}")
        print(f"{'mode':<9} {'backend':<16} {'rows':>9} {'answers':>9} {'seconds':>9} {'rows/s':>11} {'speedup':>8}")
        for mode, all_rows in (("last", False), ("all-rows", True)):
            t_ort, a = timed(frame, spec, ort_predict, all_rows, args.repeat)
            t_pt, b = timed(frame, spec, torch_predict, all_rows, args.repeat)
            diff = float(np.abs(a["ret"].to_numpy() - b["ret"].to_numpy()).max())
            for name, t in (("onnxruntime", t_ort), ("pytorch eager", t_pt)):
                print(f"{mode:<9} {name:<16} {frame.height:>9,} {a.height:>9,} {t:>9.3f} {frame.height / t:>11,.0f} {t_pt / t:>7.2f}x")
            print(f"{'':<9} answers agree: max |ort - torch| of `ret` = {diff:.2g}")


if __name__ == "__main__":
    main()
