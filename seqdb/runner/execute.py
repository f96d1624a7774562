"""The real executor: one claimed trial trained by `seqdb.train.trainer.train`.

    warm_up  <- at worker start, in a background thread: torch, torch.optim (which pulls in
                torch._dynamo, ~4 s cold), the trainer and a tiny optimizer step, so the
                first trial pays none of it
    config   <- trial.config (a TrialConfig)
    windows  <- the study's prepared dataset (train / val split at the study's horizon),
                opened once per dataset and kept open across trials
    train(cfg, train, val, DbReporter, checkpoint_dir=<artifacts>/trials/<id>,
          resume_from=<latest registered checkpoint>, device)
    outcome  <- status, best val loss, steps, batch config, objective values
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from sqlalchemy.engine import Engine

from seqdb.db.engine import session_scope
from seqdb.db.models import Dataset, Study, Trial
from seqdb.errors import DataError
from seqdb.runner.env import record_env
from seqdb.runner.queue import Lease, TrialOutcome
from seqdb.runner.executor import SetupError, TrialRun


log = logging.getLogger("seqdb.runner")


class TrainExecutor:
    def __init__(self, artifacts_root: str = "artifacts"):
        self.artifacts_root = artifacts_root
        self._windows: dict[tuple[str, int], tuple] = {}  # (dataset folder, horizon) -> (train, val)
        self._dataset_of: dict[int, str] = {}  # study_id -> its prepared folder
        self._studies: dict[int, Study] = {}  # study_id -> its row (objectives and pruner do not change during a run)
        self._warm: threading.Thread | None = None

    def __getstate__(self) -> dict:  # `--workers N` pickles the executor: only its settings travel
        return {"artifacts_root": self.artifacts_root}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["artifacts_root"])

    def warm_up(self, device: str = "cpu") -> Callable[[], None]:
        """Start the worker's one-time start-up in a background thread; returns the wait for it
        (the worker waits before its first claim, so no lease is held while torch loads)."""
        if self._warm is None:
            self._warm = threading.Thread(target=warm_up, args=(device,), name="seqdb-warm-up", daemon=True)
            self._warm.start()
        return self._warm.join

    def study(self, engine: Engine, study_id: int) -> Study:
        """The study's row, read once per study (detached)."""
        if study_id not in self._studies:
            with session_scope(engine, write=False) as s:
                self._studies[study_id] = s.get(Study, study_id)
        return self._studies[study_id]

    def pruner(self, engine: Engine, lease: Lease):  # noqa: ANN201
        from seqdb.search.optuna_view import study_spec
        from seqdb.search.pruning import should_prune

        if study_spec(self.study(engine, lease.study_id)).pruner.name == "none":
            return None
        return lambda step, val_loss: should_prune(engine, lease.study_id, lease.trial_id, step, val_loss)

    def dataset_folder(self, engine: Engine, study_id: int) -> str:
        """The study's prepared folder (looked up once per study)."""
        if study_id not in self._dataset_of:
            from seqdb.data.prepared import resolve_dataset_path

            study = self.study(engine, study_id)  # the cached row: no second read of the study
            with session_scope(engine, write=False) as s:
                dataset = s.get(Dataset, study.dataset_id) if study.dataset_id else None
            if dataset is None:
                raise DataError(f"study {study_id} has no prepared dataset; run `seqdb data prepare`")
            self._dataset_of[study_id] = str(resolve_dataset_path(dataset.path, self.artifacts_root))
        return self._dataset_of[study_id]

    def windows(self, engine: Engine, study_id: int, horizon: int):  # noqa: ANN201
        """(train, validation) windows; the arrays of one dataset stay open across trials and studies."""
        key = (self.dataset_folder(engine, study_id), horizon)
        if key not in self._windows:
            from seqdb.data.prepared import open_prepared

            prepared = open_prepared(key[0])
            self._windows[key] = (prepared.windows("train", horizon), prepared.windows("validation", horizon))
        return self._windows[key]

    def __call__(self, run: TrialRun) -> TrialOutcome:
        from seqdb.config.trial import TrialConfig
        from seqdb.train.trainer import train

        if self._warm is not None:  # a worker that started the warm-up waits for it here at the latest
            self._warm.join()
        try:  # a problem here is the setup's, not the trial's: the worker stops, the trial stays runnable
            cfg = TrialConfig.model_validate(run.lease.config)
            train_set, val_set = self.windows(run.engine, run.lease.study_id, cfg.horizon)
        except Exception as exc:
            raise SetupError(exc) from exc
        record_env(run.engine, run.lease)  # threads, versions, commit, host: trial.env
        run.progress.total_steps = cfg.training.total_steps(len(train_set))
        resume = run.resume.path if run.resume is not None else None
        result = train(cfg, train_set, val_set, run.reporter, checkpoint_dir=run.checkpoint_dir, resume_from=resume, device=run.device)
        values = None
        if result.status in ("completed", "pruned") and result.best_val_loss is not None:
            values = self.objectives(run.engine, run.lease, cfg, result, val_set, run.device)
        return TrialOutcome(state=result.status, best_val_loss=result.best_val_loss, best_step=result.best_step, step=result.step,
                            epochs_done=result.epoch, batch_config=result.batch_config, values=values, error=result.error,
                            tokens=result.tokens, flops=result.flops)

    def objectives(self, engine: Engine, lease: Lease, cfg, result, val_set, device: str) -> list[float]:  # noqa: ANN001
        from seqdb.search.study import objective_values

        study = self.study(engine, lease.study_id)
        with session_scope(engine, write=False) as s:
            trial = s.get(Trial, lease.trial_id)
        names = {o["name"] for o in study.objectives}
        metrics = {**result.best_metrics, "val_loss": result.best_val_loss, "tokens_per_s": result.tokens_per_s}
        if "latency_ms" in names and result.best_checkpoint is not None:
            metrics["latency_ms"] = latency_ms(cfg, Path(result.best_checkpoint), val_set, device)
        return objective_values(metrics, study, trial=trial)


