"""The trainer: a plain library. Typed configs and window sets in, a `TrainResult` out.

    result = train(cfg, train_set, val_set, reporter, checkpoint_dir=Path("ckpt"))

One optimizer step consumes one effective batch of windows (`effective_batch_size`), split
into micro-batches (dynamic batching, see `batching.py`) whose gradients accumulate; the
loss is the full causal loss at every position (see `data.py`). Steps run epoch by epoch in
a seeded order (a permutation per epoch derived from the seed), so a resumed run sees the
same windows as an uninterrupted one. Evaluation runs once per epoch (or every
`eval_every_steps`) and at the last step; a checkpoint follows each evaluation (or every
`checkpoint_every_steps`), keeping the best and the latest. The reporter receives metrics
after every optimizer step and may answer "prune" or "stop".

No YAML, no database, no environment, no globals. Under torchrun the caller initialises the
process group (`distributed.init_from_torchrun`) and the trainer uses DDP.
"""

from __future__ import annotations

import contextlib
import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from seqdb.config.trial import DataSpec, ModelConfig, TrialConfig
from seqdb.data.windows import WindowSet
from seqdb.errors import ConfigError, DataError, TrainingError
from seqdb.model.transformer import CausalTransformer
from seqdb.train.batching import (
    MAX_OOM_RETRIES,
    BatchConfig,
    free_memory,
    initial_batch_config,
    is_oom,
    local_share,
    micro_batches,
    probe_cuda_batch,
)
from seqdb.train.checkpoint import checkpoint_path, load_checkpoint, load_resumable, prune_checkpoints, save_checkpoint
from seqdb.train.data import Selector, target_denominators, target_loss_sum, weighted_loss
from seqdb.train.distributed import DistContext
from seqdb.train.reporter import CheckpointInfo, Reporter

Status = Literal["completed", "pruned", "stopped", "failed"]
CHECKPOINT_FORMAT = 1


@dataclass
class TrainResult:
    status: Status
    best_val_loss: Optional[float]
    best_step: Optional[int]
    step: int  # optimizer steps done
    epoch: int  # epochs completed
    batch_config: dict  # batch_size, accumulation, effective_batch_size, oom_retries
    error: Optional[str] = None
    tokens_per_s: float = 0.0
    early_stopped: bool = False
    best_metrics: dict = field(default_factory=dict)  # validation metrics at the best step
    latest_checkpoint: Optional[Path] = None
    best_checkpoint: Optional[Path] = None
    tokens: int = 0  # training tokens seen (windows x context length), the D of L(N, D)
    flops: float = 0.0  # training FLOPs by `flops_per_token`


class _Failed(Exception):
    """Ends the run as failed (non-finite loss, out of memory after the retries)."""


# ---------------------------------------------------------------------------- precision


def resolve_precision(precision: str, device: str) -> str:
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def autocast_for(precision: str, device: str):
    """A context-manager factory: autocast for bf16/fp16, nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    return lambda: torch.autocast(device_type=device_type, dtype=dtype)


# ---------------------------------------------------------------------------- one step


def accumulate_gradients(
    model: torch.nn.Module,
    selector: Selector,
    idx: np.ndarray,
    batch_size: int,
    spec: DataSpec,
    *,
    device: str = "cpu",
    autocast=contextlib.nullcontext,
    scaler=None,
    dist: DistContext = DistContext(),
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Forward + backward of one optimizer step over windows `idx` (the whole effective
    batch; this process takes idx[rank::world]) in micro-batches of `batch_size`. Gradients
    accumulate into `.grad`. Returns this process's (loss, {target: loss part}) as tensors."""
    denominators = target_denominators(spec, selector.numpy_targets(idx))
    chunks = micro_batches(idx[dist.rank :: dist.world], batch_size)
    dtype = next(model.parameters()).dtype
    ddp = getattr(model, "_orig_mod", model)  # under torch.compile, the wrapped module
    total = torch.zeros((), dtype=torch.float64, device=device)
    parts_sum = {t.name: torch.zeros((), dtype=torch.float64, device=device) for t in spec.targets}
    for i, chunk in enumerate(chunks):
        batch = selector.batch(chunk, device, dtype)
        sync = ddp.no_sync() if isinstance(ddp, DDP) and i < len(chunks) - 1 else contextlib.nullcontext()
        with sync:
            with autocast():
                outputs = model(batch.real, batch.cat)
            loss, parts = weighted_loss(spec, outputs, batch, denominators)
            scaled = loss * dist.world  # DDP averages over processes; the denominators are global
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        total += loss.detach().double()
        for name, part in parts.items():
            parts_sum[name] += part.double()
    return total, parts_sum


