"""Training throughput: seqdb's trainer vs `sequifier train` vs a minimal plain-PyTorch loop.

    .venv/bin/python benchmarks/bench_train.py [--steps 12] [--repeat 2] [--threads 1]
    .venv/bin/python benchmarks/bench_train.py --gpu [--steps 20]   # ~20M model, bf16, CUDA

Same architecture (d_model 128, 4 layers, 4 heads, d_ff 512, gelu with feed-forward biases,
layer_norm, pre-norm, learned positions; exactly sequifier's parameter count), same data
(next-token prediction on one 20-value categorical column, context 64, non-overlapping
windows), same batch (64 windows, no accumulation), AdamW, fp32, loss at every position.

- seqdb: `seqdb.train.trainer.train` in this process; time between the reports of step 1
  and step N-1 (evaluation only after the last step).
- sequifier (peer, /work/peers/venv, see shared/PEERS.md): `sequifier train` as a
  subprocess with torch_compile none, prediction_length = context (full causal loss), no
  validation before training, its training split cut to exactly N batches. Wall time from
  its per-batch log timestamps (batch 1 -> N: they include the optimizer step and data
  loading); CPU time as the difference between a 2-epoch and a 1-epoch run's CPU time
  (getrusage of the child), which cancels start-up, data loading and export.
- plain: a nanoGPT-style module with F.scaled_dot_product_attention and a bare loop.

Two figures per tool: tokens per second of wall time and tokens per CPU-second (user + sys
of the whole process). The machine is shared by other jobs, so wall figures swing several
fold between runs; with `--threads 1` the CPU-time figure is what one uncontended core
delivers and is the one to compare. Each tool runs `--repeat` times, interleaved; the best
run counts. MFU = model FLOP/s (per CPU-second) / this CPU's fp32 matmul peak (best of timed
2048^3 torch.mm over CPU time, same thread count), with training FLOPs per token
= 6 * (non-embedding matmul weights) + 12 * layers * d_model * context.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
import torch.nn as nn
import torch.nn.functional as F

from seqdb.config.trial import DataSpec, InputColumn, ModelConfig, TargetSpec, TrainingConfig, TrialConfig
from seqdb.data.windows import WindowSet
from seqdb.model.params import param_count
from seqdb.train.reporter import MemoryReporter
from seqdb.train.trainer import train

PEER_BIN = Path(os.environ.get("SEQUIFIER_BIN", "/work/peers/venv/bin/sequifier"))
D, LAYERS, HEADS, DFF, CTX, BATCH, VALUES = 128, 4, 4, 512, 64, 64, 20
VOCAB = VALUES + 3  # ids 0 unknown, 1 other, 2 mask (sequifier), 3.. values
N_CLASSES = VOCAB - 2  # sequifier's categorical head


# ---------------------------------------------------------------------------- data


def make_tokens(sequences: int, length: int, seed: int = 0) -> np.ndarray:
    """[sequences, length] value indices 0..19: a cycle with 20% random replacements."""
    rng = np.random.default_rng(seed)
    tok = (np.arange(length)[None, :] * 3 + rng.integers(0, VALUES, (sequences, 1))) % VALUES
    return np.where(rng.random((sequences, length)) < 0.2, rng.integers(0, VALUES, (sequences, length)), tok)


def window_set(tokens: np.ndarray, n_windows: int) -> WindowSet:
    """Non-overlapping windows of CTX rows with the next token as target (ids as sequifier's)."""
    ids = 3 + np.argsort(np.argsort([f"v{i}" for i in range(VALUES)]))[tokens]  # lexicographic id map
    flat = ids.reshape(-1).astype(np.int64)
    nxt = np.append(flat[1:], -1)
    seq_len = tokens.shape[1]
    nxt[seq_len - 1 :: seq_len] = -1  # no target across sequence ends
    starts = [s * seq_len + o for s in range(tokens.shape[0]) for o in range(0, seq_len - CTX, CTX + 1)]
    starts = np.asarray(starts[:n_windows], dtype=np.int64)
    return WindowSet(
        real=np.zeros((flat.size, 0), np.float32), cat=flat[:, None], targets={"tok": nxt - 2 * (nxt >= 0)},
        starts=starts, context_length=CTX, real_columns=[], cat_columns=["tok"],
    )


def trial_config(steps: int, precision: str = "fp32") -> TrialConfig:
    spec = DataSpec(
        context_length=CTX,
        inputs=[InputColumn(name="tok", kind="categorical", vocab_size=VOCAB)],
        targets=[TargetSpec(name="tok", kind="categorical", n_classes=N_CLASSES)],
    )
    model = ModelConfig(d_model=D, n_layers=LAYERS, n_head=HEADS, d_ff=DFF, activation="gelu", norm="layer_norm", mlp_bias=True)
    training = TrainingConfig(
        learning_rate=3e-4, max_epochs=1, max_steps=steps, effective_batch_size=BATCH, batch_size=BATCH,
        eval_every_steps=10**6, max_eval_batches=1, scheduler="constant", precision=precision,
    )
    return TrialConfig(experiment="bench", budget="800k", horizon=1, data=spec, model=model, training=training)


# ---------------------------------------------------------------------------- seqdb


class TimingReporter(MemoryReporter):
    def __init__(self):
        super().__init__()
        self.times: list[tuple[float, float]] = []  # (wall, cpu) at each report

    def report(self, step, epoch, metrics):
        self.times.append((time.perf_counter(), time.process_time()))
        return super().report(step, epoch, metrics)


def rates(tokens: int, start: tuple[float, float], end: tuple[float, float]) -> tuple[float, float]:
    """(tokens per wall second, tokens per CPU second)."""
    return tokens / (end[0] - start[0]), tokens / (end[1] - start[1])


def run_seqdb(ws: WindowSet, steps: int, work: Path, device: str = "cpu", precision: str = "fp32") -> tuple[float, float]:
    rep = TimingReporter()
    res = train(trial_config(steps, precision), ws, ws, rep, checkpoint_dir=work / "seqdb-ckpt", device=device)
    assert res.status == "completed", res
    return rates((steps - 2) * BATCH * CTX, rep.times[0], rep.times[steps - 2])  # steps 2 .. N-1


# ---------------------------------------------------------------------------- plain PyTorch


class PlainBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.q, self.k, self.v, self.o = (nn.Linear(D, D, bias=False) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(D, DFF), nn.Linear(DFF, D)

    def forward(self, x):
        B, L, _ = x.shape
        h = self.ln1(x)
        q, k, v = (m(h).view(B, L, HEADS, D // HEADS).transpose(1, 2) for m in (self.q, self.k, self.v))
        x = x + self.o(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, L, D))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class PlainGPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(VOCAB, D), nn.Embedding(CTX, D)
        self.blocks = nn.ModuleList(PlainBlock() for _ in range(LAYERS))
        self.ln, self.head = nn.LayerNorm(D), nn.Linear(D, N_CLASSES)

    def forward(self, ids):
        x = self.tok(ids) + self.pos.weight[: ids.shape[1]]
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln(x))


def run_plain(ws: WindowSet, steps: int, device: str = "cpu", precision: str = "fp32") -> tuple[tuple[float, float], int]:
    torch.manual_seed(0)
    model = PlainGPT().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=device.startswith("cuda"))
    rows = ws.window_rows(np.arange(len(ws)))
    x, y = torch.from_numpy(ws.cat[rows][..., 0]).to(device), torch.from_numpy(ws.targets["tok"][rows]).to(device)
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=precision == "bf16")
    times = []
    for s in range(steps):
        sl = slice((s * BATCH) % len(ws), (s * BATCH) % len(ws) + BATCH)
        with autocast:
            logits = model(x[sl])
        loss = F.cross_entropy(logits.float().reshape(-1, N_CLASSES), y[sl].reshape(-1), ignore_index=-1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()  # wait for the device
        times.append((time.perf_counter(), time.process_time()))
    return rates((steps - 1) * BATCH * CTX, times[0], times[-1]), sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------- sequifier


def sequifier_project(work: Path, tokens: np.ndarray) -> Path:
    proj = work / "sequifier"
    (proj / "configs").mkdir(parents=True)
    S, P = tokens.shape
    pl.DataFrame(
        {"sequenceId": np.repeat(np.arange(S), P), "itemPosition": np.tile(np.arange(P), S),
         "tok": np.char.add("v", tokens.reshape(-1).astype(str))}
    ).write_csv(proj / "data.csv")
    (proj / "configs" / "preprocess.yaml").write_text(textwrap.dedent(f"""\
        project_root: .
        preprocessing_data_path: data.csv
        read_format: csv
        write_format: parquet
        selected_columns: [tok]
        split_ratios: [0.9, 0.05, 0.05]
        split_method: within_sequence
        window_length: {CTX + 1}
        max_target_offset: 1
        window_stride: {CTX + 1}
        max_rows: null
        seed: 1010
        """))
    subprocess.run([str(PEER_BIN), "preprocess", "--config-path", "configs/preprocess.yaml"], cwd=proj, check=True, capture_output=True)
    return proj


def cut_training_split(proj: Path, windows: int) -> None:
    path = proj / "data" / "data-split0.parquet"
    frame = pl.read_parquet(path)
    if frame.height < windows:
        raise RuntimeError(f"sequifier's training split has {frame.height} windows, {windows} needed")
    frame.head(windows).write_parquet(path)


def sequifier_train_yaml(epochs: int) -> str:
    return textwrap.dedent(f"""\
        project_root: .
        model_name: bench
        device: cpu
        global_training:
          training_objective: causal
          context_length: {CTX}
          inference_batch_size: {BATCH}
          batch_size: {BATCH}
          learning_rate: 0.0003
          optimizer: {{name: AdamW}}
          scheduler: {{name: StepLR, step_size: 1, gamma: 1.0}}
          gradient_clip: 1.0
          torch_compile: none
          calculate_validation_loss_on_initialization: false
          save_interval_val_loss: false
          save_interval_epochs: 100
          log_interval: 1
        model:
          backbone:
            architecture:
              dim_model: {D}
              num_layers: {LAYERS}
              attention: {{n_heads: {HEADS}}}
              feed_forward: {{dim: {DFF}, activation: gelu}}
              normalization: {{type: layer_norm, norm_first: true}}
              position_encoding: {{type: learned}}
              dropout: 0.0
          interface:
            input_columns: [tok]
            target_columns: [tok]
            ingestion: {{type: embedding, output_dim: {D}}}
            decoder: {{type: linear, prediction_length: {CTX}}}
        dataset:
          part: {{metadata_config_path: configs/metadata_configs/data.json}}
          criterion: {{tok: CrossEntropyLoss}}
        training_plan: {{epochs: {epochs}}}
        evaluation: false
        export_generative_model: true
        export_embedding_model: false
        export_onnx: false
        export_pt: true
        """)


def sequifier_once(proj: Path, epochs: int, threads: int) -> tuple[np.ndarray, float]:
    """(per-batch log timestamps of epoch 1, CPU seconds of the whole run)."""
    (proj / "configs" / "train.yaml").write_text(sequifier_train_yaml(epochs))
    for sub in ("models", "checkpoints", "logs"):
        subprocess.run(["rm", "-rf", str(proj / sub)], check=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([str(PEER_BIN), "train", "--config-path", "configs/train.yaml"], cwd=proj, env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        raise RuntimeError(f"sequifier train failed: {out.stderr[-800:]}")
    log = pl.read_csv(proj / "logs" / "bench" / "bench-training-full.csv").filter(
        (pl.col("target") == "__total__") & (pl.col("epoch") == 1)
    )
    stamps = log["timestamp_utc"].str.to_datetime().dt.epoch("us").to_numpy() / 1e6
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return stamps, cpu


def run_sequifier(proj: Path, steps: int, threads: int) -> tuple[tuple[float, float], int]:
    stamps, cpu1 = sequifier_once(proj, 1, threads)
    _stamps2, cpu2 = sequifier_once(proj, 2, threads)
    assert len(stamps) == steps, f"sequifier ran {len(stamps)} batches per epoch, expected {steps}"
    wall = (steps - 1) * BATCH * CTX / (stamps[-1] - stamps[0])
    count = subprocess.run(
        [str(PEER_BIN.parent / "python"), "-c",
         "import torch,sys; sd=torch.load(sys.argv[1],map_location='cpu',weights_only=False)['model_state_dict'];"
         "print(sum(v.numel() for v in sd.values()))", str(next((proj / "models").glob("bench-last-*.pt")))],
        capture_output=True, text=True, check=True,
    )
    return (wall, steps * BATCH * CTX / (cpu2 - cpu1)), int(count.stdout.strip())


# ---------------------------------------------------------------------------- peak, table


def matmul_peak(n: int = 2048, reps: int = 5) -> float:
    """fp32 FLOP per CPU-second of a large torch.mm (best of reps)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(reps):
        t = time.process_time()
        torch.mm(a, b)
        best = min(best, time.process_time() - t)
    return 2 * n**3 / best


def flops_per_token() -> float:
    matmul = LAYERS * (4 * D * D + 2 * D * DFF) + D * N_CLASSES
    return 6 * matmul + 12 * LAYERS * D * CTX


def cuda_peak(n: int = 8192, reps: int = 10) -> float:
    """bf16 FLOP/s of a large torch.mm on the GPU (best of reps)."""
    a, b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16), torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    torch.mm(a, b)
    torch.cuda.synchronize()
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def gpu_main(args) -> None:
    """--gpu: a ~20M-parameter model (d 512, 6 layers, 8 heads, d_ff 2048, context 256) in
    bf16 on CUDA, seqdb vs the plain loop, MFU against the measured bf16 matmul peak."""
    global D, LAYERS, HEADS, DFF, CTX
    D, LAYERS, HEADS, DFF, CTX = 512, 6, 8, 2048, 256
    ws = window_set(make_tokens(64, 8 * args.steps * (CTX + 1)), args.steps * BATCH)
    cfg = trial_config(args.steps, "bf16")
    n = param_count(cfg.model, cfg.data).total
    peak = cuda_peak()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-train-gpu-") as tmp:
        for r in range(args.repeat):
            rows.setdefault("seqdb", []).append(run_seqdb(ws, args.steps, Path(tmp) / f"r{r}", "cuda", "bf16")[0])
            rows.setdefault("plain PyTorch (SDPA)", []).append(run_plain(ws, args.steps, "cuda", "bf16")[0][0])
    print(f"{torch.cuda.get_device_name()}, bf16 autocast; {n:,} parameters, context {CTX}, batch {BATCH}, {args.steps} steps x {args.repeat} runs (best)")
    print(f"bf16 torch.mm peak: {peak / 1e12:.1f} TFLOP/s; training FLOPs/token: {flops_per_token() / 1e6:.1f} M")
    plain = max(rows["plain PyTorch (SDPA)"])
    for name, runs in rows.items():
        tps = max(runs)
        print(f"{name:<22}{tps:>12,.0f} tok/s{tps * flops_per_token() / peak:>8.1%} MFU{tps / plain:>8.2f}x plain")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12, help="optimizer steps per run (batch 64 x context 64)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--gpu", action="store_true", help="the ~20M bf16 CUDA comparison (seqdb vs plain) instead")
    args = ap.parse_args()
    if args.gpu:
        return gpu_main(args)
    torch.set_num_threads(args.threads)
    tokens = make_tokens(60, 21 * (CTX + 1))
    ws = window_set(tokens, args.steps * BATCH)
    cfg = trial_config(args.steps)
    runs: dict[str, list[tuple[float, float]]] = {"seqdb": [], "plain PyTorch (SDPA)": [], "sequifier train": []}
    counts = {"seqdb": param_count(cfg.model, cfg.data).total}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        proj = sequifier_project(work, tokens) if PEER_BIN.exists() else None
        if proj is not None:
            cut_training_split(proj, args.steps * BATCH)
        peak = matmul_peak()
        for r in range(args.repeat):
            runs["seqdb"].append(run_seqdb(ws, args.steps, work / f"r{r}"))
            rate, counts["plain PyTorch (SDPA)"] = run_plain(ws, args.steps)
            runs["plain PyTorch (SDPA)"].append(rate)
            if proj is not None:
                rate, counts["sequifier train"] = run_sequifier(proj, args.steps, args.threads)
                runs["sequifier train"].append(rate)
        peak = max(peak, matmul_peak())
    print_table(args, runs, counts, peak)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "params": counts, "peak_flops_per_cpu_s": peak}, indent=2))


def print_table(args, runs: dict, counts: dict, peak: float) -> None:
    print(f"CPU, {args.threads} thread(s), fp32; context {CTX}, batch {BATCH}; {args.steps} steps x {args.repeat} runs (best)")
    print(f"fp32 torch.mm peak: {peak / 1e9:.1f} GFLOP per CPU-second; training FLOPs/token: {flops_per_token() / 1e6:.2f} M")
    print(f"{'tool':<22}{'params':>9}{'tok/s wall':>12}{'tok/CPU-s':>11}{'MFU':>7}{'vs sequifier':>14}{'vs plain':>10}")
    best = {k: (max(w for w, _c in v), max(c for _w, c in v)) for k, v in runs.items() if v}
    plain = best["plain PyTorch (SDPA)"][1]
    for name, (wall, cpu) in best.items():
        vs_peer = f"{cpu / best['sequifier train'][1]:.2f}x" if "sequifier train" in best else "-"
        mfu = cpu * flops_per_token() / peak
        print(f"{name:<22}{counts[name]:>9,}{wall:>12,.0f}{cpu:>11,.0f}{mfu:>7.1%}{vs_peer:>14}{cpu / plain:>9.2f}x")


if __name__ == "__main__":
    main()
