"""Budget strings: the accepted forms, their integers, the short form, and the errors."""

from __future__ import annotations

import pytest

from seqdb.errors import ConfigError
from seqdb.experiment.budgets import format_budget, parse_budget


@pytest.mark.parametrize(
    "text, n",
    [
        ("500k", 500_000), ("500K", 500_000), ("2M", 2_000_000), ("2m", 2_000_000), ("20M", 20_000_000),
        ("1.5B", 1_500_000_000), ("1.5b", 1_500_000_000), ("2B", 2_000_000_000), ("2e7", 20_000_000),
        ("2E7", 20_000_000), ("1.5e6", 1_500_000), (" 3M ", 3_000_000), ("800000", 800_000), (800_000, 800_000),
        ("1T", 10**12), ("2.5k", 2500),
    ],
)  # fmt: skip
def test_parse_budget(text, n):
    assert parse_budget(text) == n


@pytest.mark.parametrize("text", ["abc", "2MB", "", "M", "-2M", "0", "0k", "1.0005k", "1e-3", "2 M B", "1,000", True, 0, -5])
def test_parse_budget_rejects(text):
    with pytest.raises(ConfigError) as info:
        parse_budget(text)
    msg = info.value.message
    assert "\n" not in msg and "allowed:" in msg and "500k, 2M, 20M, 1.5B, 2e7" in msg


@pytest.mark.parametrize("n, text", [(2_000_000, "2M"), (500_000, "500k"), (1_500_000_000, "1.5B"), (999, "999"), (1234, "1.234k"), (20_000_000, "20M")])
def test_format_budget(n, text):
    assert format_budget(n) == text
    assert parse_budget(format_budget(n)) == n
