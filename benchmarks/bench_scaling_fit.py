"""Coverage of the scaling fit's 95% intervals by Monte Carlo on a known truth.

    .venv/bin/python benchmarks/bench_scaling_fit.py [--sets 500] [--bootstrap 200] [--noise 0.01]
        [--replicates 1] [--workers 2] [--seed 0] [--methods wald,bootstrap,huber_wald,legacy]

Truth L(N) = 1.7 + 400 N^-0.34 at 6 budgets N = 1e5 .. 1e8 (log-spaced); each data set
multiplies every loss by exp(noise * z), z standard normal (1% log-normal noise by default;
`--replicates R` draws R seeds per budget). Each method fits every set and reports how often
its 95% interval for alpha and for E contains the truth, the median interval width, and the
time per fit. Methods:
- wald: the default of `seqdb scaling` (least squares in log space, Wald-t, K-3 df);
- bootstrap: `--ci bootstrap` (parametric, noise scale drawn from s sqrt(df / chi2_df));
- huber_wald: `--objective huber` with Wald-t intervals;
- legacy: what main did before issue 13, the peer to beat: Huber (delta 1e-3) and a plug-in
  residual bootstrap (residuals centred, never inflated by K/(K-3)), percentile intervals.
The default must cover 93%..97% (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seqdb.scaling.fit import fit_points, global_fit, log_model  # noqa: E402
from seqdb.scaling.points import Point  # noqa: E402

E, A, ALPHA = 1.7, 400.0, 0.34
N = np.geomspace(1e5, 1e8, 6)


def data_set(k: int, seed: int, noise: float, replicates: int) -> list[Point]:
    rng = np.random.default_rng([seed, k])
    n = np.repeat(N, replicates)
    loss = (E + A * n**-ALPHA) * np.exp(noise * rng.standard_normal(n.size))
    return [Point(float(a), float(b)) for a, b in zip(n, loss)]


def legacy(points: list[Point], bootstrap: int, seed: int) -> tuple[tuple, tuple]:
    """main before issue 13: Huber fit, centred plug-in residual bootstrap, percentile intervals."""
    log_n, y = np.log([p.N for p in points]), np.log([p.loss for p in points])
    w = np.ones_like(y)
    theta = global_fit(log_n, y, w, "huber")
    pred, _ = log_model(theta, log_n)
    resid = y - pred
    resid -= resid.mean()
    rng = np.random.default_rng(seed)
    reps = np.array([global_fit(log_n, pred + rng.choice(resid, size=len(resid)), w, "huber") for _ in range(bootstrap)])
    lo, hi = np.percentile(reps, 2.5, axis=0), np.percentile(reps, 97.5, axis=0)
    return (lo[2], hi[2]), (np.exp(lo[0]), np.exp(hi[0]))


def run_one(args: tuple) -> dict:
    method, k, opts = args
    points = data_set(k, opts["seed"], opts["noise"], opts["replicates"])
    t0 = time.perf_counter()
    if method == "legacy":
        alpha_ci, e_ci = legacy(points, opts["bootstrap"], k)
    else:
        kw = {"wald": {}, "bootstrap": {"ci": "bootstrap", "bootstrap": opts["bootstrap"], "seed": k},
              "huber_wald": {"objective": "huber"}}[method]
        r = fit_points(points, **kw)
        alpha_ci, e_ci = r.ci95.get("alpha"), r.ci95.get("E")
    dt = time.perf_counter() - t0
    cover = lambda iv, truth: iv is not None and iv[0] <= truth <= iv[1]  # noqa: E731
    width = lambda iv: (iv[1] - iv[0]) if iv is not None else np.nan  # noqa: E731
    return {"method": method, "alpha": cover(alpha_ci, ALPHA), "E": cover(e_ci, E), "w_alpha": width(alpha_ci),
            "w_E": width(e_ci), "s": dt}


def summarize(method: str, rows: list[dict]) -> tuple:
    rows = [r for r in rows if r["method"] == method]
    n = len(rows)
    a, e = sum(r["alpha"] for r in rows) / n, sum(r["E"] for r in rows) / n
    se = np.sqrt(0.95 * 0.05 / n)
    return (method, n, a, e, se, float(np.nanmedian([r["w_alpha"] for r in rows])), float(np.nanmedian([r["w_E"] for r in rows])),
            float(np.mean([r["s"] for r in rows])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", type=int, default=500)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--replicates", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="wald,bootstrap,huber_wald,legacy")
    a = ap.parse_args()
    opts = {"seed": a.seed, "noise": a.noise, "replicates": a.replicates, "bootstrap": a.bootstrap}
    methods = a.methods.split(",")
    jobs = [(m, k, opts) for m in methods for k in range(a.sets)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.workers) as pool:
        rows = list(track(pool.map(run_one, jobs, chunksize=8), total=len(jobs), description="fitting", console=Console(stderr=True)))
    print(f"truth E={E} A={A} alpha={ALPHA}; 6 budgets 1e5..1e8; noise {a.noise:.0%} log-normal; {a.replicates} seed(s) per budget; "
          f"{a.sets} sets; bootstrap B={a.bootstrap}; {time.perf_counter() - t0:.0f} s")
    print(f"| method | sets | alpha coverage | E coverage | ±1 s.e. | median width alpha | median width E | s per fit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for m in methods:
        name, n, ca, ce, se, wa, we, s = summarize(m, rows)
        print(f"| {name} | {n} | {ca:.1%} | {ce:.1%} | {se:.1%} | {wa:.4f} | {we:.4f} | {s:.4f} |")


if __name__ == "__main__":
    main()