def lr_factor(step: int, warmup: int, total: int, scheduler: str, min_ratio: float) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (0-based)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if scheduler == "cosine":
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if scheduler == "linear":
        return 1 - (1 - min_ratio) * progress
    return 1.0


def make_optimizer(model: torch.nn.Module, cfg: TrialConfig, device: str) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices and embedding tables, not on norms and biases."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.training.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    tc = cfg.training
    return torch.optim.AdamW(groups, lr=tc.learning_rate, betas=tc.betas, fused=device.startswith("cuda"))


def flops_per_token(model: ModelConfig, n_params: int, context_length: int) -> float:
    """Training FLOPs per token (forward + backward, Kaplan et al. 2020 Table 1):
    6 N for the weights (N = all parameters) plus 6 n_layers L d_model for the attention
    scores and their weighted sum over a context of L (causal masking not discounted)."""
    return 6.0 * n_params + 6.0 * model.n_layers * context_length * model.d_model


# ---------------------------------------------------------------------------- evaluation


def eval_indices(n: int, batch_size: int, max_batches: Optional[int]) -> np.ndarray:
    """All windows, or an evenly spaced, fixed subset of max_batches * batch_size of them."""
    if max_batches is None or n <= max_batches * batch_size:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_batches * batch_size).round().astype(np.int64))


def _eval_sums(model, selector: Selector, spec: DataSpec, idx, batch_size, device, autocast) -> torch.Tensor:
    """Per target [loss_sum, denominator, correct, topk_correct, count, abs_err] (float64)."""
    sums = torch.zeros(len(spec.targets), 6, dtype=torch.float64)
    dtype = next(model.parameters()).dtype
    for chunk in micro_batches(idx, batch_size):
        batch = selector.batch(chunk, device, dtype)
        with autocast():
            outputs = model(batch.real, batch.cat)
        denominators = target_denominators(spec, {k: v.cpu().numpy() for k, v in batch.targets.items()})
        for j, t in enumerate(spec.targets):
            out, y = outputs[t.name].float(), batch.targets[t.name]
            sums[j, 0] += float(target_loss_sum(t, out, y))
            sums[j, 1] += denominators[t.name]
            if t.kind == "categorical":
                valid = y >= 0
                k = min(5, out.shape[-1])
                topk = out.topk(k, dim=-1).indices  # [B, L, k]
                sums[j, 2] += float((topk[..., 0] == y)[valid].sum())
                sums[j, 3] += float((topk == y.unsqueeze(-1)).any(-1)[valid].sum())
                sums[j, 4] += float(valid.sum())
            else:
                valid = ~torch.isnan(y)
                sums[j, 4] += float(valid.sum())
                sums[j, 5] += float((out - torch.nan_to_num(y)).abs()[valid].sum())
    return sums


