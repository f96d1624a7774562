"""Rungs of the (size, tokens) ladder as trials: every searched configuration once per rung,
trained for the rung's tokens (see seqdb/experiment/ladder.py for the experiment keys)."""

from __future__ import annotations

from seqdb.experiment.ladder import LADDER_MAX_EPOCHS, steps_for_tokens
from seqdb.search.build import BuiltTrial


def with_tokens(built: BuiltTrial, tokens: int) -> BuiltTrial:
    """`built` trained for `tokens` tokens: max_steps from the effective batch and context
    length, epochs no longer the limit; the rung is recorded in the trial's params."""
    cfg = built.config
    steps = steps_for_tokens(tokens, cfg.training.effective_batch_size, cfg.data.context_length)
    training = cfg.training.model_copy(update={"max_steps": steps, "max_epochs": LADDER_MAX_EPOCHS})
    config = cfg.model_copy(update={"training": training})
    return BuiltTrial(config, built.counts, {**built.params, "tokens": int(tokens)}, built.architecture, built.label)


def ladder_trials(trials: list[BuiltTrial], rungs: list[int]) -> list[BuiltTrial]:
    """Each configuration at each rung, rung-major (the shortest rung of every configuration first)."""
    return [with_tokens(t, d) for d in sorted(rungs) for t in trials]
