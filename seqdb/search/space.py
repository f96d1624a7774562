"""Expanding a search space into configurations (pure: no database, no model).

A space becomes a list of *factors*. A factor is one independent choice: a single parameter
(`dropout`), a linked-by-index group (`learning_rate` with `epochs` and `scheduler`), one
column's embedding size (`embedding_dim.weekday`), or the architecture (one row of the
budget's grid). A discrete factor has options, each setting one or more flat parameters; a
continuous factor has a Distribution. Grid search is the Cartesian product of the factors'
options; random search draws each factor; ablation varies one factor at a time around a
baseline; Optuna sees one distribution per factor.

A configuration is a flat dict: {"learning_rate": 1e-3, "epochs": 20, "dropout": 0.1,
"architecture": 2, "d_model": 128, ...}; it is what `trial.params` stores.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterator, Optional

import optuna.distributions as od

from seqdb.errors import ConfigError
from seqdb.config.search import LINKED_GROUPS, SHAPE_KEYS, Distribution, SearchSpace

SCALARS = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Factor:
    """One independent choice of the search (see the module docstring)."""

    name: str  # the Optuna parameter name; also a key of every configuration
    options: Optional[tuple[dict, ...]] = None  # discrete: flat params each option sets
    dist: Optional[Distribution] = None  # continuous: a range for `name`

    @cached_property
    def keys(self) -> list:
        """Optuna's categorical choices: the anchor's values when distinct scalars, else indices."""
        values = [opt[self.name] for opt in self.options]
        distinct = len({json.dumps(v, sort_keys=True) for v in values}) == len(values)
        if distinct and all(isinstance(v, SCALARS) for v in values):
            return values
        return list(range(len(values)))

    def size(self, where: str = "search.space") -> int:
        return len(self.options) if self.options is not None else len(self.grid_options(where))

    def grid_options(self, where: str = "search.space") -> tuple[dict, ...]:
        if self.options is not None:
            return self.options
        try:
            return tuple({self.name: v} for v in self.dist.grid_values(f"{where}.{self.name}"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


# --------------------------------------------------------------------------------------
# space -> factors
# --------------------------------------------------------------------------------------
def space_factors(space: Optional[SearchSpace], architectures: Optional[list[dict]] = None) -> list[Factor]:
    """The factors of a space. With `architectures` (the budget's grid: dicts with an
    `architecture` ordinal and the shape keys) the shape keys are replaced by one
    `architecture` factor; without, shape keys are plain factors (pure expansion)."""
    given = space.given() if space is not None else {}
    factors: list[Factor] = []
    if architectures is not None:
        if not architectures:
            raise ConfigError("the budget has no architecture to search")
        factors.append(Factor("architecture", options=tuple(architectures)))
        given = {k: v for k, v in given.items() if k not in SHAPE_KEYS and k != "embedding_dims"}
    done: set[str] = set()
    for anchor, members in LINKED_GROUPS.items():
        value = given.get(anchor)
        if isinstance(value, list):
            factors.append(_linked_factor(anchor, value, {m: given[m] for m in members if m in given}))
            done |= {anchor, *members}
    for name, value in given.items():
        if name in done:
            continue
        if name == "embedding_dim":
            factors.extend(_factor(f"embedding_dim.{col}", v) for col, v in value.items())
        else:
            factors.append(_factor(name, value))
    return factors


def _factor(name: str, value: Any) -> Factor:
    if isinstance(value, Distribution):
        return Factor(name, dist=value)
    values = value if isinstance(value, list) else [value]
    return Factor(name, options=tuple({name: v} for v in values))


def _linked_factor(anchor: str, values: list, members: dict[str, Any]) -> Factor:
    options = []
    for i, v in enumerate(values):
        option = {anchor: v}
        for member, member_value in members.items():
            option[member] = member_value[i] if isinstance(member_value, list) else member_value
        options.append(option)
    return Factor(anchor, options=tuple(options))


def grid_size(factors: list[Factor]) -> int:
    return math.prod(f.size() for f in factors)


# --------------------------------------------------------------------------------------
# strategies: grid, sample, ablation
# --------------------------------------------------------------------------------------
def grid_configs(factors: list[Factor]) -> Iterator[dict]:
    """Every combination, in a deterministic order (the first factor varies slowest)."""
    for combo in itertools.product(*(f.grid_options() for f in factors)):
        config: dict = {}
        for option in combo:
            config.update(option)
        yield config


def draw(factor: Factor, rng: random.Random) -> dict:
    """One random option of a factor (a log range is drawn log-uniformly)."""
    if factor.options is not None:
        return factor.options[rng.randrange(len(factor.options))]
    d = factor.dist
    if d.step is not None or d.is_int:
        values = d.grid_values(factor.name)
        return {factor.name: values[rng.randrange(len(values))]}
    if d.log:
        value = math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
    else:
        value = rng.uniform(d.low, d.high)
    return {factor.name: value}


def sample_configs(factors: list[Factor], n: int, seed: int) -> list[dict]:
    """`n` distinct random configurations (fewer when the space has fewer), seeded."""
    if all(f.dist is None or f.dist.is_int or f.dist.step is not None for f in factors):
        total = grid_size(factors)
        if total <= n:
            return list(grid_configs(factors))
    rng = random.Random(seed)
    seen: set[str] = set()
    configs: list[dict] = []
    for _ in range(max(1000, 50 * n)):
        config: dict = {}
        for f in factors:
            config.update(draw(f, rng))
        key = json.dumps(config, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            configs.append(config)
            if len(configs) == n:
                break
    return configs


def ablation_configs(factors: list[Factor], baseline: Optional[dict], where: str = "search.baseline") -> list[tuple[str, dict]]:
    """The baseline, then each factor's other options one at a time: [(label, config)]."""
    chosen = baseline_options(factors, baseline or {}, where)
    base: dict = {}
    for option in chosen:
        base.update(option)
    out = [("baseline", base)]
    for factor, base_option in zip(factors, chosen):
        for option in factor.grid_options():
            if option == base_option:
                continue
            out.append((ablation_label(factor, option), {**base, **option}))
    if len(out) == 1:
        raise ConfigError("ablation has nothing to vary: every factor in search.space has a single value")
    return out


