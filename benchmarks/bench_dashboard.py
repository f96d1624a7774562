"""Benchmark: the dashboard's first paint per page at 10,000 trials, in headless Chromium.

Builds bench_views.py's synthetic seqdb database (default 10,000 completed trials over 4 budgets
x 3 horizons, `--points` val_loss rows each), starts `seqdb dashboard` on it and opens every page
by its URL in a fresh browser session, timing from the request until the page is painted: its
title is shown, the script has finished (no running indicator) and every plotly chart has drawn.
Three passes:
  cold     - the first visit of each page after the server started, each from a new browser
             (nothing cached on either side; the browser downloads Streamlit's scripts too)
  expired  - one browser (scripts in its HTTP cache, like a returning user's), a new session per
             visit, each after the 5 s data cache expired (the queries run again; the DuckDB
             connection and the fitted scaling curves, cached until their points change, are kept)
  cached   - the same at once (the data cache still holds)
The same three passes also run in Streamlit's AppTest (in-process, no browser): the server's
script time per page, which is what the database size drives; the browser adds fetching the
page's elements and drawing the charts, which on a loaded machine can dominate.
The peer, optuna-dashboard, serves the same trials from an Optuna RDB storage (same SQLite file
layout: one study per budget x horizon, the same params, values and intermediate values); its
study page is timed the same way (its history chart drawn), cold and again. It runs from its own
venv (--peer-python, default /work/peers/optuna-dashboard/bin/python; `--no-peer` skips it).
Goal: first paint <= 2 s at 10,000 trials.

    python benchmarks/bench_dashboard.py                       # 10,000 trials, SQLite
    python benchmarks/bench_dashboard.py --trials 10000 --points 50 --backends sqlite,postgres
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_views import BUDGETS, HORIZONS, build  # noqa: E402

console = Console(width=150)
PAGES = {  # page -> (title, plotly charts it draws on the synthetic database)
    "scaling": ("Scaling", 1), "studies": ("Studies", 1), "history": ("History", 4), "trials": ("Trials", 1),
    "curves": ("Learning curves", 1), "importance": ("Importance & parallel coordinates", 2), "pareto": ("Pareto", 0),
    "workers": ("Workers", 0)}
GOAL_S = 2.0
PAINTED_JS = """
const h1 = document.querySelector('h1');
const running = document.querySelector('[data-testid="stStatusWidget"]');
const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]').length;
const drawn = document.querySelectorAll('[data-testid="stPlotlyChart"] .main-svg').length;
return [h1 ? h1.innerText.trim() : '', !!running, charts, drawn];
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"error: {url} did not answer within {timeout:.0f} s")


def browser(profile: Path):  # noqa: ANN201
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", f"--user-data-dir={profile}", "--window-size=1400,1800"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def paint_s(driver, url: str, ready, timeout: float = 120) -> float:  # noqa: ANN001
    """Seconds from requesting `url` until `ready(driver)` holds (polled every 20 ms)."""
    t = time.perf_counter()
    driver.get(url)
    while time.perf_counter() - t < timeout:
        if ready(driver):
            return time.perf_counter() - t
        time.sleep(0.02)
    raise SystemExit(f"error: {url} was not painted within {timeout:.0f} s")


def seqdb_ready(title: str, n_charts: int):  # noqa: ANN201
    """Painted: the page's title, all its charts drawn, and the script finished."""
    def ready(driver) -> bool:  # noqa: ANN001
        h1, running, charts, drawn = driver.execute_script(PAINTED_JS)
        return h1 == title and not running and charts >= n_charts and drawn >= charts
    return ready


