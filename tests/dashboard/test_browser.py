"""A real browser: `seqdb dashboard` on a seeded SQLite database, every page in headless Chromium.

Asserts each page's key text and that no error box shows; screenshots go to artifacts/dashboard/.
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

from seqdb.db.engine import create_engine_for
from seqdb.db.migrate import upgrade
from tests.views.seed import seed

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "dashboard"
CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
PAGES = {  # url path -> text that must appear
    "scaling": "95% bootstrap intervals",
    "studies": "live workers",
    "trials": "learning curve",
    "curves": "Learning curves",
    "importance": "parallel coordinates",
    "pareto": "non-dominated",
    "workers": "tokens/s",
}


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


@pytest.fixture
def dashboard(tmp_path):
    url = f"sqlite:///{tmp_path / 'seqdb.db'}"
    eng = create_engine_for(url)
    upgrade(eng)
    seeded = seed(eng)
    eng.dispose()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "seqdb", "--db", url, "dashboard", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}", seeded
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


@pytest.fixture
def browser(tmp_path):
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
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1400,1800"):
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


def test_every_page_in_chromium(dashboard, browser):
    from selenium.webdriver.common.by import By

    base, seeded = dashboard
    SHOTS.mkdir(parents=True, exist_ok=True)
    for path, text in PAGES.items():
        query = f"?trial_id={seeded.best_trial[('2M', 1)]}" if path == "trials" else ""
        browser.get(f"{base}/{'' if path == 'scaling' else path}{query}")  # scaling is the default page
        body = _wait_text(browser, text)
        errors = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"], [data-testid="stAlertContentError"]')
        assert not errors, f"{path}: error box: {[e.text for e in errors]}"
        assert "Traceback" not in body and "Error" not in body.split("\n", 1)[0]
        _wait_rendered(browser)
        browser.save_screenshot(str(SHOTS / f"{path}.png"))
    assert len(list(SHOTS.glob("*.png"))) >= len(PAGES)
