"""`seqdb infer`: answers from an exported model with ONNX Runtime (no PyTorch at inference).

Input: raw long-format data (csv or parquet; the sequence column, the position column and
every input column of the model). The model file's spec (see `seqdb.results.spec`) maps
categorical values to ids (a value the map does not know becomes id 1, "other", as rare
training values did, and is counted; a missing value is id 0) and normalises real columns with the training-split statistics.

What comes out, one row per answer:
- default: one forecast per sequence, made at its last row (the target `horizon` steps later);
  `--all-rows`: one per row, each from the window of up to `context_length` rows ending there
  (the same causal view the model had in training).
- columns: sequence, position, `horizon` (steps after that row the answer is for), then each
  target's prediction in original units (real targets de-normalised, categories as their
  values), named after the target or `<target>_pred` when an input has that name;
  `--probabilities`: one column per class (`<column>__p_<safe label>`); `--embeddings`: the
  embedding model's vector. Files are 0644.
- `--autoregress K`: K steps beyond the end of each sequence, each prediction appended as the
  next row and fed back (needs horizon 1 and every input column predicted by a target).
- `--sample --temperature T --seed S`: categorical targets sampled from softmax(logits / T)
  instead of the argmax; the same seed gives the same samples.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import polars as pl

from seqdb.data.transform import count_unseen, encode_categoricals, mark_missing, missing_expr, normalise
from seqdb.errors import ConfigError, DataError, NotFoundError
from seqdb.results.onnx_export import CAT_INPUT, EMBEDDING_OUTPUT, REAL_INPUT, TARGET_PREFIX, input_names, output_names, sha256_file
from seqdb.results.spec import METADATA_KEY, OTHER_ID, UNKNOWN_ID, InferenceSpec

# feeds {"input__real": [B,L,R], "input__cat": [B,L,C]} -> {output name: array}
Predictor = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class InferOptions:
    probabilities: bool = False
    embeddings: bool = False
    autoregress: int = 0  # extra steps fed back; 0: none
    sample: bool = False
    temperature: float = 1.0
    seed: int = 0
    all_rows: bool = False
    batch_size: int = 256
    on_windows: Optional[Callable[[int], None]] = None  # progress: called with each batch's window count

    def check(self) -> None:
        if self.autoregress < 0:
            raise ConfigError(f"--autoregress must be >= 0, found {self.autoregress}")
        if not self.temperature > 0:
            raise ConfigError(f"--temperature must be > 0, found {self.temperature}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, found {self.batch_size}")
        if self.autoregress and self.all_rows:
            raise ConfigError("--autoregress forecasts beyond the last row; it cannot be combined with --all-rows")


@dataclass
class LoadedModel:
    path: Path
    spec: InferenceSpec
    predictor: Predictor
    sha256: str


@dataclass
class Encoded:
    """Raw data in model units, rows ordered by (sequence, position)."""

    seq_ids: list  # original sequence id of each sequence
    positions: np.ndarray  # [T] original positions
    offsets: np.ndarray  # [S + 1] row offsets of each sequence
    real: np.ndarray  # [T, R] float32, normalised
    cat: np.ndarray  # [T, C] int64 ids
    unknown: dict[str, int] = field(default_factory=dict)  # categorical column -> values mapped to 0


@dataclass
class InferResult:
    frame: pl.DataFrame
    unknown: dict[str, int]
    n_input_rows: int
    output: Optional[Path] = None


# --------------------------------------------------------------------------------------
# loading a model file: ONNX Runtime only
# --------------------------------------------------------------------------------------
def load_model(path: Path, expected_sha256: Optional[str] = None) -> LoadedModel:
    """Open a seqdb ONNX file with ONNX Runtime; refuse corrupted and foreign files in one line."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: model file not found")
    digest = sha256_file(path)
    if expected_sha256 and digest != expected_sha256:
        raise DataError(f"{path}: sha256 {digest[:12]}… does not match the registered {expected_sha256[:12]}…; the file is corrupted or was replaced")
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        first = " ".join(str(exc).split())[:200]
        raise DataError(f"{path}: not a readable ONNX model (corrupted?): {first}") from None
    meta = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise DataError(f"{path}: a foreign ONNX model, not exported by seqdb (no '{METADATA_KEY}' metadata); export one with `seqdb train`")
    try:
        spec = InferenceSpec.from_metadata(meta[METADATA_KEY])
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: unreadable seqdb metadata in the ONNX file: {str(exc).splitlines()[0]}") from None
    _check_io(path, session, spec)
    return LoadedModel(path, spec, ort_predictor(session), digest)


