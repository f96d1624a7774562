"""ONNX export of a trained model: a generative model and an embedding model.

- generative: inputs `input__real` [B, L, R] float32 and `input__cat` [B, L, C] int64 (an absent kind of
  input is simply not an input of the file); one output per target, named `target__<name>` —
  logits [B, L, K] for a categorical target, predictions [B, L] for a real one (normalised
  units; the spec in the file's metadata turns them into original units).
- embedding: the same inputs; output `embedding__last` [B, d_model], the final hidden state at the
  last position (a causal model compresses the whole history into it).

Both have a dynamic batch and a dynamic sequence length (1 .. context_length). The export
uses torch's TorchScript-based exporter (opset 18, about a second) and falls back to the
`torch.export`-based one (onnxscript, opset 20, tens of seconds on CPU) for a model the first
cannot convert; `exporter=` picks one. Each file is verified against the PyTorch model with
ONNX Runtime on batches and lengths other than the traced ones: the
largest absolute difference over every output must be <= 1e-4, else the file is removed and
the export fails. Files are written to a temp name and renamed, so nothing half-written is
left behind.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from seqdb.errors import TrainingError
from seqdb.results.spec import METADATA_KEY, InferenceSpec
from seqdb.hashing import file_sha256 as sha256_file

TOLERANCE = 1e-4
OPSET = 20  # torch.export-based exporter
OPSET_TORCHSCRIPT = 18
TARGET_PREFIX = "target__"
EMBEDDING_OUTPUT = "embedding__last"
REAL_INPUT, CAT_INPUT = "input__real", "input__cat"  # prefixed: graph node names never collide


class _Generative(nn.Module):
    """(real?, cat?) -> one tensor per target, in the spec's target order."""

    def __init__(self, model: nn.Module, spec: InferenceSpec):
        super().__init__()
        self.model, self.targets = model, [t.name for t in spec.targets]
        self.n_real, self.n_cat = len(spec.real_inputs), len(spec.cat_inputs)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        real, cat = _split_inputs(inputs, self.n_real, self.n_cat)
        out = self.model(real, cat)
        return tuple(out[name] for name in self.targets)


class _Embedding(nn.Module):
    """(real?, cat?) -> hidden state of the last position [B, d_model]."""

    def __init__(self, model: nn.Module, spec: InferenceSpec):
        super().__init__()
        self.model = model
        self.n_real, self.n_cat = len(spec.real_inputs), len(spec.cat_inputs)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        real, cat = _split_inputs(inputs, self.n_real, self.n_cat)
        return self.model.hidden(real, cat)[:, -1, :]


