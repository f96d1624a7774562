"""`FitResult`: one fitted scaling law (L(N) from `seqdb.scaling.fit`, L(N, D) from
`seqdb.scaling.nd`), in its own module so both fits build it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class FitResult:
    """One fitted law; `to_json()` is the documented JSON object (docs/scaling.md)."""

    law: str
    objective: str
    K: int
    df: int
    params: dict
    ci95: dict
    ci_method: str
    s: Optional[float]
    flags: list[str]
    at: Optional[dict] = None
    extra: dict = field(default_factory=dict)  # keys starting with "_" stay out of the JSON

    def to_json(self) -> dict:
        out = {"law": self.law, "objective": self.objective, "K": self.K, "df": self.df,
               "params": {k: float(v) for k, v in self.params.items()},
               "ci95": {k: [float(v[0]), float(v[1])] for k, v in self.ci95.items()},
               "ci_method": self.ci_method, "s": None if self.s is None else float(self.s),
               "flags": list(self.flags), "at": self.at}
        out.update({k: v for k, v in self.extra.items() if not k.startswith("_")})
        return out

    def predict(self, n: np.ndarray | float) -> np.ndarray:
        p = self.params
        return p["E"] + p["A"] * np.power(np.asarray(n, dtype=float), -p["alpha"])