def _check_io(path: Path, session, spec: InferenceSpec) -> None:
    got_in = [i.name for i in session.get_inputs()]
    got_out = [o.name for o in session.get_outputs()]
    if got_in != input_names(spec) or got_out != output_names(spec):
        raise DataError(f"{path}: inputs {got_in} / outputs {got_out} do not match its seqdb metadata; the file was altered")


def ort_predictor(session) -> Predictor:
    names = [o.name for o in session.get_outputs()]

    def predict(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, feeds)))

    return predict


def sibling_model(model: LoadedModel) -> LoadedModel:
    """The other model of an exported pair (same folder)."""
    if not model.spec.sibling:
        raise NotFoundError(f"{model.path}: names no {('embedding' if model.spec.kind == 'generative' else 'generative')} model beside it")
    return load_model(model.path.parent / model.spec.sibling)


# --------------------------------------------------------------------------------------
# reading and encoding raw data
# --------------------------------------------------------------------------------------
def read_data(path: Path, spec: InferenceSpec) -> pl.DataFrame:
    """Read csv/parquet and keep the columns the model needs; a missing one is an error."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: data file not found")
    try:
        df = pl.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pl.read_csv(path, infer_schema_length=10000)
    except Exception as exc:  # noqa: BLE001 - polars raises many kinds
        raise DataError(f"{path}: cannot read data: {' '.join(str(exc).split())[:200]}") from None
    if df.height == 0:
        raise DataError(f"{path}: no data rows")
    needed = [spec.sequence_column, spec.position_column, *spec.input_columns]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing model column(s) {', '.join(missing)}; the model needs {', '.join(needed)}")
    return df.select(needed)


def encode(df: pl.DataFrame, spec: InferenceSpec, source: str = "data") -> Encoded:
    """Sort by (sequence, position) and encode with the data layer's functions — the same code
    that prepared the training data: the nan policy, the training-split normalisation (a
    missing real becomes the mean) and the stored id maps (unseen -> 1, missing -> 0)."""
    seq, pos = spec.sequence_column, spec.position_column
    reals, cats = [c.name for c in spec.real_inputs], [c.name for c in spec.cat_inputs]
    df = df.sort([seq, pos], maintain_order=True).with_columns([pl.col(c).cast(pl.Float64, strict=False) for c in reals])
    if df.select(pl.struct(seq, pos).is_duplicated().any()).item():
        raise DataError(f"{source}: duplicate {pos} within a {seq}; each (sequence, position) must be unique")
    if spec.nan_policy == "error":
        _refuse_missing(df, reals, spec, source)
    df = mark_missing(df, reals, seq, spec.nan_policy)
    stats = {c.name: {"mean": c.mean, "std": c.std or 1.0} for c in spec.real_inputs}
    maps = {c.name: c.id_map or {} for c in spec.cat_inputs}
    seq_values = df.get_column(seq)
    change = np.flatnonzero(seq_values.ne_missing(seq_values.shift(1)).fill_null(True).to_numpy())
    offsets = np.append(change, len(df)).astype(np.int64)
    real, cat = normalise(df, reals, stats), encode_categoricals(df, cats, maps)
    return Encoded(seq_values.gather(change).to_list(), df.get_column(pos).to_numpy(), offsets, real, cat, count_unseen(df, cats, maps))


def _refuse_missing(df: pl.DataFrame, columns: list[str], spec: InferenceSpec, source: str) -> None:
    """Nan policy `error`: the first real column with a missing or non-finite value fails."""
    seq, pos = spec.sequence_column, spec.position_column
    for col in columns:
        bad = df.filter(missing_expr(col))
        if bad.height:
            raise DataError(f"{source}: column {col} has {bad.height} missing or non-finite value(s) (first at {seq}={bad[seq][0]}, {pos}={bad[pos][0]}); the model's nan policy is `error`")


# --------------------------------------------------------------------------------------
# running windows through a predictor
# --------------------------------------------------------------------------------------
def answer_rows(enc: Encoded, all_rows: bool) -> np.ndarray:
    """Row index each answer is made at: the last row of each sequence, or every row."""
    return np.arange(enc.offsets[-1]) if all_rows else enc.offsets[1:] - 1


def run_windows(predict: Predictor, enc: Encoded, rows: np.ndarray, spec: InferenceSpec, batch: int, per_position: bool = True) -> dict[str, np.ndarray]:
    """Outputs for each row of `rows` from the window of up to context_length rows ending at
    it (never crossing into the previous sequence). With `per_position` (a generative model:
    outputs at every position), the first context_length rows of a sequence share the one
    window at its start — causal attention makes the output at position j depend on rows
    0..j only, so this is exact. Windows are grouped by length and run in batches."""
    L = spec.context_length
    seq = np.searchsorted(enc.offsets, rows, side="right") - 1
    first, n = enc.offsets[seq], enc.offsets[seq + 1] - enc.offsets[seq]
    j = rows - first  # offset within the sequence
    if per_position:
        head = j < L
        length = np.where(head, np.minimum(n, L), L)
        start = np.where(head, first, rows - L + 1)
    else:
        length = np.minimum(j + 1, L)
        start = rows - length + 1
    results: dict[str, np.ndarray] = {}
    for l in np.unique(length):
        pick = np.flatnonzero(length == l)
        starts, inverse = np.unique(start[pick], return_inverse=True)  # rows sharing a window
        order = np.argsort(inverse, kind="stable")
        pick, inverse = pick[order], inverse[order]
        for lo in range(0, len(starts), batch):
            chunk = starts[lo : lo + batch]
            a, b = np.searchsorted(inverse, [lo, lo + len(chunk)])
            sel, win = pick[a:b], inverse[a:b] - lo
            idx = chunk[:, None] + np.arange(l)[None, :]  # [B, l]
            for name, value in predict(_feeds(enc.real, enc.cat, idx, spec)).items():
                got = value[win] if name == EMBEDDING_OUTPUT else value[win, rows[sel] - start[sel]]
                if name not in results:
                    results[name] = np.empty((len(rows), *got.shape[1:]), dtype=got.dtype)
                results[name][sel] = got
    return results


def _feeds(real: np.ndarray, cat: np.ndarray, idx: np.ndarray, spec: InferenceSpec) -> dict[str, np.ndarray]:
    feeds = {}
    if spec.real_inputs:
        feeds[REAL_INPUT] = np.ascontiguousarray(real[idx])
    if spec.cat_inputs:
        feeds[CAT_INPUT] = np.ascontiguousarray(cat[idx])
    return feeds


# --------------------------------------------------------------------------------------
# choosing classes and decoding into original units
# --------------------------------------------------------------------------------------
def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def choose(logits: np.ndarray, opts: InferOptions, rng: np.random.Generator) -> np.ndarray:
    """Class ids [N] from logits [N, K]: argmax, or a sample from softmax(logits / T)."""
    if not opts.sample:
        return logits.argmax(axis=-1)
    cdf = np.cumsum(softmax(logits, opts.temperature), axis=-1)
    u = rng.random((logits.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((cdf < u).sum(axis=-1), logits.shape[-1] - 1)


def class_labels(target) -> list[str]:
    n = target.n_classes
    labels = list(target.classes or [])[:n]
    labels += [None] * (n - len(labels))
    return [str(i) if label is None else str(label) for i, label in enumerate(labels)]


def prediction_column(target: str, spec: InferenceSpec) -> str:
    """A target's column in the output: its name, or `<name>_pred` when an input (or the
    sequence / position column) has that name, so a prediction never passes for an input."""
    taken = {spec.sequence_column, spec.position_column, "horizon", "step", *spec.input_columns}
    return f"{target}_pred" if target in taken else target


_RESERVED = {"<unknown>": "_unknown", "<other>": "_other"}  # the labels of ids 0 and 1


def safe_label(label: str) -> str:
    """A class label as a column-name part: letters, digits and `_` kept, any other character
    written as `uXXXX` (its code point), so `\n` -> `u000a` and ` ` -> `u0020`."""
    if label in _RESERVED:
        return _RESERVED[label]
    return "".join(ch if (ch.isascii() and (ch.isalnum() or ch == "_")) else f"u{ord(ch):04x}" for ch in label) or "empty"


def probability_columns(name: str, labels: list[str]) -> list[str]:
    """`<name>__p_<safe label>` per class; a label that collides after escaping gets its class id."""
    out, seen = [], set()
    for k, label in enumerate(labels):
        column = f"{name}__p_{safe_label(label)}"
        if column in seen:
            column = f"{column}_{k}"
        seen.add(column)
        out.append(column)
    return out


def decode(outputs: dict[str, np.ndarray], spec: InferenceSpec, opts: InferOptions, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Output columns in original units: one per target, + probabilities, + embeddings."""
    cols: dict[str, np.ndarray] = {}
    for t in spec.targets:
        raw = outputs.get(TARGET_PREFIX + t.name)
        if raw is None:
            continue
        name = prediction_column(t.name, spec)
        if t.kind == "real":
            cols[name] = raw.astype(np.float64) * t.std + t.mean
            continue
        labels = np.array(class_labels(t), dtype=object)
        cols[name] = labels[choose(raw, opts, rng)]
        if opts.probabilities:
            probs = softmax(raw, opts.temperature if opts.sample else 1.0)
            for k, column in enumerate(probability_columns(name, list(labels))):
                cols[column] = probs[:, k]
    if EMBEDDING_OUTPUT in outputs:
        emb = outputs[EMBEDDING_OUTPUT]
        for k in range(emb.shape[1]):
            cols[f"emb_{k}"] = emb[:, k]
    return cols