def _split_inputs(inputs, n_real: int, n_cat: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The wrapper's positional inputs back to (real [B,L,R], cat [B,L,C]), empty when absent."""
    it = iter(inputs)
    real = next(it) if n_real else None
    cat = next(it) if n_cat else None
    ref = real if real is not None else cat
    if real is None:
        real = torch.zeros(ref.shape[0], ref.shape[1], 0, dtype=torch.float32)
    if cat is None:
        cat = torch.zeros(ref.shape[0], ref.shape[1], 0, dtype=torch.int64)
    return real, cat


def output_names(spec: InferenceSpec) -> list[str]:
    """Output names, prefixed so that they never collide with the graph's internal names."""
    if spec.kind == "embedding":
        return [EMBEDDING_OUTPUT]
    return [TARGET_PREFIX + t.name for t in spec.targets]


def input_names(spec: InferenceSpec) -> list[str]:
    return ([REAL_INPUT] if spec.real_inputs else []) + ([CAT_INPUT] if spec.cat_inputs else [])


def example_inputs(spec: InferenceSpec, batch: int, length: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random valid inputs: standard-normal reals, ids within each column's vocabulary."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    if spec.real_inputs:
        out[REAL_INPUT] = rng.standard_normal((batch, length, len(spec.real_inputs))).astype(np.float32)
    if spec.cat_inputs:
        highs = [max(2, len(c.id_map or {}) + 2) for c in spec.cat_inputs]
        out[CAT_INPUT] = np.stack([rng.integers(0, h, size=(batch, length)) for h in highs], axis=-1).astype(np.int64)
    return out


@dataclass
class ExportedModel:
    kind: str  # generative | embedding
    path: Path
    bytes: int
    sha256: str
    max_abs_diff: float
    output_names: list[str]
    exporter: str = "torchscript"  # torchscript | dynamo



def export_pair(
    model: nn.Module,
    spec: InferenceSpec,
    out_dir: Path,
    *,
    stem: str = "model",
    verify_inputs: Optional[dict[str, np.ndarray]] = None,
    exporter: str = "auto",
) -> list[ExportedModel]:
    """Export the generative and the embedding model of `model` into `out_dir`, each verified."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {"generative": f"{stem}-generative.onnx", "embedding": f"{stem}-embedding.onnx"}
    results = []
    for kind, sibling in (("generative", "embedding"), ("embedding", "generative")):
        kind_spec = spec.with_kind(kind, names[sibling])
        results.append(export_one(model, kind_spec, out_dir / names[kind], verify_inputs=verify_inputs, exporter=exporter))
    return results


def export_one(
    model: nn.Module, spec: InferenceSpec, path: Path, *, verify_inputs: Optional[dict[str, np.ndarray]] = None, exporter: str = "auto"
) -> ExportedModel:
    """Export one model of `spec.kind` to `path` (atomically) and verify it with ONNX Runtime."""
    model = model.eval()
    wrapper = _Generative(model, spec) if spec.kind == "generative" else _Embedding(model, spec)
    outputs = output_names(spec)
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        used = _torch_export(wrapper, spec, tmp, outputs, exporter)
        _attach_metadata(tmp, spec)
        checks = [verify_inputs] if verify_inputs is not None else []
        checks += [  # a batch size and a length other than the traced ones: the axes are dynamic
            example_inputs(spec, batch=3, length=spec.context_length, seed=1),
            example_inputs(spec, batch=1, length=max(1, spec.context_length // 2), seed=2),
        ]
        diff = max(verify_onnx(wrapper, tmp, inputs) for inputs in checks)
        if not diff <= TOLERANCE:
            raise TrainingError(f"{path.name}: ONNX Runtime output differs from PyTorch by {diff:.3g} > {TOLERANCE:g}; export rejected")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model file is for others to read too
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportedModel(spec.kind, path, path.stat().st_size, sha256_file(path), diff, outputs, used)


def _torch_export(wrapper: nn.Module, spec: InferenceSpec, path: Path, outputs: list[str], exporter: str = "auto") -> str:
    """ONNX export with a dynamic batch and sequence length. `auto`: the TorchScript-based
    exporter (about a second), and the torch.export-based one (onnxscript; tens of seconds)
    when the first cannot convert the model. Either file is verified afterwards."""
    example = {k: torch.from_numpy(v) for k, v in example_inputs(spec, batch=2, length=spec.context_length).items()}
    order = {"auto": ("torchscript", "dynamo"), "torchscript": ("torchscript",), "dynamo": ("dynamo",)}[exporter]
    errors = []
    for name in order:
        try:
            with _quiet():
                (_export_torchscript if name == "torchscript" else _export_dynamo)(wrapper, example, path, outputs, spec.context_length)
            return name
        except Exception as exc:  # noqa: BLE001 - exporter failures become one line
            errors.append(f"{name}: {_root_cause(exc)}")
    raise TrainingError(f"ONNX export of the {spec.kind} model failed: {'; '.join(errors)}")


def _export_torchscript(wrapper: nn.Module, example: dict, path: Path, outputs: list[str], context_length: int) -> None:
    names = list(example)
    torch.onnx.export(
        wrapper, tuple(example[n] for n in names), str(path), dynamo=False, input_names=names, output_names=outputs,
        dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, *outputs] if n != EMBEDDING_OUTPUT} | ({EMBEDDING_OUTPUT: {0: "batch"}} if EMBEDDING_OUTPUT in outputs else {}),
        opset_version=OPSET_TORCHSCRIPT,
    )  # fmt: skip


def _export_dynamo(wrapper: nn.Module, example: dict, path: Path, outputs: list[str], context_length: int) -> None:
    names = list(example)
    batch = torch.export.Dim("batch", min=1)
    seq = torch.export.Dim("seq", min=1, max=context_length)
    dynamic = (tuple({0: batch, 1: seq} for _ in names),)  # one entry: the wrapper's *inputs
    program = torch.onnx.export(
        wrapper, tuple(example[n] for n in names), dynamo=True, input_names=names, output_names=outputs,
        dynamic_shapes=dynamic, opset_version=OPSET, optimize=True, verbose=False,
    )  # fmt: skip
    program.save(str(path))


@contextlib.contextmanager
def _quiet():
    """The exporters print progress and deprecation warnings; keep the CLI's output clean."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _attach_metadata(path: Path, spec: InferenceSpec) -> None:
    import onnx

    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, spec.to_metadata()
    proto.producer_name = "seqdb"
    onnx.save(proto, str(path))


def verify_onnx(wrapper: nn.Module, path: Path, inputs: dict[str, np.ndarray]) -> float:
    """Largest absolute difference between PyTorch and ONNX Runtime over all outputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, inputs)
    with torch.no_grad():
        ref = wrapper(*(torch.from_numpy(v) for v in inputs.values()))
    ref = ref if isinstance(ref, tuple) else (ref,)
    diffs = [float(np.max(np.abs(g - r.numpy()))) if g.size else 0.0 for g, r in zip(got, ref)]
    return max(diffs) if diffs else 0.0
