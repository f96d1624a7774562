"""`seqdb train`: the final training with the best parameters, the test report, the ONNX pair.

As the seeds do: tune at reduced epochs, then train the winner fully. The final run is a
study of kind `final` for the same (experiment, budget, horizon) holding one trial per final
configuration; it is claimed, trained, checkpointed and recorded by the runner's own worker
loop (the DB reporter, buffered metrics, registered checkpoints), so an interrupted final
training resumes from its last checkpoint when `seqdb train` is run again, and a completed
one is not trained twice.

Afterwards, and only then, the **test** split is touched: the best checkpoint is evaluated
on it (loss and task metrics, recorded as `test_*` metrics of the final trial), compared
with naive baselines (`seqdb.results.report`), and exported to ONNX as a generative and an
embedding model, each verified with ONNX Runtime and registered as an `artifact` with its
sha256, like the report itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import sqlalchemy as sa
import torch
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from seqdb.config.study import study_config
from seqdb.config.trial import DataSpec, TrialConfig
from seqdb.data.prepared import resolve_dataset_path
from seqdb.db.engine import session_scope
from seqdb.db.models import FINISHED_STATES, Artifact, Checkpoint, Dataset, Metric, Study, Trial, TrialState
from seqdb.errors import NotFoundError, TrainingError
from seqdb.results.best import BestTrial, best_trial, find_study, write_json_atomic
from seqdb.results.onnx_export import ExportedModel, export_pair, sha256_file
from seqdb.results.report import TargetInfo, TestReport, build_report, collect_outputs, persistence, score_rows
from seqdb.results.spec import InferenceSpec, InputSpec, TargetOut

REPORT_KIND = "test_report"
ONNX_KINDS = {"generative": "onnx_generative", "embedding": "onnx_embedding"}

Say = Callable[[str], None]


@dataclass
class FinalResult:
    study_id: int
    trial_id: int
    trained: bool  # False: the final trial was already completed, or reused the search trial's checkpoint
    test_metrics: dict[str, float]
    report: TestReport
    artifacts: list[Artifact] = field(default_factory=list)
    start: str = "trained"  # reused | continued | trained | done (completed by an earlier `seqdb train`)


@dataclass(frozen=True)
class Start:
    """How the final trial starts from the search trial it is the final run of.

    reuse     the final config is the search trial's (label aside): its best checkpoint IS the
              final model; nothing is trained
    continue  only the length grew (more epochs / no max_steps): training resumes from the
              search trial's latest checkpoint (model, optimizer, schedule position, early
              stopping state) and runs to the new length
    train     anything else (or no checkpoint file left): from scratch
    """

    how: str
    reason: str
    checkpoint: Optional[Checkpoint] = None


# --------------------------------------------------------------------------------------
# the final study and its trial
# --------------------------------------------------------------------------------------
def final_config(best: BestTrial, epochs: int) -> TrialConfig:
    """The best trial's config, trained for `epochs` (early stopping still applies)."""
    cfg = TrialConfig.model_validate(best.config)
    training = cfg.training.model_copy(update={"max_epochs": int(epochs), "max_steps": None})
    return cfg.model_copy(update={"training": training, "label": f"final of trial {best.trial_id}"})


def default_epochs(engine: Engine, experiment: str) -> int:
    """The experiment's `training.max_epochs` (the search may have used fewer)."""
    from seqdb.experiment.registry import get_experiment

    row, _cfg = get_experiment(engine, experiment)
    return int((row.config.get("training") or {}).get("max_epochs", 10))


def ensure_final_trial(engine: Engine, project, best: BestTrial, cfg: TrialConfig, start: Optional[Start] = None) -> tuple[int, int]:  # noqa: ANN001
    """(final study id, trial id): the study of kind `final` and a trial with this config,
    made from the search trial's checkpoint when `start` says reuse or continue."""
    from seqdb.search.study import ensure_study

    study = ensure_study(engine, project, best.experiment, best.budget, best.horizon, kind="final")
    digest, start = cfg.config_hash(), start or Start("train", "")
    root = Path(project.artifacts_root)
    try:
        return study.study_id, _insert_final_trial(engine, study.study_id, best, cfg, digest, start, root)
    except IntegrityError:  # a concurrent `seqdb train` inserted the same trial first: use it
        return study.study_id, _insert_final_trial(engine, study.study_id, best, cfg, digest, start, root)


