"""A real single-node Slurm cluster on this machine, for the tests: munged, slurmctld and
slurmd (Debian's `slurm-wlm` and `munge`), configured in a temporary folder.

    with local_slurm(tmp) as env:      # env: os.environ + SLURM_CONF
        subprocess.run(["sbatch", ...], env=env)

One node (this host, its real CPU count), one partition, no cgroups, no accounting. What
this helper starts it stops again, by pid; a munged already running is left alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "srun")
MUNGE_SOCKET_DIR = Path("/run/munge")

CONF = """\
ClusterName=seqdbtest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=30
NodeName={host} CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def missing() -> Optional[str]:
    """Why this machine cannot run the local cluster (None: it can)."""
    absent = [name for name in DAEMONS if shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()]
    if absent:
        return f"Slurm is not installed ({', '.join(absent)} not found): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "the local Slurm cluster runs slurmd as root; these tests run as a normal user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _munge_ok() -> bool:
    enc = subprocess.run(["munge", "-n"], capture_output=True)
    return enc.returncode == 0 and subprocess.run(["unmunge"], input=enc.stdout, capture_output=True).returncode == 0


def start_munged() -> Optional[int]:
    """Start munged unless one answers already; returns the pid started (or None)."""
    if _munge_ok():
        return None
    MUNGE_SOCKET_DIR.mkdir(parents=True, exist_ok=True)
    shutil.chown(MUNGE_SOCKET_DIR, "munge", "munge")
    subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True, capture_output=True, timeout=30)
    for _ in range(50):
        if _munge_ok():
            return int((MUNGE_SOCKET_DIR / "munged.pid").read_text())
        time.sleep(0.1)
    raise RuntimeError("munged started but does not answer `munge -n | unmunge`")


def _wait_idle(env: dict, folder: Path, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip() in ("idle", "mix", "alloc"):
            return
        time.sleep(0.3)
    logs = "".join((folder / f).read_text()[-1500:] for f in ("slurmctld.log", "slurmd.log") if (folder / f).exists())
    raise RuntimeError(f"the Slurm node did not come up within {timeout:.0f}s: {logs}")


def _stop(pidfile: Path) -> None:
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


@contextmanager
def local_slurm(folder: Path) -> Iterator[dict]:
    """A running one-node cluster; yields the environment its commands need."""
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool"):
        (folder / sub).mkdir(exist_ok=True)
    conf = folder / "slurm.conf"
    conf.write_text(CONF.format(host=socket.gethostname().split(".")[0], dir=folder, cpus=os.cpu_count() or 1,
                                ctld_port=_free_port(), d_port=_free_port()))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    munged = start_munged()
    try:
        subprocess.run(["slurmctld", "-f", str(conf)], env=env, check=True, capture_output=True, timeout=60)
        subprocess.run(["slurmd", "-f", str(conf)], env=env, check=True, capture_output=True, timeout=60)
        _wait_idle(env, folder)
        yield env
    finally:
        subprocess.run(["scancel", "--quiet", "-u", "root"], env=env, capture_output=True, timeout=30)
        _stop(folder / "slurmd.pid")
        _stop(folder / "slurmctld.pid")
        if munged is not None:
            os.kill(munged, signal.SIGTERM)
