"""Progress lines for a worker: trial, epoch, step, loss, tokens/s, ETA.

One line every `every_s` seconds per worker (several worker processes share a terminal, so
no live bars), plus a line when a trial starts and ends.
"""

from __future__ import annotations

import time
from typing import Optional

from rich.console import Console


def _fmt_rate(x: Optional[float]) -> str:
    if x is None:
        return "-"
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def _fmt_eta(seconds: Optional[float]) -> str:
    if seconds is None or seconds < 0:
        return "-"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(self, label: str, *, enabled: bool = True, every_s: float = 5.0, console: Optional[Console] = None):
        self.label, self.enabled, self.every_s = label, enabled, every_s
        self.console = console or Console(highlight=False)
        self.total_steps: Optional[int] = None  # set by the executor when it knows
        self.tokens_per_s: Optional[float] = None
        self._trial: Optional[int] = None
        self._t0 = self._last = 0.0
        self._step0 = 0
        self._state: dict = {}

    def say(self, text: str) -> None:
        if self.enabled:
            self.console.print(f"[{self.label}] {text}", markup=False)

    def start_trial(self, lease, resume_step: int) -> None:  # noqa: ANN001
        self._trial, self._t0, self._last = lease.trial_id, time.monotonic(), time.monotonic()
        self._step0, self.total_steps, self._state = resume_step, None, {}
        how = f"resuming at step {resume_step} (attempt {lease.attempt})" if resume_step else f"attempt {lease.attempt}"
        self.say(f"trial {lease.trial_id} (study {lease.study_id}): start, {how}")

    def update(self, step: int, epoch: int, metrics: dict) -> None:
        st = self._state
        st["step"], st["epoch"] = step, epoch
        for key in ("train_loss", "val_loss"):
            if key in metrics:
                st[key] = metrics[key]
        if "tokens_per_s" in metrics:
            self.tokens_per_s = float(metrics["tokens_per_s"])
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self.say(self.line(now))

    def line(self, now: float) -> str:
        st = self._state
        step, total = st.get("step", 0), self.total_steps
        eta = None
        if total and step > self._step0:
            eta = (now - self._t0) / (step - self._step0) * (total - step)
        parts = [f"trial {self._trial}", f"epoch {st.get('epoch', 0)}", f"step {step}" + (f"/{total}" if total else "")]
        if "train_loss" in st:
            parts.append(f"loss {st['train_loss']:.4f}")
        if "val_loss" in st:
            parts.append(f"val {st['val_loss']:.4f}")
        parts += [f"{_fmt_rate(self.tokens_per_s)} tok/s", f"ETA {_fmt_eta(eta)}"]
        return " · ".join(parts)

    def end_trial(self, lease, outcome) -> None:  # noqa: ANN001
        took = time.monotonic() - self._t0
        best = f", best val {outcome.best_val_loss:.4f} at step {outcome.best_step}" if outcome.best_val_loss is not None else ""
        err = f": {outcome.error}" if outcome.error else ""
        self.say(f"trial {lease.trial_id}: {outcome.state} in {took:.1f}s{best}{err}")
