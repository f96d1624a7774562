"""The (size, tokens) ladder of an experiment: how long each trial trains.

Besides `budgets`, an experiment may say how many training tokens each trial sees (one of):

    tokens: [2M, 8M, 32M]            # absolute, the same rungs for every budget
    tokens_per_param: [5, 20, 80]    # D = r x N for a budget of N parameters
    compute: [1e13, 1e14]            # FLOP budgets: D = C / (6 N) for each budget (IsoFLOP slices)

N is the budget's nominal parameter count (the label), so every architecture of a budget
trains on the same D. Each rung becomes a copy of every searched configuration with
`training.max_steps = ceil(D / (effective_batch_size x context_length))` (one optimizer step
consumes that many tokens), so each study per (budget, horizon) gives every rung the same
configurations: equal effort across the ladder.
"""

from __future__ import annotations

import math
from typing import Any

from seqdb.experiment.budgets import parse_budget

LADDER_KEYS = ("tokens", "tokens_per_param", "compute")
LADDER_MAX_EPOCHS = 100_000  # a ladder trial stops at its tokens (max_steps), not at an epoch count


def parse_flops(value: Any) -> float:
    """A FLOP count: a number (1e15) or a budget-style text (`2e15`, `500T`)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        out = float(value)
    else:
        text = str(value).strip()
        suffix = {"k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9, "t": 1e12, "p": 1e15, "e": 1e18}.get(text[-1:].lower()) if text[-1:].isalpha() else None
        try:
            out = float(text[:-1]) * suffix if suffix else float(text)
        except ValueError:
            raise ValueError(f"found {value!r}; allowed: a positive number of FLOPs, e.g. 1e15 or 500T") from None
    if not math.isfinite(out) or out <= 0:
        raise ValueError(f"found {value!r}; allowed: a positive, finite number of FLOPs")
    return out


def ladder_tokens(cfg: Any, n_params: int) -> list[int]:
    """The training tokens of each rung for a budget of `n_params` (empty: no ladder)."""
    if getattr(cfg, "tokens", None):
        return [parse_budget(t) for t in cfg.tokens]
    if getattr(cfg, "tokens_per_param", None):
        return [max(1, round(r * n_params)) for r in cfg.tokens_per_param]
    if getattr(cfg, "compute", None):
        return [max(1, round(parse_flops(c) / (6 * n_params))) for c in cfg.compute]
    return []


def steps_for_tokens(tokens: int, effective_batch_size: int, context_length: int) -> int:
    """Optimizer steps that train on at least `tokens` tokens."""
    return max(1, math.ceil(tokens / (effective_batch_size * context_length)))