def baseline_options(factors: list[Factor], baseline: dict, where: str) -> list[dict]:
    """Each factor's baseline option: the one matching `baseline`, else its first option."""
    known = {k for f in factors for opt in f.grid_options() for k in opt}
    unknown = sorted(set(baseline) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown parameter {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
    chosen = []
    for factor in factors:
        options = factor.grid_options()
        wanted = {k: v for k, v in baseline.items() if k in options[0]}
        match = [o for o in options if all(_same(o.get(k), v) for k, v in wanted.items())]
        if wanted and not match:
            raise ConfigError(f"{where}: {wanted} is not one of the values of {factor.name} in search.space")
        chosen.append(match[0] if match else options[0])
    return chosen


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return a == b


def ablation_label(factor: Factor, option: dict) -> str:
    head = f"{factor.name}={_short(option[factor.name])}"
    rest = [f"{k}={_short(v)}" for k, v in option.items() if k != factor.name and k != "architecture"]
    if factor.name == "architecture":
        head = "architecture=" + shape_label(option)
        rest = []
    return (head + (f" ({', '.join(rest)})" if rest else ""))[:200]


def shape_label(shape: dict) -> str:
    kv = shape.get("n_kv_heads")
    return f"d{shape.get('d_model')}-L{shape.get('n_layers')}-h{shape.get('n_head')}-kv{kv if kv else shape.get('n_head')}-ff{shape.get('d_ff')}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# --------------------------------------------------------------------------------------
# Optuna's view: one distribution per factor
# --------------------------------------------------------------------------------------
def optuna_distributions(factors: list[Factor]) -> dict[str, od.BaseDistribution]:
    out: dict[str, od.BaseDistribution] = {}
    for f in factors:
        if f.options is not None:
            out[f.name] = od.CategoricalDistribution(f.keys)
        elif f.dist.is_int:
            out[f.name] = od.IntDistribution(int(f.dist.low), int(f.dist.high), log=f.dist.log, step=int(f.dist.step or 1))
        else:
            out[f.name] = od.FloatDistribution(f.dist.low, f.dist.high, log=f.dist.log, step=f.dist.step)
    return out


def config_from_optuna(factors: list[Factor], params: dict[str, Any]) -> dict:
    """Optuna's chosen values -> a flat configuration."""
    config: dict = {}
    for f in factors:
        value = params[f.name]
        if f.options is not None:
            config.update(f.options[f.keys.index(value)])
        else:
            config[f.name] = value
    return config


def optuna_from_config(factors: list[Factor], config: dict) -> Optional[dict[str, Any]]:
    """A flat configuration -> Optuna's values (None when it is not in this space)."""
    params: dict[str, Any] = {}
    for f in factors:
        if f.options is None:
            if f.name not in config:
                return None
            params[f.name] = config[f.name]
            continue
        keys = f.keys
        index = next((i for i, o in enumerate(f.options) if all(_same(config.get(k), v) for k, v in o.items())), None)
        if index is None:
            return None
        params[f.name] = keys[index]
    return params
