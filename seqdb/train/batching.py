"""Accumulation-based dynamic batching.

The effective batch (windows per optimizer step) is fixed by the TrainingConfig. The
physical batch is chosen per architecture from the memory score d_model^2 * n_layers / 1e9
(tiers < 0.05: 128, < 0.2: 64, < 0.5: 32, < 1.0: 16, else 8), capped by the effective batch;
on CUDA a probe of peak memory refines it. Gradient accumulation runs ceil(effective / batch)
micro-batches; the last one may be smaller. On out-of-memory the batch halves and
accumulation doubles (at most `MAX_OOM_RETRIES` times); the effective batch never changes.
"""

from __future__ import annotations

import gc
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from seqdb.config.trial import ModelConfig

TIERS = ((0.05, 128), (0.2, 64), (0.5, 32), (1.0, 16))
SMALLEST_TIER = 8
MAX_OOM_RETRIES = 3


def memory_score(model_cfg: ModelConfig) -> float:
    return model_cfg.d_model**2 * model_cfg.n_layers / 1e9


def tier_batch_size(model_cfg: ModelConfig) -> int:
    score = memory_score(model_cfg)
    return next((size for limit, size in TIERS if score < limit), SMALLEST_TIER)


@dataclass
class BatchConfig:
    batch_size: int  # physical micro-batch, per process
    accumulation: int  # micro-batches per optimizer step, per process
    effective_batch_size: int  # windows per optimizer step, all processes together
    oom_retries: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def halve(self, local_effective: int) -> "BatchConfig":
        batch = max(1, self.batch_size // 2)
        return BatchConfig(batch, math.ceil(local_effective / batch), self.effective_batch_size, self.oom_retries + 1)


def local_share(effective: int, world_size: int, rank: int) -> int:
    """Windows of one optimizer step that process `rank` handles (idx[rank::world])."""
    return len(range(rank, effective, world_size))


def initial_batch_config(model_cfg: ModelConfig, effective: int, requested: int | None, world_size: int = 1) -> BatchConfig:
    local = max(1, local_share(effective, world_size, 0))
    batch = min(requested or tier_batch_size(model_cfg), local)
    return BatchConfig(batch, math.ceil(local / batch), effective)


def micro_batches(idx: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split a step's window indices into consecutive micro-batches (last may be smaller)."""
    return [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def free_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()


def probe_cuda_batch(
    step_fn, config: BatchConfig, local_effective: int, device: str, reserve_bytes: int = 0, fraction: float = 0.85
) -> BatchConfig:
    """On CUDA: run one forward/backward at the tier batch, measure peak memory, and grow the
    batch (doubling, up to the local effective batch) while the predicted peak plus
    `reserve_bytes` (optimizer state not yet allocated) stays under `fraction` of the device
    memory; halve on out-of-memory and never grow back to a size that failed.
    `step_fn(batch_size)` runs one micro-batch forward + backward and leaves no gradients."""
    total = torch.cuda.get_device_properties(torch.device(device)).total_memory
    batch, ceiling = config.batch_size, local_effective + 1
    while True:
        free_memory(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        try:
            step_fn(batch)
        except RuntimeError as exc:
            if not is_oom(exc) or batch == 1:
                raise
            free_memory(device)
            batch, ceiling = batch // 2, batch
            continue
        per_window = max(1, torch.cuda.max_memory_allocated(device) - base) / batch
        predicted = base + reserve_bytes + per_window * batch * 2
        if batch * 2 > local_effective or batch * 2 >= ceiling or predicted > fraction * total:
            break
        batch *= 2
    free_memory(device)
    return BatchConfig(batch, math.ceil(local_effective / batch), config.effective_batch_size, config.oom_retries)
