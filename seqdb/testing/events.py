"""A JSONL event sink for the worker loop (soak tests and benchmarks read it back)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass


@dataclass
class EventLog:
    """Append-only JSONL (one write per line: O_APPEND keeps lines whole across processes)."""

    path: str

    def __call__(self, **event) -> None:
        line = json.dumps({"t": time.time(), "pid": os.getpid(), **event}) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