def warm_up(device: str = "cpu") -> None:
    """Everything the first trial would otherwise pay for once: torch and its optimizers
    (AdamW's first use imports torch._dynamo), the trainer and model modules, a tiny forward /
    backward / AdamW step with causal attention on `device`, and torch.save. Failures are
    logged only: the first trial then meets the same problem and reports it properly."""
    try:
        import io

        import torch
        import torch._dynamo  # noqa: F401  (what torch.optim pulls in on first use)

        import seqdb.train.trainer  # noqa: F401  (model, batching, checkpoint, data)

        layer = torch.nn.Linear(8, 8).to(device)
        optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-3, fused=None)
        x = torch.randn(2, 2, 4, 8, device=device)  # [batch, heads, time, head_dim]
        y = torch.nn.functional.scaled_dot_product_attention(x, x, x, is_causal=True)
        layer(y).float().square().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.save({"model": layer.state_dict(), "optimizer": optimizer.state_dict()}, io.BytesIO())
    except Exception as exc:  # noqa: BLE001 - a warm-up must never stop a worker
        log.warning("warm-up on %s failed (%s); the first trial will pay its start-up", device, exc)


def latency_ms(cfg, checkpoint: Path, val_set, device: str, repeats: int = 20) -> float:  # noqa: ANN001
    """Median forward time of the best model on one validation window (batch 1)."""
    import numpy as np
    import torch

    from seqdb.model.transformer import CausalTransformer
    from seqdb.train.checkpoint import load_checkpoint
    from seqdb.train.data import Selector

    model = CausalTransformer(cfg.model, cfg.data).to(device)
    model.load_state_dict(load_checkpoint(checkpoint)["model"])
    model.eval()
    batch = Selector(cfg.data, val_set).batch(np.arange(1), device=device)
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(repeats + 3):
            t0 = time.perf_counter()
            model(batch.real, batch.cat)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1000)
    return float(sorted(times[3:])[len(times[3:]) // 2])


__all__ = ["TrainExecutor", "latency_ms", "warm_up"]
