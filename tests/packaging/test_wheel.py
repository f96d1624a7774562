"""The built wheel works outside the repository: migrations and the dashboard ship inside the
package, so a plain (non-editable) install can migrate, run the demo and serve the dashboard."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv outside the repo with the wheel installed (--no-deps); the dependencies
    come from this environment's site-packages through a .pth line (not its .pth files, so the
    editable install of the checkout stays invisible)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # build from a copy: the checkout gets no build/ or egg-info
    shutil.copytree(ROOT / "seqdb", src / "seqdb", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True, text=True, cwd=tmp)
    wheel = next((tmp / "dist").glob("seqdb-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "deps-from-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, text=True, cwd=tmp)
    return venv


def _seqdb(venv: Path, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEQDB_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    return subprocess.run([str(venv / "bin" / "seqdb"), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def test_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    code = ("import seqdb, seqdb.db.migrate as m, seqdb.cli.views_cmds as v; print(seqdb.__file__); print(m.MIGRATIONS_DIR); "
            "print(v.DASHBOARD_APP); print(*sorted(p.name for p in v.DASHBOARD_APP.parent.glob('screens/*.py')))")
    lines = subprocess.run([str(installed / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=tmp_path,
                           check=True).stdout.splitlines()
    assert all(str(installed) in line and str(ROOT) not in line for line in lines[:3]), lines
    assert Path(lines[1], "env.py").is_file() and list(Path(lines[1], "versions").glob("*.py"))
    assert {"scaling.py", "studies.py", "trials.py"} <= set(lines[3].split()), lines[3]


def test_init_current_demo_and_dashboard_from_outside_the_repo(installed, tmp_path):
    r = _seqdb(installed, "init", "proj", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _seqdb(installed, "db", "current", cwd=tmp_path / "proj")
    assert r.returncode == 0 and "up to date" in r.stdout, r.stdout + r.stderr
    r = _seqdb(installed, "demo", "--quick", "--path", "demo", "--workers", "1", cwd=tmp_path, timeout=600)
    assert r.returncode == 0 and "best validation loss" in r.stdout, r.stderr[-2000:]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQDB_")}
    proc = subprocess.Popen([str(installed / "bin" / "seqdb"), "dashboard", "--port", str(port)], cwd=tmp_path / "demo",
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        assert _healthy(f"http://127.0.0.1:{port}", proc), proc.stdout.read() if proc.poll() is not None else "no health"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def _healthy(url: str, proc: subprocess.Popen, wait_s: float = 60.0) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200 and r.read().strip() == b"ok":
                    with urllib.request.urlopen(url + "/", timeout=5) as page:
                        return page.status == 200
        except OSError:
            time.sleep(0.5)
    return False
