"""Tiny synthetic window sets with a learnable signal (tests and benchmarks)."""

from __future__ import annotations

import numpy as np

from seqdb.config.trial import DataSpec, InputColumn, TargetSpec
from seqdb.data.windows import WindowSet


def make_windows(n_seq: int = 6, seq_len: int = 40, context: int = 8, seed: int = 0, vocab: int = 6) -> WindowSet:
    """Columns: real x, noise; categorical tok (ids 2..vocab-1), day. Targets: `nxt` (the next
    x, real, NaN at a sequence end), `up` (2 classes: next x > 0, -1 at the end), `tok_next`
    (the next token, vocab classes)."""
    rng = np.random.default_rng(seed)
    reals, cats, nxt, up, tok_next, starts, offset = [], [], [], [], [], [], 0
    for _ in range(n_seq):
        x = np.sin(np.arange(seq_len) * 0.7 + rng.uniform(0, 6)) + 0.1 * rng.standard_normal(seq_len)
        tok = 2 + (np.arange(seq_len) + rng.integers(0, vocab)) % (vocab - 2)
        reals.append(np.stack([x, rng.standard_normal(seq_len)], 1))
        cats.append(np.stack([tok, np.arange(seq_len) % 5], 1))
        n = np.append(x[1:], np.nan)
        nxt.append(n)
        up.append(np.where(np.isnan(n), -1, (np.nan_to_num(n) > 0).astype(np.int64)))
        tok_next.append(np.append(tok[1:], -1))
        starts.extend(offset + s for s in range(seq_len - context + 1))
        offset += seq_len
    return WindowSet(
        real=np.concatenate(reals).astype(np.float32),
        cat=np.concatenate(cats).astype(np.int64),
        targets={
            "nxt": np.concatenate(nxt).astype(np.float32),
            "up": np.concatenate(up).astype(np.int64),
            "tok_next": np.concatenate(tok_next).astype(np.int64),
        },
        starts=np.asarray(starts, dtype=np.int64),
        context_length=context,
        real_columns=["x", "noise"],
        cat_columns=["tok", "day"],
    )


def spec(context: int = 8, vocab: int = 6, targets: tuple[str, ...] = ("up", "nxt"), class_weights=None) -> DataSpec:
    defs = {
        "up": TargetSpec(name="up", kind="categorical", n_classes=2, class_weights=class_weights),
        "nxt": TargetSpec(name="nxt", kind="real", loss_weight=0.5),
        "tok_next": TargetSpec(name="tok_next", kind="categorical", n_classes=vocab),
    }
    return DataSpec(
        context_length=context,
        inputs=[
            InputColumn(name="x", kind="real"),
            InputColumn(name="tok", kind="categorical", vocab_size=vocab, embedding_dim=8),
        ],
        targets=[defs[t] for t in targets],
    )