def _insert_final_trial(engine: Engine, study_id: int, best: BestTrial, cfg: TrialConfig, digest: str, start: Start, root: Path) -> int:
    with session_scope(engine) as s:
        _never_prune(s, study_id)
        # -- one trial per distinct final config; re-running `seqdb train` finds it again
        existing = s.execute(sa.select(Trial.trial_id).where(Trial.study_id == study_id, Trial.config_hash == digest)).scalar_one_or_none()
        if existing is not None:
            return int(existing)
        number = s.execute(sa.select(sa.func.coalesce(sa.func.max(Trial.number) + 1, 0)).where(Trial.study_id == study_id)).scalar_one()
        trial = Trial(
            study_id=study_id, number=int(number), config_hash=digest, config=cfg.model_dump(mode="json"),
            params={**best.params, "source_trial_id": best.trial_id, "start": start.how}, label=cfg.label,
            architecture_id=best.architecture.get("architecture_id"), param_count=best.architecture.get("param_count"),
        )
        s.add(trial)
        s.flush()
        if start.checkpoint is not None:  # in the same transaction: a crash leaves no half-made final trial
            _adopt_checkpoint(s, trial, best.trial_id, start, root / "trials" / str(trial.trial_id))
        return int(trial.trial_id)


# --------------------------------------------------------------------------------------
# starting from the search trial: reuse its best checkpoint, or continue its latest
# --------------------------------------------------------------------------------------
def plan_start(engine: Engine, best: BestTrial, cfg: TrialConfig) -> Start:
    """reuse / continue / train (see `Start`) for the final config `cfg` of `best`."""
    search = TrialConfig.model_validate(best.config)
    same = lambda a, b: a.model_dump(mode="json", exclude={"label"}) == b.model_dump(mode="json", exclude={"label"})  # noqa: E731
    if same(cfg, search):
        ckpt = _search_checkpoint(engine, best.trial_id, best=True)
        if ckpt is None:
            return Start("train", f"search trial {best.trial_id} has the same configuration but no checkpoint file left")
        return Start("reuse", f"the final configuration is search trial {best.trial_id}'s", ckpt)
    length = {"max_epochs", "max_steps"}
    if same(cfg.model_copy(update={"training": cfg.training.model_copy(update={k: getattr(search.training, k) for k in length})}), search):
        if _same_length(engine, best, search, cfg):
            ckpt = _search_checkpoint(engine, best.trial_id, best=True)  # the search's max_steps never bit: the same run
            if ckpt is not None:
                return Start("reuse", f"search trial {best.trial_id}'s max_steps cap was above its epochs' steps, so its run is the final one", ckpt)
        if cfg.training.max_epochs < search.training.max_epochs:
            return Start("train", f"fewer epochs ({cfg.training.max_epochs}) than search trial {best.trial_id} trained ({search.training.max_epochs})")
        ckpt = _search_checkpoint(engine, best.trial_id, best=False)
        if ckpt is None:
            return Start("train", f"search trial {best.trial_id} has no checkpoint file left to continue")
        return Start("continue", f"only the length differs from search trial {best.trial_id}", ckpt)
    return Start("train", f"the final configuration differs from search trial {best.trial_id}'s")


def _same_length(engine: Engine, best: BestTrial, search: TrialConfig, cfg: TrialConfig) -> bool:
    """Same epochs and the search's max_steps cap above their steps: the same total steps,
    the same schedule, the same run."""
    if cfg.training.max_epochs != search.training.max_epochs:
        return False
    with session_scope(engine, write=False) as s:
        dataset = s.get(Dataset, s.get(Study, best.study_id).dataset_id)
        n_windows = int(((dataset.splits if dataset else {}).get("train") or {}).get("windows") or 0)
    return n_windows > 0 and search.training.total_steps(n_windows) == cfg.training.total_steps(n_windows)