# --------------------------------------------------------------------------------------
# the whole pipeline
# --------------------------------------------------------------------------------------
def infer_frame(
    df: pl.DataFrame, spec: InferenceSpec, opts: InferOptions, generative: Optional[Predictor], embedding: Optional[Predictor] = None, source: str = "data"
) -> InferResult:
    """Answers for the raw rows `df` (see the module docstring); predictors are injectable so
    that the benchmark can run the same pipeline with PyTorch eager."""
    opts.check()
    enc = encode(df, spec, source)
    if opts.autoregress:
        frame = _autoregress(enc, spec, opts, generative, embedding)
        return InferResult(frame, enc.unknown, len(df))
    rows = answer_rows(enc, opts.all_rows)
    outputs: dict[str, np.ndarray] = {}
    for predict, per_position in ((generative, True), (embedding, False)):
        if predict is not None:
            outputs.update(run_windows(predict, enc, rows, spec, opts.batch_size, per_position))
    seq_idx = np.searchsorted(enc.offsets, rows, side="right") - 1
    cols = decode(outputs, spec, opts, np.random.default_rng(opts.seed))
    frame = pl.DataFrame({spec.sequence_column: [enc.seq_ids[i] for i in seq_idx], spec.position_column: enc.positions[rows],
                          "horizon": np.full(len(rows), spec.horizon, dtype=np.int64), **cols})
    return InferResult(frame, enc.unknown, len(df))


