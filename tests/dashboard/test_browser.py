"""A real browser: `seqdb dashboard` on a seeded SQLite database, every page in headless Chromium.

Opens every page by its own URL (and `/`, which lands on /scaling), asserts its title and key
text and that no error box or "Page not found" dialog shows; screenshots go to
artifacts/dashboard/. Then a worker appears in the database and the Workers page shows it
without a reload (the auto-refresh while workers are live).
Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them when missing).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from seqdb.dashboard.common import TTL_S
from seqdb.db.engine import create_engine_for, session_scope
from seqdb.db.migrate import upgrade
from seqdb.db.models import Worker, utcnow
from tests.dashboard.conftest import seed_hp
from tests.views.seed import heartbeat, seed

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "dashboard"
CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
PAGES = {  # url path (and query) -> (title, text that must appear)
    "scaling?experiment=scale": ("Scaling", "95% intervals"),
    "compute?experiment=scale": ("Compute", "tokens"),
    "studies": ("Studies", "live workers"),
    "history?experiment=hp": ("History", "contour: the loss over two searched parameters"),
    "trials": ("Trials", "learning curves"),
    "curves": ("Learning curves", "losses share one axis"),
    "importance": ("Importance & parallel coordinates", "parallel coordinates"),
    "pareto?experiment=mo": ("Pareto", "non-dominated"),
    "workers": ("Workers", "tokens/s"),
}
PROBLEMS = '[data-testid="stException"], [data-testid="stAlertContentError"], [role="dialog"]'  # errors, "Page not found"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dashboard exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("dashboard did not come up")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """(base URL, Seeded, database URL) of one `seqdb dashboard` for the module (the last test adds a worker)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'seqdb.db'}"
    eng = create_engine_for(url)
    upgrade(eng)
    seeded = seed(eng)
    eng.dispose()
    seed_hp(url)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "seqdb", "--db", url, "dashboard", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}", seeded, url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        if os.environ.get("CI") == "true":
            pytest.fail("chromium / chromedriver missing under CI=true (.ci/run installs them)")
        pytest.skip("chromium / chromedriver not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('chrome')}", "--window-size=1400,2600"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def _wait_text(driver, text: str, timeout: float = 90) -> str:
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    body = ""
    while time.time() < deadline:
        body = driver.find_element(By.TAG_NAME, "body").text
        running = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        if text in body and not running:
            return body
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not on {driver.current_url}; page text: {body[:500]!r}")


def _wait_rendered(driver, timeout: float = 20) -> None:
    """Charts and tables draw after the text: wait until every plotly chart has its SVG."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    while time.time() < deadline:
        charts = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"]')
        drawn = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"] .main-svg')
        if len(drawn) >= len(charts):
            break
        time.sleep(0.5)
    time.sleep(1.0)  # let the data grids paint


def _check_page(driver, path: str, title: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    body = _wait_text(driver, text)
    problems = driver.find_elements(By.CSS_SELECTOR, PROBLEMS)
    assert not problems, f"{path}: error box or dialog: {[e.text for e in problems]}"
    assert "Page not found" not in body and "Traceback" not in body, f"{path}: {body[:300]!r}"
    assert driver.find_element(By.TAG_NAME, "h1").text.strip() == title, path
    _wait_rendered(driver)


def test_every_page_by_its_url(dashboard, browser):
    base, seeded, _ = dashboard
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.get(f"{base}/?experiment=scale")  # the root lands on the Scaling page at its own URL, query kept
    _check_page(browser, "/", *PAGES["scaling?experiment=scale"])
    assert browser.current_url == f"{base}/scaling?experiment=scale", browser.current_url
    for path, (title, text) in PAGES.items():
        query = f"?trial_id={seeded.best_trial[('2M', 1)]}" if path == "trials" else ""
        browser.get(f"{base}/{path}{query}")
        _check_page(browser, path, title, text)
        browser.save_screenshot(str(SHOTS / f"{path.split('?')[0]}.png"))
    assert {p.stem for p in SHOTS.glob("*.png")} >= {p.split("?")[0] for p in PAGES}


def _live_workers(driver) -> str:
    from selenium.webdriver.common.by import By

    values = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]')  # the table is a canvas
    return values[0].text if values else ""


def test_workers_page_refreshes_itself(dashboard, browser):
    base, seeded, url = dashboard
    heartbeat(url, seeded.alive_worker)  # the module's first test may have outlived the 120 s liveness window
    time.sleep(TTL_S + 1)  # ... and the page's rows from then are cached for TTL_S
    browser.get(f"{base}/workers?experiment=scale")  # the live worker runs a study of `scale`
    _wait_text(browser, "tokens/s")
    assert _live_workers(browser) == "1"
    eng = create_engine_for(url)  # what `seqdb run` does when a second worker starts
    with session_scope(eng) as s:
        s.add(Worker(name="host-c:3:w", host="host-c", pid=3, state="running", last_seen_at=utcnow(), tokens_per_s=1.0))
    eng.dispose()
    deadline = time.time() + 60
    while time.time() < deadline and _live_workers(browser) != "2":
        time.sleep(1)
    assert _live_workers(browser) == "2", "the page did not refresh itself while a worker is live"
