"""From a `WindowSet` to model tensors, and the masked multi-target loss.

The DataSpec names the inputs; they are picked by name from the WindowSet's columns, so a
feature subset is just a shorter `inputs` list. The loss is computed at every position of
every window (full causal loss); ignored targets (-1 / NaN) are masked out.

Loss of one optimizer step = sum over targets of loss_weight * (sum of per-position losses)
/ (denominator over the WHOLE effective batch), where the denominator is the number of valid
positions (or the sum of their class weights). Because the denominator is global, summing the
micro-batch losses gives exactly the gradient of the full batch, whatever the split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from seqdb.config.trial import DataSpec, TargetSpec
from seqdb.data.windows import WindowSet
from seqdb.errors import DataError


@dataclass
class Batch:
    real: torch.Tensor  # [B, L, R] float
    cat: torch.Tensor  # [B, L, C] int64
    targets: dict[str, torch.Tensor]  # name -> [B, L]

    @property
    def tokens(self) -> int:
        return int(self.cat.shape[0] * self.cat.shape[1]) if self.cat.numel() else int(self.real.shape[0] * self.real.shape[1])


class Selector:
    """Picks the DataSpec's input and target columns out of a WindowSet by name."""

    def __init__(self, spec: DataSpec, ws: WindowSet):
        self.spec, self.ws = spec, ws
        self.real_idx = [self._index(c.name, ws.real_columns, "real") for c in spec.real_inputs]
        self.cat_idx = [self._index(c.name, ws.cat_columns, "categorical") for c in spec.categorical_inputs]
        for t in spec.targets:
            if t.name not in ws.targets:
                raise DataError(f"target '{t.name}' is not in the prepared data; available: {', '.join(ws.targets) or 'none'}")

    @staticmethod
    def _index(name: str, columns: list[str], kind: str) -> int:
        if name not in columns:
            raise DataError(f"input column '{name}' is not a {kind} column of the prepared data; available: {', '.join(columns) or 'none'}")
        return columns.index(name)

    def numpy_targets(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        rows = self.ws.window_rows(np.asarray(idx))
        return {t.name: np.asarray(self.ws.targets[t.name][rows]) for t in self.spec.targets}

    def batch(self, idx: np.ndarray, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Batch:
        rows = self.ws.window_rows(np.asarray(idx))  # [B, L]
        real = np.asarray(self.ws.real[rows][..., self.real_idx], dtype=np.float32)  # [B, L, R]
        cat = np.asarray(self.ws.cat[rows][..., self.cat_idx], dtype=np.int64)  # [B, L, C]
        targets = {}
        for t in self.spec.targets:
            y = np.asarray(self.ws.targets[t.name][rows])
            targets[t.name] = torch.from_numpy(y.astype(np.int64 if t.kind == "categorical" else np.float32))
        return Batch(
            real=torch.from_numpy(real).to(device=device, dtype=dtype),
            cat=torch.from_numpy(cat).to(device),
            targets={k: v.to(device=device, dtype=v.dtype if v.dtype == torch.int64 else dtype) for k, v in targets.items()},
        )


def target_denominators(spec: DataSpec, targets: dict[str, np.ndarray]) -> dict[str, float]:
    """Per target: number of valid positions, or the sum of the class weights of valid ones."""
    out = {}
    for t in spec.targets:
        y = targets[t.name]
        if t.kind == "categorical":
            valid = y[y >= 0].astype(np.int64)
            out[t.name] = float(np.asarray(t.class_weights)[valid].sum()) if t.class_weights else float(valid.size)
        else:
            out[t.name] = float(np.count_nonzero(~np.isnan(y)))
    return out


def target_loss_sum(t: TargetSpec, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum (not mean) of the masked per-position losses of one target, in float32 or wider."""
    out = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
    if t.kind == "categorical":
        w = torch.tensor(t.class_weights, dtype=out.dtype, device=out.device) if t.class_weights else None
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), weight=w, ignore_index=-1, reduction="sum")
    mask = ~torch.isnan(y)
    return torch.where(mask, out - torch.nan_to_num(y), torch.zeros_like(out)).pow(2).sum()


def weighted_loss(spec: DataSpec, outputs: dict[str, torch.Tensor], batch: Batch, denominators: dict[str, float]):
    """(loss tensor for backward, {target: detached loss contribution before loss_weight})."""
    total, parts = None, {}
    for t in spec.targets:
        if denominators[t.name] <= 0:
            continue
        part = target_loss_sum(t, outputs[t.name], batch.targets[t.name]) / denominators[t.name]
        parts[t.name] = part.detach()
        total = t.loss_weight * part if total is None else total + t.loss_weight * part
    if total is None:  # no valid target in this batch: a zero loss that still touches the graph
        total = sum(o.sum() * 0.0 for o in outputs.values())
    return total, parts