def _search_checkpoint(engine: Engine, trial_id: int, *, best: bool) -> Optional[Checkpoint]:
    """The search trial's best (or latest) registered checkpoint whose file is intact."""
    from seqdb.hashing import file_sha256

    order = (Checkpoint.is_best.desc(), Checkpoint.step.desc()) if best else (Checkpoint.step.desc(),)
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Checkpoint).where(Checkpoint.trial_id == trial_id).order_by(*order)).scalars().all()
        for row in rows:
            if (row.is_best or not best) and Path(row.path).is_file() and file_sha256(Path(row.path)) == row.sha256:
                s.expunge(row)
                return row
    return None


def _adopt_checkpoint(s, trial: Trial, source_id: int, start: Start, folder: Path) -> None:  # noqa: ANN001 - a Session
    """Give the new final trial its own copy (a hard link when possible) of the search
    checkpoint, its metrics up to that step and — for reuse — the search trial's result."""
    import os
    import shutil

    from seqdb.train.checkpoint import SIDECAR, checkpoint_path

    src, ckpt = s.get(Trial, source_id), start.checkpoint
    dst = checkpoint_path(folder, ckpt.step)
    folder.mkdir(parents=True, exist_ok=True)
    for a, b in ((Path(ckpt.path), dst), (Path(ckpt.path + SIDECAR), Path(str(dst) + SIDECAR))):
        if a.is_file() and not b.exists():
            try:
                os.link(a, b)
            except OSError:
                shutil.copy2(a, b)
    s.add(Checkpoint(trial_id=trial.trial_id, path=str(dst), bytes=ckpt.bytes, sha256=ckpt.sha256, step=ckpt.step, epoch=ckpt.epoch,
                     val_loss=ckpt.val_loss, is_best=ckpt.is_best, attempt=0))
    _copy_metrics(s, source_id, trial.trial_id, ckpt.step if start.how == "continue" else None)
    trial.step, trial.epochs_done, trial.batch_config, trial.seed = ckpt.step, ckpt.epoch, src.batch_config, src.seed
    trial.best_val_loss, trial.best_step = (src.best_val_loss, src.best_step) if ckpt.is_best or start.how == "reuse" else (None, None)
    if start.how == "reuse":
        trial.state, trial.values, trial.tokens, trial.flops, trial.env = TrialState.completed.value, src.values, src.tokens, src.flops, src.env
        trial.started_at, trial.finished_at, trial.epochs_done, trial.step = src.started_at, src.finished_at, src.epochs_done, src.step


def _copy_metrics(s, source_id: int, target_id: int, up_to_step: Optional[int]) -> None:  # noqa: ANN001 - a Session
    """The search trial's metric rows (up to `up_to_step`), as the final trial's: one curve."""
    cols = (Metric.step, Metric.epoch, Metric.name, Metric.value, Metric.time)
    rows = sa.select(sa.literal(target_id), *cols).where(Metric.trial_id == source_id)
    if up_to_step is not None:
        rows = rows.where(Metric.step <= up_to_step)
    s.execute(sa.insert(Metric).from_select(["trial_id", "step", "epoch", "name", "value", "time"], rows))


def _never_prune(s, study_id: int) -> None:  # noqa: ANN001 - a Session
    """A final run is trained to the end (early stopping aside): the final study gets no pruner,
    whatever the search used."""
    study = s.get(Study, study_id)
    config = study_config(study)
    if study.pruner != "none" or config.search.pruner.name != "none":
        search = config.search.model_copy(update={"pruner": config.search.pruner.model_copy(update={"name": "none"})})
        study.config = config.model_copy(update={"search": search}).model_dump(mode="json")
        study.pruner = "none"


def trial_state(engine: Engine, trial_id: int) -> Trial:
    with session_scope(engine, write=False) as s:
        trial = s.get(Trial, trial_id)
        s.expunge(trial)
        return trial


def open_trials(engine: Engine, study_id: int) -> int:
    with session_scope(engine, write=False) as s:
        return int(s.execute(
            sa.select(sa.func.count()).select_from(Trial).where(Trial.study_id == study_id, Trial.state.not_in(FINISHED_STATES))
        ).scalar_one())  # fmt: skip