def time_seqdb(url: str, tmp: Path) -> dict[str, list[float]]:
    """{page: [cold, expired, cached]} seconds for the seqdb dashboard over the database at `url`.

    cold: a new browser per page (nothing in its HTTP cache either); then one browser whose
    HTTP cache holds Streamlit's scripts, as a returning user's does (each visit a new session)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "seqdb", "--db", url, "dashboard", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    out: dict[str, list[float]] = {p: [] for p in PAGES}
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/_stcore/health")
        for page, (title, n_charts) in PAGES.items():
            driver = browser(tmp / f"chrome-cold-{page}")
            try:
                out[page].append(paint_s(driver, f"{base}/{page}", seqdb_ready(title, n_charts)))
            finally:
                driver.quit()
        driver = browser(tmp / "chrome-warm")
        try:
            for pause in (6.0, 0.0):  # after the 5 s data cache expired, then at once
                for page, (title, n_charts) in PAGES.items():
                    time.sleep(pause)
                    out[page].append(paint_s(driver, f"{base}/{page}", seqdb_ready(title, n_charts)))
        finally:
            driver.quit()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    return out


def time_apptest(url: str) -> dict[str, list[float]]:
    """{page: [cold, expired, cached]} seconds of each page's script in Streamlit's AppTest."""
    from streamlit.testing.v1 import AppTest

    os.environ["SEQDB_DASHBOARD_DB"] = url
    app = str(Path(__file__).resolve().parents[1] / "seqdb" / "dashboard" / "app.py")
    at = AppTest.from_file(app, default_timeout=600)
    out: dict[str, list[float]] = {p: [] for p in PAGES}
    for pause in (0.0, 6.0, 0.0):  # cold, after the 5 s data cache expired, cached
        for page in PAGES:
            time.sleep(pause)
            at.switch_page(f"screens/{page}.py")
            t = time.perf_counter()
            at.run()
            out[page].append(time.perf_counter() - t)
            if at.exception:
                raise SystemExit(f"error: page {page} raised {at.exception[0].value}")
    return out


def build_optuna(path: Path, n_trials: int, points: int) -> int:
    """An Optuna RDB SQLite storage holding the same trials (one study per budget x horizon); the middle study's id.

    One trial per study goes through Optuna's API (the row format); the rest are bulk copies of it."""
    import sqlite3

    import numpy as np
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    dist = {"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
            "d_model": optuna.distributions.CategoricalDistribution([64, 128, 256])}
    keys = [(b, h) for b in range(len(BUDGETS)) for h in HORIZONS]
    for b, h in keys:
        study = optuna.create_study(storage=storage, study_name=f"bench/{BUDGETS[b][0]}/h{h}")
        study.add_trial(optuna.trial.create_trial(params={"learning_rate": 1e-3, "d_model": 64}, distributions=dist, value=1.0,
                                                  intermediate_values={1: 1.0}))
    storage.engine.dispose()
    con = sqlite3.connect(path)
    tpl = {t: con.execute(f"SELECT * FROM {t} LIMIT 1").fetchone() for t in ("trials", "trial_params", "trial_values")}
    dists = dict(con.execute("SELECT param_name, distribution_json FROM trial_params WHERE trial_id = 1"))
    con.execute("DELETE FROM trial_intermediate_values"), con.execute("DELETE FROM trial_values")
    con.execute("DELETE FROM trial_params"), con.execute("DELETE FROM trials")
    rng, per = np.random.default_rng(0), n_trials // len(keys)
    trials, params, values, inter = [], [], [], []
    for i in range(per * len(keys)):
        sid, (b, h) = i // per + 1, keys[i // per]
        loss = 1.0 + 0.1 * h + 30 * BUDGETS[b][1] ** -0.3 + abs(rng.normal(0, 0.05))
        trials.append((i + 1, i % per, sid, *tpl["trials"][3:]))
        params += [(2 * i + 1, i + 1, "learning_rate", float(10 ** rng.uniform(-4, -2)), dists["learning_rate"]),
                   (2 * i + 2, i + 1, "d_model", float(rng.integers(0, 3)), dists["d_model"])]
        values.append((i + 1, i + 1, 0, loss, tpl["trial_values"][4]))
        inter += [(i * points + s, i + 1, s, loss + 1 / s, "FINITE") for s in range(1, points + 1)]
    con.executemany(f"INSERT INTO trials VALUES ({', '.join('?' * len(tpl['trials']))})", trials)
    con.executemany("INSERT INTO trial_params VALUES (?, ?, ?, ?, ?)", params)
    con.executemany("INSERT INTO trial_values VALUES (?, ?, ?, ?, ?)", values)
    con.executemany("INSERT INTO trial_intermediate_values VALUES (?, ?, ?, ?, ?)", inter)
    con.commit()
    con.close()
    return len(keys) // 2


