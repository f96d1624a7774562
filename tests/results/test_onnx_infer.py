"""ONNX export (verified with ONNX Runtime) and `seqdb infer` on a tiny CausalTransformer.

One generative + embedding pair is exported per module (the exporter takes seconds); every
test reads it. Expected values are computed with the PyTorch model directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from seqdb.config.trial import DataSpec, InputColumn, ModelConfig, TargetSpec
from seqdb.errors import ConfigError, TrainingError
from seqdb.model.transformer import CausalTransformer
from seqdb.results import onnx_export
from seqdb.results.infer import InferOptions, feedback_plan, infer, load_model
from seqdb.results.spec import InferenceSpec, InputSpec, TargetOut
from tests.helpers import assert_one_line_error, run_cli_inprocess

L = 6
ID_MAP = {"a": 2, "b": 3, "c": 4}
LABELS = ["<unknown>", "<other>", "a", "b", "c"]


def make_model() -> CausalTransformer:
    torch.manual_seed(0)
    data = DataSpec(
        context_length=L, horizon=1,
        inputs=[InputColumn(name="x", kind="real"), InputColumn(name="k", kind="categorical", vocab_size=5, embedding_dim=8)],
        targets=[TargetSpec(name="x_next", kind="real"), TargetSpec(name="k_next", kind="categorical", n_classes=5)],
    )  # fmt: skip
    cfg = ModelConfig(d_model=16, n_layers=2, n_head=4, n_kv_heads=2, attention="gqa", d_ff=32, positional="rope")
    model = CausalTransformer(cfg, data).eval()
    with torch.no_grad():  # larger weights than the init: outputs that differ visibly between inputs
        for p in model.parameters():
            p.mul_(8.0)
    return model


def make_spec() -> InferenceSpec:
    return InferenceSpec(
        context_length=L, horizon=1, sequence_column="sid", position_column="pos", d_model=16,
        real_inputs=[InputSpec(name="x", kind="real", mean=10.0, std=2.0)],
        cat_inputs=[InputSpec(name="k", kind="categorical", id_map=ID_MAP)],
        targets=[
            TargetOut(name="x_next", kind="real", mean=10.0, std=2.0, task="regression", column="x", feeds_input="x"),
            TargetOut(name="k_next", kind="categorical", n_classes=5, classes=LABELS, task="next_category", column="k", feeds_input="k"),
        ],
    )  # fmt: skip


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    model, spec = make_model(), make_spec()
    exported = onnx_export.export_pair(model, spec, out, stem="tiny")
    return {"model": model, "spec": spec, "dir": out, **{e.kind: e for e in exported}}


def raw_frame(seed: int = 0, lengths=(9, 4, 1, 12)) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s, n in enumerate(lengths):
        for p in range(n):
            rows.append((f"s{s}", 3 * p, float(10 + 2 * rng.standard_normal()), ["a", "b", "c"][rng.integers(0, 3)]))
    return pl.DataFrame(rows, schema=["sid", "pos", "x", "k"], orient="row").sample(fraction=1.0, shuffle=True, seed=seed)


def torch_answer(model, frame: pl.DataFrame) -> dict[str, list]:
    """Per sequence (sorted by id): the PyTorch model's last-position answer, original units."""
    out = {"x_next": [], "k_next": [], "sid": []}
    for sid, g in sorted(frame.sort("pos").group_by("sid", maintain_order=True), key=lambda kv: kv[0][0]):
        g = g.tail(L)
        real = torch.tensor(((g["x"].to_numpy() - 10.0) / 2.0)[None, :, None], dtype=torch.float32)
        cat = torch.tensor([[ID_MAP.get(v, 1) for v in g["k"].to_list()]], dtype=torch.int64)[..., None]
        with torch.no_grad():
            res = model(real, cat)
        out["x_next"].append(float(res["x_next"][0, -1]) * 2.0 + 10.0)
        out["k_next"].append(LABELS[int(res["k_next"][0, -1].argmax())])
        out["sid"].append(sid[0])
    return out


