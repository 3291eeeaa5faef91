"""When a policy-gradient fine-tune has gone wrong, besides a non-finite loss: the two rules that stop
it with stop_reason "diverged" (training/finetune.py) and say why in its last log row.

- reward collapse: validation's score of the reward's metric (CIDEr-D, or exact on --reward semantic)
  below COLLAPSE_FRACTION of the starting model's;
- discriminator saturation (adversarial): D right on every sample of every step of an interval while
  G's captions get P(real) < SATURATED_FAKE_PROB on average: G's reward has vanished.
"""

from __future__ import annotations

import math

import numpy as np

from vidcap_core.training.finetune_config import FinetuneConfig
from vidcap_core.training.policy_gradient import StepStats

COLLAPSE_FRACTION = 0.5  # val score of the reward's metric below half the starting model's: collapse
SATURATED_FAKE_PROB = 0.01  # D's mean P(real) of G's samples below this, with D always right: saturated


def saturation_reason(steps: list[StepStats], adversarial: bool) -> str | None:
    """D right on every sample of every step while G's captions look fake to it: G's reward has vanished."""
    if not adversarial or not steps:
        return None
    fake = float(np.mean([s.d_fake_prob for s in steps]))
    if all(s.d_accuracy >= 1.0 for s in steps) and fake < SATURATED_FAKE_PROB:
        return (f"discriminator saturated: accuracy 1.0 on all {len(steps)} steps of the interval and mean "
                f"P(real) of G's captions {fake:.3g} < {SATURATED_FAKE_PROB}: G's reward has vanished")
    return None


def collapse_reason(ft: FinetuneConfig, start_val: dict[str, float] | None, val: dict[str, float] | None) -> str | None:
    """Validation's score of the reward's metric fell below COLLAPSE_FRACTION of the starting model's."""
    if not start_val or not val:
        return None
    metric = "exact" if ft.reward == "semantic" else "CIDEr"
    start, now = start_val.get(metric), val.get(metric)
    if start is None or now is None or not start > 0:
        return None
    if not math.isfinite(now) or now < COLLAPSE_FRACTION * start:
        return (f"reward collapse: val {metric} {now:.4g} < {COLLAPSE_FRACTION} x the starting model's {start:.4g}")
    return None