def time_optuna_dashboard(peer_python: str, db: Path, study_id: int, tmp: Path) -> list[float]:
    """[cold, again] seconds until optuna-dashboard's study page has drawn its history chart."""
    port = free_port()
    cli = str(Path(peer_python).parent / "optuna-dashboard")
    proc = subprocess.Popen([cli, f"sqlite:///{db}", "--port", str(port), "--host", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    drawn = "return document.querySelectorAll('.js-plotly-plot .scatterlayer .point').length;"
    out = []
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        for i in range(2):
            driver = browser(tmp / f"chrome-optuna-{i}")
            try:
                out.append(paint_s(driver, f"http://127.0.0.1:{port}/dashboard/studies/{study_id}",
                                   lambda d: d.execute_script(drawn) > 0))
            finally:
                driver.quit()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    return out


def database(backend: str, tmp: Path, pg_admin: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}"
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"seqdb_bench_dash_{int(time.time())}"
    with psycopg.connect(pg_admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return make_url(pg_admin).set(database=name).render_as_string(hide_password=False)


def drop(url: str, pg_admin: str) -> None:
    if url.startswith("postgresql"):
        import psycopg
        from sqlalchemy.engine import make_url

        with psycopg.connect(pg_admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE "{make_url(url).database}" WITH (FORCE)')


def report(results: dict[str, dict[str, list[float]]], peer: list[float] | None, n_trials: int) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    table = Table(title=f"first paint at {n_trials:,} trials, seconds (goal <= {GOAL_S:.0f} s); load average {load}")
    for col in ("dashboard", "page", "cold", "cache expired", "cached", "goal met"):
        table.add_column(col, justify="right" if col not in ("dashboard", "page") else "left")
    for backend, pages in results.items():
        for page, (cold, expired, cached) in pages.items():
            table.add_row(f"seqdb ({backend})", f"/{page}", f"{cold:.2f}", f"{expired:.2f}", f"{cached:.2f}",
                          "yes" if max(cold, expired) <= GOAL_S else "no")
    if peer:
        table.add_row("optuna-dashboard (SQLite)", "/dashboard/studies/N", f"{peer[0]:.2f}", f"{peer[1]:.2f}", "-",
                      "yes" if max(peer) <= GOAL_S else "no")
    console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=50, help="val_loss rows per trial")
    ap.add_argument("--backends", default="sqlite")
    ap.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--peer-python", default="/work/peers/optuna-dashboard/bin/python")
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    results, peer = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            url = database(backend, Path(tmp), args.pg_admin)
            try:
                t = time.time()
                build(url, args.trials, args.points)
                console.print(f"{backend}: built {args.trials:,} trials x {args.points} metric rows in {time.time() - t:.0f} s")
                results[f"{backend}, Chromium"] = time_seqdb(url, Path(tmp))
                results[f"{backend}, AppTest script"] = time_apptest(url)
            finally:
                drop(url, args.pg_admin)
        if not args.no_peer:
            if not Path(args.peer_python).exists():
                raise SystemExit(f"error: --peer-python {args.peer_python} not found; install optuna-dashboard there or pass --no-peer")
            study_id = build_optuna(Path(tmp) / "optuna.db", args.trials, args.points)
            peer = time_optuna_dashboard(args.peer_python, Path(tmp) / "optuna.db", study_id, Path(tmp))
    report(results, peer, args.trials)


if __name__ == "__main__":
    main()
