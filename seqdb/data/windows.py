"""The in-memory contract between data preparation and the trainer.

A `WindowSet` is one split of a prepared dataset at one horizon. Rows of all sequences are
concatenated in (sequence, position) order; window `i` covers rows
`starts[i] : starts[i] + context_length` and never crosses a sequence boundary. The arrays
may be numpy memmaps (prepared data is memory-mapped, never re-parsed).

- `real`: float32 [T, n_real], already normalised with training-split statistics.
- `cat`: int64 [T, n_cat], categorical ids (0 unknown/padding, 1 other, 2+ values).
- `targets[name]`: [T]; for a categorical target int64 class ids with -1 = ignore, for a real
  target float32 with NaN = ignore. The value at row t is the target for the horizon as seen
  from t (so a causal model predicts it from rows up to t only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class WindowSet:
    real: np.ndarray  # [T, n_real] float32
    cat: np.ndarray  # [T, n_cat] int64
    targets: dict[str, np.ndarray]  # name -> [T]
    starts: np.ndarray  # [N] int64
    context_length: int
    real_columns: list[str] = field(default_factory=list)
    cat_columns: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def window_rows(self, idx: np.ndarray) -> np.ndarray:
        """Row indices [B, L] of the windows `idx`."""
        return self.starts[idx][:, None] + np.arange(self.context_length)[None, :]

    def batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(real [B, L, n_real], cat [B, L, n_cat], {target: [B, L]}) for windows `idx`."""
        rows = self.window_rows(np.asarray(idx))
        return (
            np.asarray(self.real[rows]),
            np.asarray(self.cat[rows]),
            {name: np.asarray(arr[rows]) for name, arr in self.targets.items()},
        )