def run_final_trial(project, study_id: int, device: str, say: Say) -> None:  # noqa: ANN001
    """Train the final study's open trial with the runner's worker loop (one trial, then exit)."""
    from seqdb.runner.execute import TrainExecutor
    from seqdb.runner.worker import WorkerSettings, run_worker

    settings = WorkerSettings(
        database_url=project.database_url, study_ids=[study_id], artifacts_root=str(project.artifacts_root),
        device=device, once=True, label="final",
    )  # fmt: skip
    import signal

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = run_worker(settings, TrainExecutor(str(project.artifacts_root)))  # SIGINT / SIGTERM: checkpoint and stop, resumable
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if summary.stop_reason:
        raise TrainingError(f"final training stopped ({summary.stop_reason}); run `seqdb train` again to resume from its last checkpoint")


# --------------------------------------------------------------------------------------
# the trained model, the prepared data, the inference spec
# --------------------------------------------------------------------------------------
def best_checkpoint(engine: Engine, trial_id: int) -> Checkpoint:
    """The final trial's best checkpoint whose file still exists (else the latest one)."""
    with session_scope(engine, write=False) as s:
        rows = s.execute(
            sa.select(Checkpoint).where(Checkpoint.trial_id == trial_id)
            .order_by(Checkpoint.is_best.desc(), Checkpoint.step.desc())
        ).scalars().all()  # fmt: skip
        for row in rows:
            if Path(row.path).is_file():
                s.expunge(row)
                return row
    raise NotFoundError(f"trial {trial_id}: no checkpoint file found; run `seqdb train` again")


def load_model(cfg: TrialConfig, checkpoint: Checkpoint) -> torch.nn.Module:
    from seqdb.model.transformer import CausalTransformer
    from seqdb.train.checkpoint import load_checkpoint

    state = load_checkpoint(Path(checkpoint.path), verify_sha256=checkpoint.sha256)
    model = CausalTransformer(cfg.model, cfg.data)
    model.load_state_dict(state["model"])
    return model.eval()


def dataset_folder(engine: Engine, project, study_id: int) -> Path:  # noqa: ANN001
    with session_scope(engine, write=False) as s:
        study = s.get(Study, study_id)
        dataset = s.get(Dataset, study.dataset_id) if study.dataset_id is not None else None
        if dataset is None:
            raise NotFoundError(f"study {study.name}: no prepared dataset recorded; run `seqdb data prepare`")
        path = dataset.path
    return resolve_dataset_path(path, project.artifacts_root, project.root)


def inference_spec(data, data_spec: DataSpec, source: dict) -> InferenceSpec:  # noqa: ANN001 - a PreparedData
    """Everything `seqdb infer` needs, from the prepared dataset and the trial's DataSpec."""
    meta, stats, horizon = data.meta, data.statistics, data_spec.horizon
    real = [InputSpec(name=c.name, kind="real", mean=stats["real"][c.name]["mean"], std=stats["real"][c.name]["std"]) for c in data_spec.real_inputs]
    cat = [InputSpec(name=c.name, kind="categorical", id_map=dict(data.id_maps[c.name])) for c in data_spec.categorical_inputs]
    by_name = {t["name"]: t for t in data.targets}
    targets = [_target_out(by_name[t.name], t, data, horizon) for t in data_spec.targets]
    return InferenceSpec(
        context_length=data_spec.context_length, horizon=horizon, sequence_column=meta["sequence_column"],
        position_column=meta["position_column"], nan_policy=meta.get("nan_policy", "error"), real_inputs=real,
        cat_inputs=cat, targets=targets, dataset_hash=data.content_hash, source=source,
    )  # fmt: skip


