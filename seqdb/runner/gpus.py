"""One worker per GPU: which GPU each worker of this host gets (pinned through
CUDA_VISIBLE_DEVICES, so the worker sees it as `cuda:0`), and the device as the machine
numbers it, for the worker table (under CUDA_VISIBLE_DEVICES=2,3 `cuda:1` is GPU 3)."""

from __future__ import annotations

import os
import re
from typing import Optional

from seqdb.errors import ConfigError

ENV = "CUDA_VISIBLE_DEVICES"


def parse_gpus(text: str) -> list[str]:
    """`--gpus 0,1,3` -> ["0", "1", "3"] (device ids as nvidia-smi numbers them)."""
    ids = [part.strip() for part in text.split(",")]
    if not ids or not all(re.fullmatch(r"\d+", g) for g in ids) or len(set(ids)) != len(ids):
        raise ConfigError(f"--gpus {text!r}: give distinct GPU ids separated by commas, e.g. --gpus 0,1,3")
    return ids


def visible_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES when set (Slurm sets it), else 0..n-1."""
    env = os.environ.get(ENV)
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def plan_gpus(device: str, workers: int, gpus: Optional[list[str]] = None) -> list[Optional[str]]:
    """CUDA_VISIBLE_DEVICES for each of `workers` workers (round robin when there are more
    workers than GPUs); None for each when nothing is pinned (cpu, mps, an explicit cuda:N)."""
    if gpus:
        return [gpus[i % len(gpus)] for i in range(workers)]
    if device != "cuda":
        return [None] * workers
    ids = visible_gpus()
    if not ids:
        raise ConfigError(f"--device cuda: no CUDA device is visible ({ENV}={os.environ.get(ENV, 'unset')}); use --device cpu")
    return [ids[i % len(ids)] for i in range(workers)]


def physical_device(device: str) -> str:
    """`device` as the machine numbers it, for the worker table (at most 32 characters)."""
    env = os.environ.get(ENV)
    if not device.startswith("cuda") or not env:
        return device
    ids = [g.strip() for g in env.split(",") if g.strip()]
    k = int(device.split(":", 1)[1]) if ":" in device else 0
    return f"cuda:{ids[k]}"[:32] if k < len(ids) else device


__all__ = ["parse_gpus", "physical_device", "plan_gpus", "visible_gpus"]