def feedback_plan(spec: InferenceSpec) -> dict[str, object]:
    """input column -> the target whose prediction becomes it; an error if any is missing."""
    if spec.horizon != 1:
        raise ConfigError(f"--autoregress needs a horizon-1 model (each prediction is the next row); this model predicts horizon {spec.horizon}")
    fed = {t.feeds_input: t for t in spec.targets if t.feeds_input}
    missing = [c for c in spec.input_columns if c not in fed]
    if missing:
        raise ConfigError(f"--autoregress needs every input column predicted by the model; not predicted: {', '.join(missing)}")
    return fed


def _autoregress(enc: Encoded, spec: InferenceSpec, opts: InferOptions, generative: Optional[Predictor], embedding: Optional[Predictor]) -> pl.DataFrame:
    """Forecast `opts.autoregress` steps past each sequence's end, feeding predictions back."""
    if generative is None:
        raise ConfigError("--autoregress needs the generative model")
    fed = feedback_plan(spec)
    rng = np.random.default_rng(opts.seed)
    ends = enc.offsets[1:] - 1
    ctx_real, ctx_cat, ctx_len = _contexts(enc, spec.context_length)
    frames = []
    for step in range(1, opts.autoregress + 1):
        outputs = _run_contexts(generative, ctx_real, ctx_cat, ctx_len, spec, opts.batch_size, True)
        if embedding is not None:
            outputs.update(_run_contexts(embedding, ctx_real, ctx_cat, ctx_len, spec, opts.batch_size, False))
        cols = decode(outputs, spec, opts, rng)
        frames.append(pl.DataFrame({spec.sequence_column: enc.seq_ids, spec.position_column: enc.positions[ends] + step,
                                    "step": np.full(len(ends), step), "horizon": np.full(len(ends), step * spec.horizon, dtype=np.int64), **cols}))
        new_real, new_cat = _next_row(cols, fed, spec)
        # slide: drop the oldest row, append the generated one
        ctx_real = np.concatenate([ctx_real[:, 1:], new_real[:, None, :]], axis=1)
        ctx_cat = np.concatenate([ctx_cat[:, 1:], new_cat[:, None, :]], axis=1)
        ctx_len = np.minimum(ctx_len + 1, spec.context_length)
    return pl.concat(frames).sort([spec.sequence_column, "step"], maintain_order=True)