def test_export_is_verified_with_dynamic_batch_and_length(pair):
    import onnxruntime as ort

    assert pair["generative"].max_abs_diff <= 1e-4 and pair["embedding"].max_abs_diff <= 1e-4
    assert pair["generative"].exporter == "torchscript"
    assert pair["generative"].sha256 == onnx_export.sha256_file(pair["generative"].path)
    sess = ort.InferenceSession(str(pair["generative"].path), providers=["CPUExecutionProvider"])
    feeds = onnx_export.example_inputs(pair["spec"], batch=7, length=3, seed=9)
    got = sess.run(None, feeds)
    with torch.no_grad():
        ref = pair["model"](torch.from_numpy(feeds["input__real"]), torch.from_numpy(feeds["input__cat"]))
    assert got[0].shape == (7, 3) and got[1].shape == (7, 3, 5)
    assert np.abs(got[0] - ref["x_next"].numpy()).max() <= 1e-4
    assert np.abs(got[1] - ref["k_next"].numpy()).max() <= 1e-4
    emb = ort.InferenceSession(str(pair["embedding"].path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    with torch.no_grad():
        hidden = pair["model"].hidden(torch.from_numpy(feeds["input__real"]), torch.from_numpy(feeds["input__cat"]))[:, -1]
    assert emb.shape == (7, 16) and np.abs(emb - hidden.numpy()).max() <= 1e-4


@pytest.mark.slow
def test_the_torch_export_based_exporter_also_works(tmp_path):
    """The fallback exporter (onnxscript), on the smallest model (it takes seconds per layer)."""
    data = DataSpec(context_length=4, inputs=[InputColumn(name="x", kind="real")], targets=[TargetSpec(name="y", kind="real")])
    model = CausalTransformer(ModelConfig(d_model=8, n_layers=1, n_head=2, d_ff=8, activation="gelu"), data).eval()
    spec = InferenceSpec(context_length=4, real_inputs=[InputSpec(name="x", kind="real")], cat_inputs=[], targets=[TargetOut(name="y", kind="real")])
    e = onnx_export.export_one(model, spec, tmp_path / "d.onnx", exporter="dynamo")
    assert e.exporter == "dynamo" and e.max_abs_diff <= 1e-4
    feeds = onnx_export.example_inputs(spec, batch=5, length=3, seed=3)
    with torch.no_grad():
        want = model(torch.from_numpy(feeds["input__real"]), torch.zeros(5, 3, 0, dtype=torch.int64))["y"].numpy()
    assert np.abs(load_model(e.path).predictor(feeds)["target__y"] - want).max() <= 1e-4


def test_a_mismatching_export_is_rejected_and_leaves_nothing(pair, tmp_path, monkeypatch):
    # the exporter "produces" the fixture's file, but for a model with other weights
    monkeypatch.setattr(onnx_export, "_torch_export", lambda wrapper, spec, path, outputs, exporter: shutil.copy(pair["generative"].path, path))
    other = make_model()
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    with pytest.raises(TrainingError, match="differs from PyTorch"):
        onnx_export.export_one(other, pair["spec"].with_kind("generative", None), tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


def test_infer_matches_pytorch_in_original_units(pair, tmp_path):
    frame = raw_frame()
    data = tmp_path / "raw.csv"
    frame.write_csv(data)
    res = infer(pair["generative"].path, data, tmp_path / "out.parquet", InferOptions(probabilities=True))
    got = pl.read_parquet(tmp_path / "out.parquet").sort("sid")
    want = torch_answer(pair["model"], frame)
    assert got["sid"].to_list() == want["sid"]
    assert np.allclose(got["x_next"].to_numpy(), want["x_next"], atol=1e-3)
    assert got["k_next"].to_list() == want["k_next"]
    assert got["pos"].to_list() == [24, 9, 0, 33]  # the last row of each sequence
    assert got["horizon"].to_list() == [1, 1, 1, 1]
    probs = got.select(["k_next__p__unknown", "k_next__p__other", *(f"k_next__p_{c}" for c in LABELS[2:])]).to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert [LABELS[i] for i in probs.argmax(axis=1)] == got["k_next"].to_list()
    assert res.unknown == {"k": 0}


def test_all_rows_answers_each_row_from_its_own_window(pair, tmp_path):
    frame = raw_frame(1, lengths=(10,))
    path = tmp_path / "raw.parquet"
    frame.write_parquet(path)
    got = infer(pair["generative"].path, path, None, InferOptions(all_rows=True, batch_size=3)).frame
    assert got.height == 10
    ordered = frame.sort("pos")
    for i in (0, 3, 9):  # the answer at row i uses rows max(0, i-L+1)..i only
        want = torch_answer(pair["model"], ordered.head(i + 1))
        assert got["x_next"][i] == pytest.approx(want["x_next"][0], abs=1e-3)


def test_embeddings_and_unknown_values(pair, tmp_path):
    frame = raw_frame(2).with_columns(pl.when(pl.col("pos") == 0).then(pl.lit("zzz")).otherwise(pl.col("k")).alias("k"))
    path = tmp_path / "raw.csv"
    frame.write_csv(path)
    res = infer(pair["generative"].path, path, None, InferOptions(embeddings=True))
    assert res.unknown == {"k": 4}  # one unseen value per sequence, read as "other"
    assert [c for c in res.frame.columns if c.startswith("emb_")] == [f"emb_{i}" for i in range(16)]
    only = infer(pair["embedding"].path, path, None, InferOptions()).frame
    assert np.allclose(only.sort("sid")["emb_3"].to_numpy(), res.frame.sort("sid")["emb_3"].to_numpy(), atol=1e-5)
    want = torch_answer(pair["model"], frame.with_columns(pl.col("k").replace("zzz", "?")))
    assert res.frame.sort("sid")["k_next"].to_list() == want["k_next"]


def test_autoregression_feeds_predictions_back(pair, tmp_path):
    frame = raw_frame(3, lengths=(8, 3))
    path = tmp_path / "raw.csv"
    frame.write_csv(path)
    got = infer(pair["generative"].path, path, None, InferOptions(autoregress=3)).frame.sort(["sid", "step"])
    assert got.height == 6 and got["step"].to_list() == [1, 2, 3, 1, 2, 3]
    # step 2 is the one-step answer on the data extended by the step-1 prediction as a new row
    extended = frame
    for sid in ("s0", "s1"):
        first = got.filter((pl.col("sid") == sid) & (pl.col("step") == 1)).row(0, named=True)
        extended = pl.concat([extended, pl.DataFrame({"sid": [sid], "pos": [first["pos"]], "x": [first["x_next"]], "k": [first["k_next"]]})])
    want = torch_answer(pair["model"], extended)
    step2 = got.filter(pl.col("step") == 2)
    assert np.allclose(step2["x_next"].to_numpy(), want["x_next"], atol=1e-3)
    assert step2["k_next"].to_list() == want["k_next"]


def test_sampling_is_seeded(pair, tmp_path):
    frame = raw_frame(4, lengths=tuple([7] * 40))
    path = tmp_path / "raw.parquet"
    frame.write_parquet(path)
    run = lambda seed: infer(pair["generative"].path, path, None, InferOptions(sample=True, temperature=5.0, seed=seed, autoregress=2)).frame  # noqa: E731
    a, b, c = run(1), run(1), run(2)
    assert a["k_next"].to_list() == b["k_next"].to_list()
    assert a["k_next"].to_list() != c["k_next"].to_list()
    argmax = infer(pair["generative"].path, path, None, InferOptions()).frame.sort("sid")["k_next"].to_list()
    first = lambda f: f.filter(pl.col("step") == 1).sort("sid")["k_next"].to_list()  # noqa: E731
    assert sum(x != y for x, y in zip(first(a), argmax)) >= 8  # a hot sampler often leaves the argmax
    cold = infer(pair["generative"].path, path, None, InferOptions(sample=True, temperature=1e-4, seed=3, autoregress=1)).frame
    assert first(cold) == argmax  # a cold sampler is the argmax


def test_autoregression_needs_every_input_predicted(pair):
    spec = make_spec()
    partial = spec.model_copy(update={"targets": [spec.targets[0]]})
    with pytest.raises(ConfigError, match="not predicted: k"):
        feedback_plan(partial)
    with pytest.raises(ConfigError, match="horizon 3"):
        feedback_plan(spec.model_copy(update={"horizon": 3}))


def test_bad_inputs_are_one_line_errors(pair, tmp_path):
    gen = str(pair["generative"].path)
    data = tmp_path / "raw.csv"
    raw_frame().drop("k").write_csv(data)
    assert_one_line_error(run_cli_inprocess("infer", "--model", gen, "--data", str(data)), "missing model column(s) k")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(Path(gen).read_bytes()[: 5000])
    raw_frame().write_csv(data)
    assert_one_line_error(run_cli_inprocess("infer", "--model", str(corrupt), "--data", str(data)), "corrupt")
    foreign = tmp_path / "foreign.onnx"
    _write_foreign_onnx(foreign)
    assert_one_line_error(run_cli_inprocess("infer", "--model", str(foreign), "--data", str(data)), "foreign ONNX model")
    with pytest.raises(Exception, match="does not match the registered"):
        load_model(Path(gen), expected_sha256="0" * 64)
    ok = run_cli_inprocess("infer", "--model", gen, "--data", str(data), "--output", str(tmp_path / "p.csv"), "--all-rows")
    assert ok.code == 0, ok.err
    assert pl.read_csv(tmp_path / "p.csv").height == raw_frame().height


def _write_foreign_onnx(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