def _target_out(meta: dict, t, data, horizon: int) -> TargetOut:  # noqa: ANN001
    task, column = meta.get("task"), meta.get("column")
    # a horizon-1 prediction of the column's next value can be fed back as that column
    feeds = column if horizon == 1 and (task == "next_category" or (task == "regression" and meta.get("aggregate") in ("last", "sum"))) else None
    if t.kind == "real":
        st = data.statistics["targets"][t.name][str(horizon)]
        return TargetOut(name=t.name, kind="real", mean=st["mean"], std=st["std"], task=task, column=column, feeds_input=feeds)
    if task == "next_category":
        decode = data.decode_category(column)
        classes = [decode.get(i, str(i)) for i in range(t.n_classes)]
    elif task == "threshold":
        classes = [f"<= {meta.get('threshold')}", f"> {meta.get('threshold')}"]
    else:
        classes = ["down", "up"]
    return TargetOut(name=t.name, kind="categorical", n_classes=t.n_classes, classes=classes, task=task, column=column, feeds_input=feeds)


# --------------------------------------------------------------------------------------
# the test split: metrics and the report
# --------------------------------------------------------------------------------------
def torch_predict(model: torch.nn.Module) -> Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]:
    @torch.no_grad()
    def predict(real: np.ndarray, cat: np.ndarray) -> dict[str, np.ndarray]:
        out = model(torch.from_numpy(np.ascontiguousarray(real)), torch.from_numpy(np.ascontiguousarray(cat)))
        return {k: v.float().numpy() for k, v in out.items()}

    return predict


def target_infos(data, data_spec: DataSpec, train_set) -> list[TargetInfo]:  # noqa: ANN001
    """Per target: kind, task, units and the training split's class frequencies / mean."""
    rows = score_rows(train_set)
    metas = {t["name"]: t for t in data.targets}
    infos = []
    for t in data_spec.targets:
        y = np.asarray(train_set.targets[t.name])[rows]
        info = TargetInfo(name=t.name, kind=t.kind, n_classes=t.n_classes, task=metas[t.name].get("task"))
        if t.kind == "categorical":
            y = y[y >= 0]
            info.train_class_freq = (np.bincount(y, minlength=t.n_classes) + 1e-3).tolist()  # never log(0)
        else:
            st = data.statistics["targets"][t.name][str(data_spec.horizon)]
            info.mean, info.std = float(st["mean"]), float(st["std"])
            y = y[np.isfinite(y)]
            info.train_mean = float(y.mean()) if y.size else 0.0
        infos.append(info)
    return infos


