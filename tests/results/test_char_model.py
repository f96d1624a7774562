"""Text from a character model: every input categorical, one next-character target fed
back. A tiny model learns a short periodic text, is exported to ONNX, and `seqdb infer
--autoregress` (greedy, then sampled) writes the continuation."""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest
import torch

from seqdb.config.trial import DataSpec, InputColumn, ModelConfig, TargetSpec
from seqdb.model.transformer import CausalTransformer
from seqdb.results import onnx_export
from seqdb.results.spec import InferenceSpec, InputSpec, TargetOut
from tests.helpers import run_cli_inprocess

TEXT = "the cat sat.\n" * 24  # 13 distinct-position period, a newline in the vocabulary
CHARS = sorted(set(TEXT))
ID_MAP = {c: i + 2 for i, c in enumerate(CHARS)}  # 0 unknown, 1 other, 2+ characters
LABELS = ["<unknown>", "<other>", *CHARS]
L = 16


def _train() -> CausalTransformer:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only contend on a loaded machine
    try:
        return _fit()
    finally:
        torch.set_num_threads(threads)


def _fit() -> CausalTransformer:
    torch.manual_seed(0)
    data = DataSpec(context_length=L, horizon=1, inputs=[InputColumn(name="ch", kind="categorical", vocab_size=len(LABELS), embedding_dim=16)],
                    targets=[TargetSpec(name="ch", kind="categorical", n_classes=len(LABELS))])
    model = CausalTransformer(ModelConfig(d_model=32, n_layers=2, n_head=4, d_ff=64, dropout=0.0), data)
    ids = torch.tensor([ID_MAP[c] for c in TEXT])
    windows = ids.unfold(0, L + 1, 1)  # [W, L+1]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        batch = windows[torch.randint(0, len(windows), (32,))]
        logits = model(torch.zeros(32, L, 0), batch[:, :L, None])["ch"]  # [B, L, K]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(LABELS)), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1, f"the tiny model did not learn the text (loss {loss.item():.3f})"
    return model.eval()


@pytest.fixture(scope="module")
def char_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("char")
    spec = InferenceSpec(context_length=L, horizon=1, sequence_column="doc", position_column="pos", d_model=32, real_inputs=[],
                         cat_inputs=[InputSpec(name="ch", kind="categorical", id_map=ID_MAP)],
                         targets=[TargetOut(name="ch", kind="categorical", n_classes=len(LABELS), classes=LABELS, task="next_category",
                                            column="ch", feeds_input="ch")])
    pair = {e.kind: e for e in onnx_export.export_pair(_train(), spec, out, stem="char")}
    prompt = "the cat s"
    rows = [("d0", i, c) for i, c in enumerate(prompt)] + [("d1", i, c) for i, c in enumerate("sat.\nthe")]
    data = out / "prompt.csv"
    pl.DataFrame(rows, schema=["doc", "pos", "ch"], orient="row").write_csv(data)
    return pair["generative"].path, data


def _text(frame: pl.DataFrame, doc: str) -> str:
    return "".join(frame.filter(pl.col("doc") == doc).sort("step")["ch_pred"].to_list())


def test_greedy_autoregression_writes_the_learned_text(char_model, tmp_path):
    model, data = char_model
    out = tmp_path / "gen.csv"
    res = run_cli_inprocess("infer", "--model", str(model), "--data", str(data), "--autoregress", "17", "--output", str(out), "--probabilities")
    assert res.code == 0, res.err
    frame = pl.read_csv(out)
    assert _text(frame, "d0") == "at.\nthe cat sat.\n"  # the continuation of "the cat s"
    assert _text(frame, "d1") == " cat sat.\nthe cat"
    assert frame["horizon"].to_list()[:3] == [1, 2, 3] and "ch" not in frame.columns  # the prediction is not the input's name
    prob_cols = [c for c in frame.columns if "__p_" in c]
    assert "ch_pred__p_u000a" in prob_cols and "ch_pred__p_u0020" in prob_cols and "ch_pred__p__unknown" in prob_cols
    assert all(c.replace("_", "").isalnum() for c in prob_cols)
    assert np.allclose(frame.select(prob_cols).to_numpy().sum(axis=1), 1.0, atol=1e-5)
    assert oct(os.stat(out).st_mode & 0o777) == "0o644" and oct(os.stat(model).st_mode & 0o777) == "0o644"


def test_sampled_autoregression_is_seeded_and_cold_sampling_is_greedy(char_model, tmp_path):
    model, data = char_model

    def gen(*extra: str) -> pl.DataFrame:
        out = tmp_path / f"s{len(list(tmp_path.iterdir()))}.parquet"
        res = run_cli_inprocess("infer", "--model", str(model), "--data", str(data), "--autoregress", "12", "--output", str(out), *extra)
        assert res.code == 0, res.err
        return pl.read_parquet(out)

    hot = [gen("--sample", "--temperature", "8", "--seed", str(s)) for s in (1, 1, 2)]
    assert _text(hot[0], "d0") == _text(hot[1], "d0") and hot[0].equals(hot[1])
    assert hot[0]["ch_pred"].to_list() != hot[2]["ch_pred"].to_list()
    assert set(hot[0]["ch_pred"].to_list()) <= set(LABELS)
    cold = gen("--sample", "--temperature", "0.01", "--seed", "5")
    assert _text(cold, "d0") == "at.\nthe cat "  # 12 steps of the greedy continuation