def _contexts(enc: Encoded, L: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each sequence's last <= L rows, right-aligned: real [S, L, R], cat [S, L, C], lengths [S]."""
    n = np.diff(enc.offsets)
    length = np.minimum(n, L)
    idx = enc.offsets[1:, None] - L + np.arange(L)[None, :]  # [S, L], rows before the start are unused
    idx = np.maximum(idx, enc.offsets[:-1, None])
    return enc.real[idx], enc.cat[idx], length


def _run_contexts(predict: Predictor, real: np.ndarray, cat: np.ndarray, length: np.ndarray, spec: InferenceSpec, batch: int, per_position: bool) -> dict[str, np.ndarray]:
    """Last-position outputs of right-aligned contexts, grouped by their valid length."""
    L = spec.context_length
    rows_total = len(length) * L  # explicit: a model without real (or categorical) inputs has a zero-width array
    ctx = Encoded([], np.zeros(0), np.arange(0, (len(length) + 1) * L, L), real.reshape(rows_total, real.shape[-1]), cat.reshape(rows_total, cat.shape[-1]))
    rows = np.arange(len(length)) * L + L - 1
    results: dict[str, np.ndarray] = {}
    for l in np.unique(length):
        pick = np.flatnonzero(length == l)
        for name, value in run_windows(predict, ctx, rows[pick], spec.model_copy(update={"context_length": int(l)}), batch, per_position).items():
            results.setdefault(name, np.empty((len(length), *value.shape[1:]), dtype=value.dtype))[pick] = value
    return results


def _next_row(cols: dict[str, np.ndarray], fed: dict, spec: InferenceSpec) -> tuple[np.ndarray, np.ndarray]:
    """The generated row of each sequence in model units: reals re-normalised with the input
    column's statistics, categories mapped through the input column's id map."""
    n = len(next(iter(cols.values())))
    real = np.zeros((n, len(spec.real_inputs)), dtype=np.float32)
    for j, col in enumerate(spec.real_inputs):
        real[:, j] = (np.asarray(cols[prediction_column(fed[col.name].name, spec)], dtype=np.float64) - col.mean) / (col.std or 1.0)
    cat = np.zeros((n, len(spec.cat_inputs)), dtype=np.int64)
    for j, col in enumerate(spec.cat_inputs):
        id_map = {"<unknown>": UNKNOWN_ID, "<other>": OTHER_ID, **(col.id_map or {})}  # labels of ids 0 and 1
        cat[:, j] = [id_map.get(str(v), OTHER_ID) for v in cols[prediction_column(fed[col.name].name, spec)]]
    return real, cat


def _counted(predict: Predictor, tick: Callable[[int], None]) -> Predictor:
    """The predictor, reporting the windows of each call (for a progress display)."""

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = predict(feeds)
        tick(len(next(iter(feeds.values()))))
        return out

    return run


def write_frame(frame: pl.DataFrame, path: Path) -> Path:
    """Write parquet (or csv by suffix) through a temp file + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if path.suffix.lower() == ".csv":
            frame.write_csv(tmp)
        else:
            frame.write_parquet(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a results file is for others to read too
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def infer(model_path: Path, data_path: Path, output: Optional[Path], opts: InferOptions, expected_sha256: Optional[str] = None) -> InferResult:
    """`seqdb infer`: load the model (and its embedding sibling when asked), answer, write."""
    opts.check()
    model = load_model(model_path, expected_sha256)
    generative = embedding = None
    if model.spec.kind == "generative":
        generative = model.predictor
        if opts.embeddings:
            embedding = sibling_model(model).predictor
    else:
        embedding = model.predictor
        if opts.autoregress or opts.probabilities or opts.sample:
            generative = sibling_model(model).predictor
    df = read_data(data_path, model.spec)
    if opts.on_windows is not None:
        generative, embedding = (_counted(p, opts.on_windows) if p is not None else None for p in (generative, embedding))
    result = infer_frame(df, model.spec, opts, generative, embedding, source=str(data_path))
    if output is not None:
        result.output = write_frame(result.frame, output)
    return result
