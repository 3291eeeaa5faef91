"""Choosing on validation, never on test: the best configuration and the best seed of each.

Rule (the training loop's own selection rule, vidcap_core.training.convergence.selection_key): a run
is scored by the validation scores of its best.pt, on SynthClips (semantic exact accuracy, CIDEr-D)
compared in that order (CIDEr-D breaks ties of exact accuracy), on real data (CIDEr-D,). Among the
architecture x cell configurations trained on the main dataset with the profile's default
settings, take the configuration with the highest mean key over its seeds (component-wise mean,
compared in the same order), then its seed with the highest key. Test scores are reported, never used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from benchmark.runner import RunRecord
from vidcap_core.training.convergence import key_names, selection_key

ARCHS = ("meanpool", "s2vt", "attention")
CELLS = ("rnn", "gru", "lstm")
# Label suffix of attention over frame regions (TrainConfig.regions): attention-lstm-regions is
# attention-lstm reading each frame's object slots (synth-slots, or the oracle's; BenchContext.region_source);
# ranked for `best` like the architecture x cell grid. LSTM only, to keep the full profile near its hour:
# over 32 frames x 3 slots a step costs about 0.12 s on one busy core (attention-LSTM hidden 128, batch 64;
# 0.07-0.14 s over 32 whole frames; 0.70 s over synth-cnn's 16 grid regions, which the suite no longer runs).
REGIONS_SUFFIX = "-regions"
REGION_CELLS = ("lstm",)
VAL_COLUMNS = {"exact": "val exact", "CIDEr": "val CIDEr-D"}  # selection key component -> heading
SELECTION_RULE = (
    "the architecture x cell configuration (attention over frames or over frame regions) with the highest mean "
    "best-validation score over its seeds, then "
    "that configuration's seed with the highest one; the score is the training loop's selection key: on "
    "SynthClips semantic exact accuracy, ties broken by CIDEr-D, on real data CIDEr-D "
    "(test scores are never used to choose)"
)


def grid_labels() -> list[str]:
    """The configurations ranked for `best`: every architecture x cell, and attention over regions (REGION_CELLS)."""
    return [f"{arch}-{cell}" for arch in ARCHS for cell in CELLS] + [f"attention-{cell}{REGIONS_SUFFIX}" for cell in REGION_CELLS]


def region_options(label: str) -> dict[str, object]:
    """BenchContext.spec options that make a grid label's run: attention over regions or none."""
    return {"suffix": REGIONS_SUFFIX, "regions": True} if label.endswith(REGIONS_SUFFIX) else {}


def is_synth(record: RunRecord) -> bool:
    return record.config.get("dataset") == "synth"


def selection_values(record: RunRecord) -> dict[str, float]:
    """The components of the run's selection key by name ({"exact", "CIDEr"} or {"CIDEr"}), NaN when missing."""
    val = record.result.get("best_val") or {}
    return {name: float(val[name]) if val.get(name) is not None else math.nan for name in key_names(is_synth(record))}


def run_key(record: RunRecord) -> tuple[float, ...] | None:
    """The run's selection key; None when it has no checkpoint or no validation (diverged at once)."""
    val = record.result.get("best_val")
    if not val or record.best_checkpoint is None or val.get("CIDEr") is None:
        return None
    key = selection_key(val, is_synth(record))
    return key if all(math.isfinite(k) for k in key) else None


def val_cider(record: RunRecord) -> float:
    """The best validation CIDEr-D of the run (the checkpoint kept); NaN when it has no checkpoint."""
    key = run_key(record)
    return math.nan if key is None else float(key[-1])


@dataclass
class Choice:
    label: str  # configuration, e.g. "attention-lstm"
    records: list[RunRecord]  # its seeds
    mean_key: tuple[float, ...]  # component-wise mean of its seeds' selection keys
    record: RunRecord  # the chosen seed

    @property
    def key_names(self) -> tuple[str, ...]:
        return key_names(is_synth(self.record))

    def describe(self) -> str:
        means = ", ".join(f"{VAL_COLUMNS[n]} {v:.3f}" for n, v in zip(self.key_names, self.mean_key))
        return f"mean best {means} over {len(self.records)} seed(s)"


def best_of(records: list[RunRecord]) -> RunRecord | None:
    usable = [(key, r) for r in records if (key := run_key(r)) is not None]
    return max(usable, key=lambda kr: (kr[0], -kr[1].seed))[1] if usable else None


def choose(groups: dict[str, list[RunRecord]]) -> Choice | None:
    scored = []
    for label, records in groups.items():
        keys = [key for r in records if (key := run_key(r)) is not None]
        best = best_of(records)
        if keys and best is not None:
            mean = tuple(float(v) for v in np.mean(np.asarray(keys, dtype=np.float64), axis=0))
            scored.append(Choice(label, records, mean, best))
    return max(scored, key=lambda c: (c.mean_key, c.label)) if scored else None
