"""Run by tests/train/test_ddp.py under `torchrun --nproc_per_node 2`: train, write rank results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from seqdb.train.distributed import init_from_torchrun
from tests.train.test_ddp import _run

if __name__ == "__main__":
    torch.set_num_threads(1)
    ctx, device = init_from_torchrun()
    out = Path(sys.argv[1])
    result = _run(out / f"torchrun{ctx.rank}")
    (out / f"torchrun{ctx.rank}.json").write_text(json.dumps(result | {"world": ctx.world, "device": device}))
    torch.distributed.destroy_process_group()
