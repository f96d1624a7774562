"""The typed configuration of one study, stored as JSON in `study.config`.

Written once by the study's creator (`seqdb.search.study.write_plan`) with
`StudyConfig(...).model_dump(mode="json")` and read back everywhere with
`study_config(study)`. Every field has a default, so rows written before a field existed
(or by the synthetic harness, with `config={}`) still read.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, Field

from seqdb.config.search import SearchSpec


class StudyContext(BaseModel):
    """What every trial of one study shares; a sampler in any process rebuilds trials
    from it exactly as the study's creator did."""

    experiment: str
    budget: str  # label as written: "2M"
    n_params: int
    tolerance: float
    horizon: int
    seed: int
    max_epochs: int
    training: dict  # the experiment's TrainingConfig fields
    data_spec: dict  # the full DataSpec (every input column) as JSON
    architectures: list[dict] = Field(default_factory=list)  # {"architecture": ordinal, shape..., "config": model dict}
    max_attempts: int = 3  # the experiment's max_attempts: lease expiries before a trial fails for good

    def in_budget(self, total: int) -> bool:
        return self.n_params * (1 - self.tolerance) <= total <= self.n_params * (1 + self.tolerance)

    def architecture_ids(self) -> dict[int, Optional[int]]:
        """ordinal -> architecture_id (filled in when the study was written)."""
        return {a["architecture"]: a.get("architecture_id") for a in self.architectures}


class Effort(BaseModel):
    equal_effort: bool = True  # same trials and epochs for every budget of the experiment
    n_trials: Optional[int] = None
    max_epochs: Optional[int] = None


class StudyConfig(BaseModel):
    search: SearchSpec = Field(default_factory=SearchSpec)  # the experiment's search: section
    context: Optional[StudyContext] = None  # None only for hand-made studies (tests, harness)
    stats: dict[str, Any] = Field(default_factory=dict)  # expansion counts: grid_size, expanded, invalid, ...
    factors: list[str] = Field(default_factory=list)  # names of the searched factors
    effort: Effort = Field(default_factory=Effort)


def study_config(study: Any) -> StudyConfig:
    """The study row's config, typed (`study` is a `seqdb.db.models.Study`)."""
    return StudyConfig.model_validate(study.config or {})
