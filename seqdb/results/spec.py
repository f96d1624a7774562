"""What an exported model needs to read raw data and write answers in original units.

Every ONNX file seqdb exports carries one `InferenceSpec` as JSON in its metadata (key
`seqdb`), so `seqdb infer` needs nothing but the file: the input columns in model order,
the categorical id maps (0 unknown, 1 other, 2+ values), the training-split normalisation
statistics, the missing-value policy, the targets with their class labels and units, and the context length.
A file without this key is not a seqdb model and is refused.
"""

from __future__ import annotations

import json
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

FORMAT = "seqdb-onnx/1"
METADATA_KEY = "seqdb"
UNKNOWN_ID = 0  # a missing categorical value
OTHER_ID = 1  # a value the id map does not know (as rare training values)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(Strict):
    name: str
    kind: Literal["categorical", "real"]
    mean: float = 0.0  # real only: x_model = (x - mean) / std
    std: float = 1.0
    id_map: Optional[dict[str, int]] = None  # categorical only: str(value) -> id


class TargetOut(Strict):
    name: str
    kind: Literal["categorical", "real"]
    n_classes: int = 0
    classes: Optional[list] = None  # categorical: label of class id i (None: the id itself)
    mean: float = 0.0  # real: value = pred * std + mean
    std: float = 1.0
    task: Optional[str] = None  # direction | threshold | regression | next_category
    column: Optional[str] = None  # the raw column the target is derived from
    feeds_input: Optional[str] = None  # input column this target's prediction becomes (autoregression)


class InferenceSpec(Strict):
    format: str = FORMAT
    kind: Literal["generative", "embedding"] = "generative"
    context_length: int = Field(gt=0)
    horizon: int = Field(default=1, gt=0)
    sequence_column: str = "sequenceId"
    position_column: str = "itemPosition"
    nan_policy: Literal["error", "ffill", "zero"] = "error"  # missing real inputs, as in preparation
    real_inputs: list[InputSpec]  # in model order ([B, L, R])
    cat_inputs: list[InputSpec]  # in model order ([B, L, C])
    targets: list[TargetOut]
    d_model: int = 0
    dataset_hash: str = ""
    source: dict = Field(default_factory=dict)  # experiment, budget, trial_id, study_id
    sibling: Optional[str] = None  # file name of the other model of the pair

    @property
    def input_columns(self) -> list[str]:
        return [c.name for c in self.real_inputs] + [c.name for c in self.cat_inputs]

    def to_metadata(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_metadata(cls, text: str) -> "InferenceSpec":
        return cls.model_validate(json.loads(text))

    def with_kind(self, kind: str, sibling: Optional[str]) -> "InferenceSpec":
        return self.model_copy(update={"kind": kind, "sibling": sibling})