def _metrics_from_sums(spec: DataSpec, sums: torch.Tensor) -> dict[str, float]:
    metrics, loss = {}, 0.0
    for j, t in enumerate(spec.targets):
        loss_sum, denom, correct, topk, count, abs_err = sums[j].tolist()
        if denom <= 0:
            continue
        metrics[f"loss_{t.name}"] = loss_sum / denom
        loss += t.loss_weight * loss_sum / denom
        if t.kind == "categorical":
            metrics[f"accuracy_{t.name}"] = correct / max(count, 1)
            if t.n_classes > 5:
                metrics[f"top5_accuracy_{t.name}"] = topk / max(count, 1)
        else:
            metrics[f"mae_{t.name}"] = abs_err / max(count, 1)
    metrics["loss"] = loss if metrics else float("nan")
    return metrics


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    window_set: WindowSet,
    data_spec: DataSpec,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    max_batches: Optional[int] = None,
    precision: str = "fp32",
    dist: DistContext = DistContext(),
) -> dict[str, float]:
    """Loss (weighted like training) and task metrics over `window_set`, at every position:
    `loss`, `loss_<target>`, `accuracy_<t>` / `top5_accuracy_<t>` (categorical, top-5 when
    more than 5 classes), `mae_<t>` (real). Under DDP the windows are sharded and summed."""
    raw = model.module if isinstance(model, DDP) else model
    was_training = raw.training
    raw.eval()
    try:
        idx = eval_indices(len(window_set), batch_size, max_batches)[dist.rank :: dist.world]
        autocast = autocast_for(resolve_precision(precision, device), device)
        sums = _eval_sums(raw, Selector(data_spec, window_set), data_spec, idx, batch_size, device, autocast)
        return _metrics_from_sums(data_spec, dist.all_reduce_sum(sums))
    finally:
        raw.train(was_training)


# ---------------------------------------------------------------------------- the run


def resolve_seed(cfg: TrialConfig) -> int:
    """training.seed when set (non-zero), else the trial's seed."""
    return cfg.training.seed or cfg.seed


def _check_config(cfg: TrialConfig, train_set: WindowSet, val_set: WindowSet, dist: DistContext) -> None:
    for t in cfg.data.targets:
        if t.kind == "categorical" and t.class_weights and len(t.class_weights) != t.n_classes:
            raise ConfigError(f"target '{t.name}': class_weights has {len(t.class_weights)} entries, n_classes is {t.n_classes}")
    for name, ws in (("training", train_set), ("validation", val_set)):
        if len(ws) == 0:
            raise DataError(f"the {name} split has no windows")
        if ws.context_length != cfg.data.context_length:
            raise DataError(f"the {name} windows have context length {ws.context_length}, the config says {cfg.data.context_length}")
    if cfg.training.effective_batch_size < dist.world:
        raise ConfigError(f"effective_batch_size {cfg.training.effective_batch_size} is smaller than the {dist.world} processes")


