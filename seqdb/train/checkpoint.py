"""Atomic, hashed checkpoints.

A checkpoint is `step-00000123.pt` (a torch.save dict) plus a sidecar
`step-00000123.pt.sha256` holding its sha256 and size. Both are written to a temp file in the
same folder, fsynced and renamed, checkpoint first: a checkpoint without its sidecar is
incomplete and ignored by `latest_checkpoint`. `load_checkpoint` verifies the hash (given, or
from the sidecar) and raises `TrainingError` naming the file when it does not match.
`load_resumable` is what a resume uses: a corrupt newest checkpoint, or one whose sidecar is
garbage, falls back to the newest earlier valid one in the same folder (logged).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Optional

import torch

from seqdb.errors import TrainingError
from seqdb.hashing import file_sha256

NAME = re.compile(r"^step-(\d+)\.pt$")
SIDECAR = ".sha256"
log = logging.getLogger("seqdb.train")


def checkpoint_path(directory: Path, step: int) -> Path:
    return Path(directory) / f"step-{step:08d}.pt"



def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_checkpoint(state: dict, directory: Path, step: int) -> tuple[Path, int, str]:
    """Write `state` atomically; returns (path, bytes, sha256)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(directory, step)
    _atomic_write(path, lambda f: torch.save(state, f))
    sha, size = file_sha256(path), path.stat().st_size
    meta = json.dumps({"sha256": sha, "bytes": size, "step": step}).encode()
    _atomic_write(path.with_name(path.name + SIDECAR), lambda f: f.write(meta))
    return path, size, sha


def _sidecar_sha(path: Path) -> Optional[str]:
    side = path.with_name(path.name + SIDECAR)
    if not side.exists():
        return None
    try:
        sha = json.loads(side.read_text(encoding="utf-8"))["sha256"]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise TrainingError(f"checkpoint hash file {side} is unreadable: {type(exc).__name__}") from None
    if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
        raise TrainingError(f"checkpoint hash file {side} holds no sha256; allowed: 64 hex digits")
    return sha


def load_checkpoint(path: Path, verify_sha256: Optional[str] = None) -> dict:
    """Load a checkpoint, verifying its sha256 (the given one, else the sidecar's)."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"checkpoint {path} does not exist")
    expected = verify_sha256 or _sidecar_sha(path)
    if expected is not None:
        actual = file_sha256(path)
        if actual != expected:
            raise TrainingError(f"checkpoint {path} is corrupt: sha256 {actual[:12]}… does not match the recorded {expected[:12]}…")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise TrainingError(f"checkpoint {path} cannot be read: {type(exc).__name__}: {exc}") from exc


def load_resumable(path: Path, verify_sha256: Optional[str] = None) -> tuple[Path, dict]:
    """(path, state) of the checkpoint at `path`, or of the newest earlier valid checkpoint in
    its folder when that one is corrupt, unreadable or has a garbage sidecar (each fallback
    logged). Raises the first error when none is usable."""
    path = Path(path)
    match = NAME.match(path.name)
    step = int(match.group(1)) if match else None
    older = [p for s, p in reversed(list_checkpoints(path.parent)) if step is not None and s < step]
    first: Optional[TrainingError] = None
    for i, candidate in enumerate([path, *older]):
        try:
            state = load_checkpoint(candidate, verify_sha256 if i == 0 else None)
        except TrainingError as exc:
            first = first or exc
            log.warning("%s; falling back to the previous checkpoint", exc.message)
            continue
        if i:
            log.warning("resuming from %s instead of %s", candidate, path)
        return candidate, state
    raise first


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (with a sidecar) in `directory`, by step."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = NAME.match(p.name)
        if m and p.with_name(p.name + SIDECAR).exists():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(directory: Path) -> Optional[Path]:
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def prune_checkpoints(directory: Path, keep_steps: set[int]) -> None:
    """Delete complete checkpoints whose step is not in `keep_steps` (best and latest)."""
    for step, path in list_checkpoints(directory):
        if step not in keep_steps:
            path.unlink(missing_ok=True)
            path.with_name(path.name + SIDECAR).unlink(missing_ok=True)
