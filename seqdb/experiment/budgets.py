"""Parameter budgets written the way people say them: `500k`, `2M`, `20M`, `1.5B`, `2e7`.

Suffixes (case-insensitive): k = 10^3, M = 10^6, B or G = 10^9, T = 10^12. A plain integer
or scientific notation (`2e7`) works too. The result must be a positive whole number of
parameters (`1.5k` is 1500; `1.0005k` is an error).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from seqdb.errors import ConfigError

MAX_BUDGET = 10**14  # 100T parameters: anything above is a typo (and 1e999999999 must not become an int)
ACCEPTED_FORMS = "a positive whole number of parameters up to 100T such as 500k, 2M, 20M, 1.5B, 2e7 or 800000 (suffixes k, M, B, T; case-insensitive)"
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?(?:e[+-]?\d+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)
_FORMAT_UNITS = (("T", 10**12), ("B", 10**9), ("M", 10**6), ("k", 10**3))


def parse_budget(text: str | int) -> int:
    """`"2M"` -> 2_000_000. Raises ConfigError listing the accepted forms."""
    if isinstance(text, bool):
        raise ConfigError(f"budget {text!r}; allowed: {ACCEPTED_FORMS}")
    if isinstance(text, int):
        value = Decimal(text)
    else:
        if len(str(text)) > 40:
            raise ConfigError(f"budget {str(text)[:40]!r}... is not a parameter count; allowed: {ACCEPTED_FORMS}")
        match = _PATTERN.match(str(text))
        if not match:
            raise ConfigError(f"budget {text!r} is not a parameter count; allowed: {ACCEPTED_FORMS}")
        try:
            value = Decimal(match.group(1)) * _UNITS[match.group(2).lower()]
        except (InvalidOperation, ArithmeticError):  # decimal.Overflow: an exponent beyond Decimal's range
            raise ConfigError(f"budget {text!r} is not a parameter count; allowed: {ACCEPTED_FORMS}") from None
    if value > MAX_BUDGET:  # before any int(): a huge exponent would not fit in memory
        raise ConfigError(f"budget {text!r} is above 100T parameters; allowed: {ACCEPTED_FORMS}")
    if value != value.to_integral_value() or value <= 0:
        raise ConfigError(f"budget {text!r} is not a positive whole number of parameters; allowed: {ACCEPTED_FORMS}")
    return int(value)


def format_budget(n: int) -> str:
    """2_000_000 -> "2M", 500_000 -> "500k", 1_500_000_000 -> "1.5B", 1234 -> "1.234k"."""
    n = int(n)
    for suffix, unit in _FORMAT_UNITS:
        if n >= unit:
            text = f"{Decimal(n) / unit:f}".rstrip("0").rstrip(".") if n % unit else str(n // unit)
            return f"{text}{suffix}"
    return str(n)