class _Run:
    """State of one training run; `train()` builds one and calls `run()`."""

    def __init__(self, cfg, train_set, val_set, reporter, checkpoint_dir, device):
        self.cfg, self.tc, self.spec = cfg, cfg.training, cfg.data
        self.reporter, self.dir, self.device = reporter, Path(checkpoint_dir), device
        self.dist = DistContext.current()
        _check_config(cfg, train_set, val_set, self.dist)
        self.train_set, self.val_set = train_set, val_set
        self.selector = Selector(self.spec, train_set)
        self.seed = resolve_seed(cfg)
        torch.manual_seed(self.seed)  # identical initial weights on every process
        self.model = CausalTransformer(cfg.model, self.spec).to(device)
        n_params = sum(p.numel() for p in self.model.parameters())
        self.flops_per_token = flops_per_token(cfg.model, n_params, self.spec.context_length)
        if self.dist.rank:
            torch.manual_seed(self.seed + self.dist.rank)  # independent dropout per process
        self.precision = resolve_precision(self.tc.precision, device)
        self.autocast = autocast_for(self.precision, device)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" and device.startswith("cuda") else None
        self.optimizer = make_optimizer(self.model, cfg, device)
        self._init_schedule(len(train_set))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_lambda)
        self.ddp = DDP(self.model, device_ids=[torch.device(device).index or 0] if device.startswith("cuda") else None) if self.dist.active else None
        wrapped = self.ddp or self.model
        self.train_model = torch.compile(wrapped) if self.tc.compile else wrapped
        self.local_effective = local_share(self.tc.effective_batch_size, self.dist.world, self.dist.rank)
        self.batch = initial_batch_config(cfg.model, self.tc.effective_batch_size, self.tc.batch_size, self.dist.world)
        self.step = self.epoch = self.pos = 0
        self.best_val, self.best_step, self.bad_evals, self.best_metrics = math.inf, None, 0, {}
        self.last_ckpt_step, self.latest_path = None, None
        self.tokens, self.train_time, self.tokens_at_start = 0, 0.0, 0
        self._order: Optional[tuple[int, np.ndarray]] = None  # (epoch, permutation) cache

    def _init_schedule(self, n_windows: int) -> None:
        self.steps_per_epoch = self.tc.steps_per_epoch(n_windows, self.dist.world)
        self.total_steps = self.tc.total_steps(n_windows, self.dist.world)

    def _lr_lambda(self, step: int) -> float:
        tc = self.tc
        return lr_factor(step, tc.warmup_steps, self.total_steps, tc.scheduler, tc.min_lr_ratio)

    # -- data order ------------------------------------------------------------------
    def step_indices(self) -> np.ndarray:
        """Windows of the next optimizer step: a slice of this epoch's seeded permutation."""
        if self._order is None or self._order[0] != self.epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._order = (self.epoch, torch.randperm(len(self.train_set), generator=g).numpy())
        eff = self.tc.effective_batch_size
        return self._order[1][self.pos * eff : (self.pos + 1) * eff]

    # -- one optimizer step, with out-of-memory retries ----------------------------
    def train_step(self) -> dict[str, float]:
        idx = self.step_indices()
        rng = torch.get_rng_state()
        t0 = time.perf_counter()
        while True:
            try:
                loss, parts = accumulate_gradients(
                    self.train_model, self.selector, idx, self.batch.batch_size, self.spec,
                    device=self.device, autocast=self.autocast, scaler=self.scaler, dist=self.dist,
                )
                break
            except (torch.OutOfMemoryError, RuntimeError) as exc:
                if not is_oom(exc):
                    raise
                self._shrink_after_oom(rng)
        losses = self.dist.all_reduce_sum(torch.stack([loss, *parts.values()]).cpu())
        if not torch.isfinite(losses[0]):
            raise _Failed(f"non-finite training loss ({float(losses[0])}) at step {self.step + 1} (epoch {self.epoch})")
        lr = self.optimizer.param_groups[0]["lr"]
        grad_norm = self._optimizer_step()
        elapsed = time.perf_counter() - t0
        tokens = len(idx) * self.spec.context_length
        self.tokens, self.train_time = self.tokens + tokens, self.train_time + elapsed
        metrics = {"train_loss": float(losses[0]), "lr": lr, "grad_norm": grad_norm}
        metrics |= {f"train_loss_{name}": float(v) for name, v in zip(parts, losses[1:])}
        return metrics | {"tokens_per_s": tokens / max(elapsed, 1e-9), "memory_mb": self._memory_mb()}

    def _shrink_after_oom(self, rng: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        free_memory(self.device)
        if self.batch.oom_retries >= MAX_OOM_RETRIES or self.batch.batch_size == 1:
            raise _Failed(
                f"out of memory at batch size {self.batch.batch_size} after {self.batch.oom_retries} retries (step {self.step + 1})"
            )
        self.batch = self.batch.halve(self.local_effective)
        torch.set_rng_state(rng)  # the retried step draws the same dropout masks

    def _optimizer_step(self) -> float:
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        max_norm = self.tc.grad_clip if self.tc.grad_clip > 0 else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # skips the step on inf/nan gradients
            self.scaler.update()
        elif not math.isfinite(norm):
            raise _Failed(f"non-finite gradient norm ({norm}) at step {self.step + 1} (epoch {self.epoch})")
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return norm

    def _memory_mb(self) -> float:
        if self.device.startswith("cuda"):
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB

    # -- evaluation, early stopping ------------------------------------------------
    def eval_due(self, epoch_done: bool) -> bool:
        if self.step >= self.total_steps:
            return True
        if self.tc.eval_every_steps:
            return self.step % self.tc.eval_every_steps == 0
        return epoch_done

    def validate(self) -> tuple[dict[str, float], bool]:
        """Validation metrics (prefixed val_) and whether early stopping triggers."""
        m = evaluate(
            self.model, self.val_set, self.spec, batch_size=self.batch.batch_size, device=self.device,
            max_batches=self.tc.max_eval_batches, precision=self.precision, dist=self.dist,
        )
        val = m["loss"]
        if not math.isfinite(val):
            raise _Failed(f"non-finite validation loss ({val}) at step {self.step} (epoch {self.epoch})")
        es = self.tc.early_stopping
        if val < self.best_val - es.min_delta:
            self.best_val, self.best_step, self.bad_evals, self.best_metrics = val, self.step, 0, m
        else:
            self.bad_evals += 1
        metrics = {f"val_{k}": v for k, v in m.items()}
        return metrics, self.bad_evals >= es.patience

    # -- checkpoints ---------------------------------------------------------------
    def state(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.cfg.model_dump_json(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if self.device.startswith("cuda") else []},
            "progress": {"step": self.step, "epoch": self.epoch, "pos": self.pos, "tokens": self.tokens},
            "early_stopping": {"best_val": self.best_val, "best_step": self.best_step, "bad_evals": self.bad_evals, "best_metrics": self.best_metrics},
            "batch_config": self.batch.as_dict(),
        }

    def checkpoint(self, val_loss: Optional[float]) -> None:
        if self.last_ckpt_step == self.step:
            return
        self.last_ckpt_step = self.step
        if not self.dist.is_main:
            return
        path, size, sha = save_checkpoint(self.state(), self.dir, self.step)
        self.latest_path = path
        # Register the new checkpoint before deleting older files, so that a worker killed in
        # between still leaves a registered checkpoint on disk to resume from. A registration
        # that failed (False: the lease is lost, another worker owns the trial and its files
        # now) prunes nothing: those older files may be the new owner's resume point.
        registered = self.reporter.on_checkpoint(
            CheckpointInfo(path=path, bytes=size, sha256=sha, step=self.step, epoch=self.epoch, val_loss=val_loss, is_best=self.best_step == self.step)
        )
        if registered is not False:
            prune_checkpoints(self.dir, {self.step} | ({self.best_step} if self.best_step is not None else set()))

    def restore(self, path: Path) -> None:
        path, state = load_resumable(path)  # a corrupt newest file: the previous valid one (logged)
        saved = TrialConfig.model_validate_json(state["config"])
        if saved.model != self.cfg.model or saved.data != self.cfg.data:
            raise TrainingError(f"checkpoint {path} was written for a different model or data spec")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        p, es = state["progress"], state["early_stopping"]
        self.step, self.epoch, self.pos, self.tokens = p["step"], p["epoch"], p["pos"], p["tokens"]
        self.best_val, self.best_step, self.bad_evals, self.best_metrics = es["best_val"], es["best_step"], es["bad_evals"], es["best_metrics"]
        self.batch = BatchConfig(**state["batch_config"])
        self.last_ckpt_step, self.latest_path = self.step, Path(path)
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and self.device.startswith("cuda"):
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    def probe_batch(self) -> None:
        """On CUDA with no batch size given: refine the tier batch with a peak-memory probe."""
        if not self.device.startswith("cuda") or self.tc.batch_size is not None:
            return
        idx, rng = np.arange(min(self.local_effective, len(self.train_set))), torch.get_rng_state()

        def step_fn(batch_size: int) -> None:
            try:
                accumulate_gradients(self.model, self.selector, idx[:batch_size], batch_size, self.spec, device=self.device, autocast=self.autocast)
            finally:
                self.optimizer.zero_grad(set_to_none=True)

        adam_state = 2 * sum(p.numel() * p.element_size() for p in self.model.parameters())
        self.batch = probe_cuda_batch(step_fn, self.batch, self.local_effective, self.device, reserve_bytes=adam_state)
        torch.set_rng_state(rng)

    # -- the loop --------------------------------------------------------------------
    def decide(self, decision) -> tuple[bool, bool]:
        """(stop, prune) as decided by rank 0's reporter, identical on every process."""
        flags = [int(decision == "stop"), int(decision == "prune")]
        stop, prune = self.dist.broadcast_flags(flags)
        return bool(stop), bool(prune)

    def poll_stop(self) -> bool:
        flag = int(self.reporter.should_stop()) if self.dist.is_main else 0
        return bool(self.dist.broadcast_flags([flag])[0])

    def run(self) -> TrainResult:
        try:
            while self.step < self.total_steps:
                if self.poll_stop():
                    self.checkpoint(None)
                    return self.result("stopped")
                outcome = self.one_step()
                if outcome is not None:
                    return outcome
            return self.result("completed")
        except _Failed as exc:
            return self.result("failed", error=str(exc))

    def one_step(self) -> Optional[TrainResult]:
        metrics = self.train_step()
        step_epoch = self.epoch
        self.step, self.pos = self.step + 1, self.pos + 1
        epoch_done = self.pos >= self.steps_per_epoch
        if epoch_done:
            self.epoch, self.pos = self.epoch + 1, 0
        evaluated, early = self.eval_due(epoch_done), False
        if evaluated:
            val_metrics, early = self.validate()
            metrics |= val_metrics | {"tokens": float(self.tokens), "flops": self.tokens * self.flops_per_token}
        decision = self.reporter.report(self.step, step_epoch, metrics) if self.dist.is_main else None
        stop, prune = self.decide(decision)
        if prune:
            return self.result("pruned")
        if stop or early or self.checkpoint_due(evaluated):
            self.checkpoint(metrics.get("val_loss"))
        if stop:
            return self.result("stopped")
        if early:
            return self.result("completed", early_stopped=True)
        return None

    def checkpoint_due(self, evaluated: bool) -> bool:
        """At the last step; every checkpoint_every_steps; and at each evaluation (when no
        interval is set) or at an evaluation that improved the best (so the best is kept)."""
        every = self.tc.checkpoint_every_steps
        if self.step >= self.total_steps or (every and self.step % every == 0):
            return True
        return evaluated and (not every or self.best_step == self.step)

    def result(self, status: Status, error: Optional[str] = None, early_stopped: bool = False) -> TrainResult:
        best = self.best_step
        return TrainResult(
            status=status,
            best_val_loss=None if best is None else float(self.best_val),
            best_step=best,
            step=self.step,
            epoch=self.epoch,
            batch_config=self.batch.as_dict(),
            error=error,
            tokens_per_s=(self.tokens - self.tokens_at_start) / max(self.train_time, 1e-9),
            early_stopped=early_stopped,
            best_metrics=dict(self.best_metrics),
            latest_checkpoint=self.latest_path,
            best_checkpoint=None if best is None else checkpoint_path(self.dir, best),
            tokens=self.tokens,
            flops=self.tokens * self.flops_per_token,
        )


def train(
    cfg: TrialConfig,
    train_set: WindowSet,
    val_set: WindowSet,
    reporter: Reporter,
    *,
    checkpoint_dir: Path,
    resume_from: Optional[Path] = None,
    device: str = "cpu",
) -> TrainResult:
    """Train one trial. Never raises for a diverging run (status "failed" with the reason);
    raises ConfigError / DataError for unusable inputs and TrainingError for a corrupt or
    mismatched checkpoint."""
    run = _Run(cfg, train_set, val_set, reporter, checkpoint_dir, device)
    if resume_from is not None:
        run.restore(Path(resume_from))
    else:
        run.probe_batch()
    run.tokens_at_start = run.tokens
    return run.run()
