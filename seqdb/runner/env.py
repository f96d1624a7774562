"""Where a trial ran, recorded in `trial.env` when its training starts: torch's thread count,
torch / Python / seqdb versions, the git commit of the code (None outside a checkout) and the
host. A rerun on another core count or code version is then told apart from noise."""

from __future__ import annotations

import functools
import platform
import socket
import subprocess
from pathlib import Path
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from seqdb.db.engine import session_scope
from seqdb.db.models import Trial
from seqdb.runner.queue import Lease


@functools.lru_cache(maxsize=1)
def git_commit() -> Optional[str]:
    """The commit of the checkout seqdb runs from (None for an installed wheel or without git)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_env() -> dict:
    import torch

    from seqdb import __version__

    return {"threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
            "seqdb": __version__, "git_commit": git_commit(), "host": socket.gethostname()}


def record_env(engine: Engine, lease: Lease) -> bool:
    """Write run_env() into the leased trial (only while this worker holds this attempt's lease)."""
    stmt = (sa.update(Trial).where(Trial.trial_id == lease.trial_id, Trial.lease_owner == lease.worker_id,
                                   Trial.attempt == lease.attempt).values(env=run_env()))
    with session_scope(engine) as s:
        return s.execute(stmt).rowcount == 1
