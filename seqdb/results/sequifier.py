"""`seqdb trial export ID --format sequifier`: the sequence toolkit's own preprocess and train
configs (sequifier 3.1, the `sequifier make` layout) for the same model on the same data.

    <out>/configs/preprocess.yaml   sequifier preprocess --config-path configs/preprocess.yaml
    <out>/configs/train.yaml        sequifier train --config-path configs/train.yaml
    <out>/SEQDB_EXPORT.md           the mapping used and what could not be carried over

The mapping (docs/results.md has the table): columns and types, the split ratios, the
window (context + horizon, stride), the architecture (d_model, layers, heads, kv-heads,
d_ff, activation, attention, positional encoding, norm, pre/post-norm, dropout), the
optimiser (AdamW, betas, weight decay), the schedule (as a torch scheduler stepped per
batch), batch and accumulation, gradient clipping, epochs, early stopping, loss and class
weights, the seed. What sequifier cannot express is named in `unsupported`, never dropped
silently; a target it cannot train at all (seqdb's derived direction / threshold targets)
is an error naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from seqdb.config.trial import TrialConfig
from seqdb.errors import ConfigError

SEQUIFIER_VERSION = "3.1"
SEQ_COLUMN, POS_COLUMN = "sequenceId", "itemPosition"  # sequifier's fixed names


@dataclass
class SequifierExport:
    trial_id: int
    preprocess: dict
    train: dict
    unsupported: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# what the trial and its experiment say
# --------------------------------------------------------------------------------------
def load_trial(engine: Engine, trial_id: int) -> tuple[TrialConfig, Any, dict, int]:
    """(TrialConfig, the experiment's validated config, batch_config, train windows)."""
    from seqdb.db.engine import session_scope
    from seqdb.db.lookup import find_or_raise
    from seqdb.db.models import Dataset, Study, Trial
    from seqdb.experiment.registry import get_experiment

    with session_scope(engine, write=False) as s:
        trial = find_or_raise(s, Trial, trial_id)
        study = s.get(Study, trial.study_id)
        dataset = s.get(Dataset, study.dataset_id) if study.dataset_id else None
        cfg, batch = TrialConfig.model_validate(trial.config), dict(trial.batch_config or {})
        windows = int(((dataset.splits if dataset else {}).get("train") or {}).get("windows") or 0)
    _, exp = get_experiment(engine, cfg.experiment)
    return cfg, exp, batch, windows


def target_columns(cfg: TrialConfig, exp: Any) -> dict[str, tuple[str, str]]:
    """seqdb target name -> (data column sequifier predicts, 'categorical' | 'real'); a derived
    target (direction, threshold, a summed regression) has no sequifier form: an error."""
    out = {}
    by_name = {t.target_name: t for t in exp.targets}
    for t in cfg.data.targets:
        section = by_name[t.name]
        if section.task in ("direction", "threshold") or (section.task == "regression" and section.aggregation != "last"):
            how = section.task if section.task != "regression" else f"regression with aggregate {section.aggregation}"
            raise ConfigError(f"trial export --format sequifier: target {t.name!r} is a {how} target of column {section.column!r}; "
                              "sequifier predicts a column's value itself; allowed: regression (aggregate last) or next_category targets")
        out[t.name] = (section.column, "categorical" if t.kind == "categorical" else "real")
    return out


# --------------------------------------------------------------------------------------
# the two configs
# --------------------------------------------------------------------------------------
def preprocess_config(cfg: TrialConfig, exp: Any, data_path: str, targets: dict, unsupported: list[str]) -> dict:
    d, split = exp.data, exp.split
    inputs = [c.name for c in cfg.data.inputs]
    selected = list(dict.fromkeys([*inputs, *(col for col, _ in targets.values())]))
    kinds = {c: d.columns[c] for c in selected}
    if split.mode != "within":
        unsupported.append(f"split.mode {split.mode}: exported as sequifier's within_sequence split")
    if split.by:
        unsupported.append(f"split.by {split.by}: sequifier splits by position within each sequence (value_cutoff needs explicit values)")
    if exp.gap:
        unsupported.append(f"gap of {exp.gap} purged rows between splits: sequifier has no purge gap")
    if d.nan_policy != "error":
        unsupported.append(f"data.nan_policy {d.nan_policy}: sequifier does not fill missing values; fill them in the data file")
    if d.id_maps:
        unsupported.append("data.id_maps: copy the maps to configs/id_maps/<column>.json and add use_precomputed_maps")
    return {
        "project_root": ".",
        "preprocessing_data_path": data_path,
        "read_format": "parquet" if data_path.endswith((".parquet", ".pq")) else "csv",
        "write_format": "parquet",
        "selected_columns": selected,
        "categorical_columns": [c for c in selected if kinds[c] == "categorical"],
        "real_columns": [c for c in selected if kinds[c] == "real"],
        "split_ratios": [round(1 - split.validation - split.test, 6), split.validation, split.test],
        "split_method": "within_sequence",
        "window_length": cfg.data.context_length + cfg.horizon,
        "max_target_offset": cfg.horizon,
        "window_stride": d.stride,
        "seed": cfg.seed,
    }


def architecture(cfg: TrialConfig) -> dict:
    m = cfg.model
    attention = {"type": m.attention, "n_heads": m.n_head}
    if m.attention != "mha":
        attention["n_kv_heads"] = m.kv_heads
    return {
        "dim_model": m.d_model,
        "num_layers": m.n_layers,
        "attention": attention,
        "feed_forward": {"dim": m.d_ff, "activation": m.activation},
        "normalization": {"type": m.norm, "norm_first": m.prenorm},
        "position_encoding": {"type": m.positional, "theta": m.rope_theta},
        "dropout": m.dropout,
    }


def schedule(cfg: TrialConfig, steps: int, unsupported: list[str]) -> dict:
    """seqdb's per-step schedule as a torch scheduler stepped every batch."""
    tc = cfg.training
    if tc.warmup_steps:
        unsupported.append(f"training.warmup_steps {tc.warmup_steps}: no warmup in the exported schedule")
    if tc.scheduler == "cosine":
        return {"name": "CosineAnnealingLR", "T_max": max(1, steps), "eta_min": tc.learning_rate * tc.min_lr_ratio}
    if tc.scheduler == "linear":
        return {"name": "LinearLR", "start_factor": 1.0, "end_factor": max(tc.min_lr_ratio, 1e-8), "total_iters": max(1, steps)}
    return {"name": "ConstantLR", "factor": 1.0, "total_iters": 0}


def batching(cfg: TrialConfig, batch_config: dict) -> tuple[int, int]:
    """(batch_size, accumulation_steps): the physical batch the trainer settled on when the
    trial ran (else the configured one), accumulated up to the same effective batch."""
    effective = cfg.training.effective_batch_size
    physical = int(batch_config.get("batch_size") or batch_config.get("physical_batch_size") or cfg.training.batch_size or effective)
    physical = min(physical, effective)
    return physical, max(1, math.ceil(effective / physical))


def train_config(cfg: TrialConfig, targets: dict, steps: int, batch_config: dict, name: str, metadata_path: str,
                 unsupported: list[str]) -> dict:
    cols = {t: col for t, (col, _) in targets.items()}
    _training_gaps(cfg, unsupported)
    return {
        "project_root": ".",
        "model_name": name,
        "device": "cpu",
        "seed": cfg.seed,
        "global_training": global_training(cfg, steps, batch_config, unsupported),
        "model": {
            "backbone": {"architecture": architecture(cfg)},
            "interface": {
                "input_columns": [c.name for c in cfg.data.inputs],
                "target_columns": list(dict.fromkeys(cols.values())),
                "ingestion": {"type": "embedding", "output_dim": cfg.model.d_model, **_embedding_dims(cfg, unsupported)},
                "decoder": {"type": "linear", "prediction_length": cfg.data.context_length},  # loss on every position
            },
        },
        "dataset": dataset_section(cfg, targets, metadata_path, unsupported),
        "training_plan": {"epochs": cfg.training.max_epochs},
        "evaluation": True,
        "export_generative_model": True,
        "export_embedding_model": True,
    }


def global_training(cfg: TrialConfig, steps: int, batch_config: dict, unsupported: list[str]) -> dict:
    tc = cfg.training
    batch, accumulation = batching(cfg, batch_config)
    return {
        "training_objective": "causal",
        "context_length": cfg.data.context_length,
        "target_offset": cfg.horizon,
        "inference_batch_size": batch,
        "batch_size": batch,
        "accumulation_steps": accumulation,
        "learning_rate": tc.learning_rate,
        "optimizer": {"name": "AdamW", "weight_decay": tc.weight_decay, "betas": list(tc.betas)},
        "scheduler": schedule(cfg, steps, unsupported),
        "scheduler_step_on": "batch",
        "gradient_clip": tc.grad_clip or None,
        "early_stopping_epochs": tc.early_stopping.patience if tc.eval_every_steps is None else None,
        "layer_autocast": tc.precision in ("bf16", "fp16"),
        "torch_compile": "outer" if tc.compile else "none",
    }


def dataset_section(cfg: TrialConfig, targets: dict, metadata_path: str, unsupported: list[str]) -> dict:
    """Where the preprocessed data's metadata is, and the loss of each target column."""
    cols = {t: col for t, (col, _) in targets.items()}
    out: dict = {"part": {"metadata_config_path": metadata_path},
                 "criterion": {col: "CrossEntropyLoss" if kind == "categorical" else "MSELoss" for col, kind in targets.values()}}
    specs = {t.name: t for t in cfg.data.targets}
    if len(targets) > 1 or any(s.loss_weight != 1.0 for s in specs.values()):
        out["loss_weights"] = {cols[n]: specs[n].loss_weight for n in targets}
    if any(s.class_weights for s in specs.values()):
        out["class_weights"] = {cols[n]: list(specs[n].class_weights) for n in targets if specs[n].class_weights}
        unsupported.append("class_weights: sequifier drops ids 0-1 from categorical heads; check the weight list length")
    return out


def _embedding_dims(cfg: TrialConfig, unsupported: list[str]) -> dict:
    """sequifier concatenates one embedding per input column, widths summing to d_model (it
    needs them spelled out when real and categorical columns mix); seqdb adds per-column
    projections of full width instead. Widths split d_model evenly, the remainder to the first."""
    inputs, d = cfg.data.inputs, cfg.model.d_model
    if len({c.kind for c in inputs}) < 2:
        return {}
    if len(inputs) > d:
        raise ConfigError(f"trial export --format sequifier: {len(inputs)} input columns do not fit d_model {d} (one width each)")
    base, extra = divmod(d, len(inputs))
    unsupported.append(f"input layer: seqdb sums full-width per-column projections; sequifier concatenates per-column embeddings "
                       f"(widths {base}-{base + bool(extra)} summing to d_model {d})")
    return {"feature_embedding_dims": {c.name: base + (i < extra) for i, c in enumerate(inputs)}}


def _training_gaps(cfg: TrialConfig, unsupported: list[str]) -> None:
    tc, m = cfg.training, cfg.model
    if tc.max_steps:
        unsupported.append(f"training.max_steps {tc.max_steps}: sequifier trains whole epochs ({tc.max_epochs})")
    if tc.early_stopping.min_delta:
        unsupported.append(f"early_stopping.min_delta {tc.early_stopping.min_delta}: sequifier stops on any non-improvement")
    if tc.eval_every_steps:
        unsupported.append(f"training.eval_every_steps {tc.eval_every_steps}: sequifier evaluates once per epoch (early stopping left off)")
    if tc.max_eval_batches:
        unsupported.append(f"training.max_eval_batches {tc.max_eval_batches}: sequifier evaluates the whole validation split")
    if tc.precision == "fp16":
        unsupported.append("training.precision fp16: exported as autocast (sequifier picks the half type)")
    if m.mlp_bias is False:
        unsupported.append("model.mlp_bias false: sequifier's feed-forward layers have biases (a few parameters more)")
    unsupported.append("weight decay: seqdb skips norms and biases, sequifier's AdamW decays every parameter")


# --------------------------------------------------------------------------------------
# the whole export
# --------------------------------------------------------------------------------------
def export_sequifier(engine: Engine, project: Any, trial_id: int) -> SequifierExport:
    """The preprocess and train configs of trial `trial_id` (see the module docstring)."""
    cfg, exp, batch_config, windows = load_trial(engine, trial_id)
    targets = target_columns(cfg, exp)
    unsupported: list[str] = []
    data_path = str(exp.data_file(project.root).resolve())
    notes = []
    if (exp.data.sequence_column, exp.data.position_column) != (SEQ_COLUMN, POS_COLUMN):
        notes.append(f"sequifier reads the columns {SEQ_COLUMN} and {POS_COLUMN}: rename {exp.data.sequence_column} and "
                     f"{exp.data.position_column} in a copy of the data file and point preprocessing_data_path at it")
    pre = preprocess_config(cfg, exp, data_path, targets, unsupported)
    batch, accumulation = batching(cfg, batch_config)
    steps = cfg.training.max_epochs * max(1, math.ceil(max(windows, 1) / (batch * accumulation)))
    stem = Path(data_path).stem
    train = train_config(cfg, targets, steps, batch_config, f"seqdb-trial-{trial_id}", f"configs/metadata_configs/{stem}.json", unsupported)
    return SequifierExport(trial_id, pre, train, unsupported, notes)


def write_sequifier(export: SequifierExport, out_dir: Path) -> list[Path]:
    """configs/preprocess.yaml, configs/train.yaml and SEQDB_EXPORT.md under `out_dir`, each
    written through a temp file + rename (mode 0644)."""
    import os
    import tempfile

    import yaml

    files = {
        Path("configs") / "preprocess.yaml": yaml.safe_dump(export.preprocess, sort_keys=False),
        Path("configs") / "train.yaml": yaml.safe_dump(export.train, sort_keys=False),
        Path("SEQDB_EXPORT.md"): export_notes(export),
    }
    written = []
    for rel, text in files.items():
        path = Path(out_dir) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        written.append(path)
    return written


def export_notes(export: SequifierExport) -> str:
    lines = [f"# seqdb trial {export.trial_id} as a sequifier {SEQUIFIER_VERSION} project", "",
             "    sequifier preprocess --config-path configs/preprocess.yaml",
             "    sequifier train --config-path configs/train.yaml", ""]
    lines += [f"- {n}" for n in export.notes]
    lines += ["", "## Not carried over (sequifier has no equivalent)", ""] + [f"- {u}" for u in export.unsupported or ["nothing"]]
    return "\n".join(lines) + "\n"