def test_report(model, data, data_spec: DataSpec, *, resamples: int, seed: int) -> tuple[dict[str, float], TestReport]:  # noqa: ANN001
    """Test-split metrics (the trainer's evaluate, every position) and the baseline report."""
    from seqdb.train.trainer import evaluate

    horizon = data_spec.horizon
    test_set = data.windows("test", horizon)
    if len(test_set) == 0:
        raise NotFoundError("the test split has no windows; prepare the data with a larger split.test")
    metrics = {f"test_{k}": float(v) for k, v in evaluate(model, test_set, data_spec).items()}
    rows = score_rows(test_set)
    from seqdb.train.data import Selector

    selector = Selector(data_spec, test_set)  # the trial's input columns, in its order

    def select(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = selector.batch(idx)
        return b.real.numpy(), b.cat.numpy()

    outputs = collect_outputs(torch_predict(model), test_set, select=select)
    y = {t.name: np.asarray(test_set.targets[t.name])[rows] for t in data_spec.targets}
    prev = {t.name: persistence(test_set, t.name, horizon) for t in data_spec.targets}
    infos = target_infos(data, data_spec, data.windows("train", horizon))
    return metrics, build_report(infos, y, outputs, prev, resamples=resamples, seed=seed)


def record_test_metrics(engine: Engine, trial_id: int, step: int, metrics: dict[str, float]) -> None:
    """`test_*` metric rows of the final trial (replacing an earlier evaluation's)."""
    now = time.time()
    with session_scope(engine) as s:
        s.execute(sa.delete(Metric).where(Metric.trial_id == trial_id, Metric.name.in_(list(metrics))))
        s.add_all(Metric(trial_id=trial_id, step=step, name=k, value=v, time=now) for k, v in metrics.items() if np.isfinite(v))


def register_artifacts(engine: Engine, trial_id: int, study_id: int, dataset_id: Optional[int], items: list[tuple[str, Path, dict]]) -> list[Artifact]:
    """Artifact rows (kind, path, bytes, sha256) in one transaction; a trial's earlier row of
    the same kind is replaced."""
    rows = []
    with session_scope(engine) as s:
        for kind, path, meta in items:
            s.execute(sa.delete(Artifact).where(Artifact.trial_id == trial_id, Artifact.kind == kind))
            row = Artifact(kind=kind, path=str(Path(path).resolve()), bytes=Path(path).stat().st_size, sha256=sha256_file(path),
                           trial_id=trial_id, study_id=study_id, dataset_id=dataset_id, meta=meta)
            s.add(row)
            rows.append(row)
        s.flush()
        for row in rows:
            s.refresh(row)
            s.expunge(row)
    return rows


# --------------------------------------------------------------------------------------
# the whole command
# --------------------------------------------------------------------------------------
def final_training(
    engine: Engine, project, budget: str, horizon: int, *, experiment: Optional[str] = None, epochs: Optional[int] = None,  # noqa: ANN001
    device: str = "cpu", resamples: int = 1000, export: bool = True, say: Say = print,
) -> FinalResult:
    from seqdb.data.prepared import open_prepared

    best = best_trial(engine, budget, horizon, experiment)
    cfg = final_config(best, epochs or default_epochs(engine, best.experiment))
    start = plan_start(engine, best, cfg)
    study_id, trial_id = ensure_final_trial(engine, project, best, cfg, start)
    trial = trial_state(engine, trial_id)
    made = (trial.params or {}).get("start", "train")  # how the final trial was made (now or by an earlier run)
    trained = trial.state != TrialState.completed.value
    how = made if trained or made == "reuse" else "done"
    say(_start_line(how, start, best, cfg, trial))
    if trained:
        for _ in range(open_trials(engine, study_id)):  # an older unfinished final config may be claimed first
            run_final_trial(project, study_id, device, say)
            trial = trial_state(engine, trial_id)
            if trial.state in FINISHED_STATES:
                break
    if trial.state != TrialState.completed.value:
        raise TrainingError(f"final trial {trial_id} ended {trial.state}: {trial.error or 'no reason recorded'}")
    ckpt = best_checkpoint(engine, trial_id)
    model = load_model(cfg, ckpt)
    folder = dataset_folder(engine, project, study_id)
    data = open_prepared(folder)
    say(f"evaluating checkpoint step {ckpt.step} on the test split")
    metrics, rep = test_report(model, data, cfg.data, resamples=resamples, seed=cfg.seed)
    record_test_metrics(engine, trial_id, ckpt.step, metrics)
    out_dir = Path(project.artifacts_root) / "final" / f"trial-{trial_id}"
    report_path = write_json_atomic(out_dir / "test_report.json", {"trial_id": trial_id, "checkpoint_step": ckpt.step, "metrics": metrics, "report": rep.to_json()})
    items = [(REPORT_KIND, report_path, {"metrics": metrics, "report": rep.to_json(), "checkpoint_step": ckpt.step})]
    if export:
        items += _export(model, data, cfg, best, trial_id, study_id, out_dir, say)
    with session_scope(engine, write=False) as s:
        dataset_id = s.get(Study, study_id).dataset_id
    artifacts = register_artifacts(engine, trial_id, study_id, dataset_id, items)
    return FinalResult(study_id, trial_id, trained, metrics, rep, artifacts, start={"reuse": "reused", "continue": "continued", "train": "trained"}.get(how, how))


def _start_line(how: str, start: Start, best: BestTrial, cfg: TrialConfig, trial: Trial) -> str:
    """What `seqdb train` does with the final trial, in one line."""
    epochs, t = cfg.training.max_epochs, trial.trial_id
    if how == "done":
        return f"final trial {t} was trained by an earlier `seqdb train`; nothing to train"
    if how == "reuse":
        return (f"reusing search trial {best.trial_id}'s best checkpoint (step {trial.best_step}) as final trial {t}: "
                f"the final configuration is identical; nothing to train")
    if how == "continue":
        return f"continuing search trial {best.trial_id} from its checkpoint at step {trial.step} (epoch {trial.epochs_done}) to {epochs} epochs (final trial {t})"
    why = f" ({start.reason})" if start.how == "train" and start.reason else ""
    return f"final training of trial {best.trial_id}'s configuration from scratch for up to {epochs} epochs (final trial {t}){why}"


def _export(model, data, cfg: TrialConfig, best: BestTrial, trial_id: int, study_id: int, out_dir: Path, say: Say) -> list[tuple[str, Path, dict]]:  # noqa: ANN001
    source = {"experiment": best.experiment, "budget": best.budget, "horizon": best.horizon, "trial_id": trial_id, "study_id": study_id, "source_trial_id": best.trial_id}
    spec = inference_spec(data, cfg.data, source).model_copy(update={"d_model": cfg.model.d_model})
    say("exporting the generative and embedding models to ONNX (verified with ONNX Runtime)")
    exported: list[ExportedModel] = export_pair(model, spec, out_dir, stem=f"seqdb-{best.budget}-h{best.horizon}-trial{trial_id}",
                                                verify_inputs=_test_feeds(data, cfg.data, spec))
    return [(ONNX_KINDS[e.kind], e.path, {"max_abs_diff": e.max_abs_diff, "outputs": e.output_names, "exporter": e.exporter, "context_length": spec.context_length}) for e in exported]


def _test_feeds(data, data_spec: DataSpec, spec: InferenceSpec, n: int = 4) -> Optional[dict[str, np.ndarray]]:  # noqa: ANN001
    """The first test windows as ONNX feeds (the export is verified on real data too)."""
    from seqdb.results.onnx_export import CAT_INPUT, REAL_INPUT
    from seqdb.train.data import Selector

    test_set = data.windows("test", data_spec.horizon)
    if len(test_set) == 0:
        return None
    b = Selector(data_spec, test_set).batch(np.arange(min(n, len(test_set))))
    feeds = {REAL_INPUT: b.real.numpy(), CAT_INPUT: b.cat.numpy()}
    return {k: v for k, v in feeds.items() if (k == REAL_INPUT and spec.real_inputs) or (k == CAT_INPUT and spec.cat_inputs)}


# --------------------------------------------------------------------------------------
# reading results back
# --------------------------------------------------------------------------------------
def load_report(engine: Engine, budget: str, horizon: int, experiment: Optional[str] = None) -> TestReport:
    """The latest test report of the final study for (experiment, budget, horizon)."""
    from seqdb.results.report import Comparison, MetricRow

    with session_scope(engine, write=False) as s:
        try:
            study, bud, exp = find_study(s, budget, horizon, experiment, kind="final")
        except NotFoundError:
            raise NotFoundError(f"no test report for budget {budget} horizon {horizon}: no final training yet; run `seqdb train --budget {budget} --horizon {horizon}`") from None
        row = s.execute(
            sa.select(Artifact).where(Artifact.study_id == study.study_id, Artifact.kind == REPORT_KIND)
            .order_by(Artifact.created_at.desc(), Artifact.artifact_id.desc()).limit(1)
        ).scalars().first()  # fmt: skip
        if row is None:
            raise NotFoundError(f"no test report for budget {bud.label} horizon {horizon} in experiment {exp.name!r}; run `seqdb train --budget {bud.label} --horizon {horizon}`")
        data = dict(row.meta["report"])
    rows = [MetricRow(**{**r, "comparisons": [Comparison(**c) for c in r["comparisons"]]}) for r in data.pop("rows")]
    return TestReport(rows=rows, **data)


def artifact_file(engine: Engine, artifact_id: int) -> tuple[Path, str]:
    """(path, sha256) of an artifact row."""
    with session_scope(engine, write=False) as s:
        row = s.get(Artifact, artifact_id)
        if row is None:
            raise NotFoundError(f"artifact {artifact_id} does not exist; list them with `seqdb sql \"SELECT artifact_id, kind, path FROM tables.artifact\"`")
        return Path(row.path), row.sha256

