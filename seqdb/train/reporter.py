"""The only thing the trainer knows of the outside world: a reporter it is given.

The runner implements it over the database (buffered metric rows, checkpoint rows, lease
checks, stop requests); tests implement it in memory. The trainer never imports seqdb.db.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Protocol

Decision = Optional[Literal["prune", "stop"]]


@dataclass
class CheckpointInfo:
    path: Path
    bytes: int
    sha256: str
    step: int
    epoch: int
    val_loss: Optional[float]
    is_best: bool


class Reporter(Protocol):
    def report(self, step: int, epoch: int, metrics: dict[str, float]) -> Decision:
        """Metrics at an optimizer step (train_loss, lr, grad_norm, tokens_per_s, memory_mb,
        and after an evaluation val_loss ...). Answer "prune" to end the run as pruned,
        "stop" to checkpoint and stop (resumable), None to go on."""

    def on_checkpoint(self, info: CheckpointInfo) -> Optional[bool]:
        """A checkpoint was written atomically (temp file + rename) at `info.path`. Return
        False when it could not be registered (the lease is lost): the trainer then deletes
        no older checkpoint. None or True: registered."""

    def should_stop(self) -> bool:
        """Polled between steps: True when the run must checkpoint and stop (a stop request,
        a signal, or a lost lease)."""


@dataclass
class MemoryReporter:
    """A reporter that keeps everything in memory (tests, notebooks, benchmarks)."""

    prune_when: Optional[callable] = None  # (step, metrics) -> bool
    stop_after_step: Optional[int] = None
    rows: list[tuple[int, int, str, float]] = field(default_factory=list)
    checkpoints: list[CheckpointInfo] = field(default_factory=list)
    _last_step: int = 0

    def report(self, step: int, epoch: int, metrics: dict[str, float]) -> Decision:
        self._last_step = step
        self.rows.extend((step, epoch, k, float(v)) for k, v in metrics.items())
        if self.prune_when is not None and self.prune_when(step, metrics):
            return "prune"
        return None

    def on_checkpoint(self, info: CheckpointInfo) -> None:
        self.checkpoints.append(info)

    def should_stop(self) -> bool:
        return self.stop_after_step is not None and self._last_step >= self.stop_after_step

    def series(self, name: str) -> list[tuple[int, float]]:
        return [(s, v) for s, _e, k, v in self.rows if k == name]
