"""Choosing on validation, never on test: the best configuration and the best seed of each.

Rule: among the architecture x cell configurations trained on the main dataset with the profile's
default settings, take the configuration with the highest mean (over seeds) best-validation
CIDEr-D, then its seed with the highest validation CIDEr-D. Test scores are reported, never used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from benchmark.runner import RunRecord

ARCHS = ("meanpool", "s2vt", "attention")
CELLS = ("rnn", "gru", "lstm")
SELECTION_RULE = (
    "the architecture x cell configuration with the highest mean best-validation CIDEr-D over its seeds, "
    "then that configuration's seed with the highest validation CIDEr-D (test scores are never used to choose)"
)


def grid_labels() -> list[str]:
    return [f"{arch}-{cell}" for arch in ARCHS for cell in CELLS]


def val_cider(record: RunRecord) -> float:
    """The run's best validation CIDEr-D; NaN when it has no checkpoint (diverged before validating)."""
    value = (record.result.get("best_val") or {}).get("CIDEr")
    return float(value) if value is not None and record.best_checkpoint is not None else float("nan")


@dataclass
class Choice:
    label: str  # configuration, e.g. "attention-lstm"
    records: list[RunRecord]  # its seeds
    mean_val: float
    record: RunRecord  # the chosen seed


def best_of(records: list[RunRecord]) -> RunRecord | None:
    usable = [r for r in records if math.isfinite(val_cider(r))]
    return max(usable, key=lambda r: (val_cider(r), -r.seed)) if usable else None


def choose(groups: dict[str, list[RunRecord]]) -> Choice | None:
    scored = []
    for label, records in groups.items():
        values = [val_cider(r) for r in records if math.isfinite(val_cider(r))]
        best = best_of(records)
        if values and best is not None:
            scored.append(Choice(label, records, float(np.mean(values)), best))
    return max(scored, key=lambda c: (c.mean_val, c.label)) if scored else None
