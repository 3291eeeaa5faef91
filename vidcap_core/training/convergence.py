"""Model selection, the plateau schedule (LR cuts and stopping) and the convergence verdict of a run.

Four questions, one function each, all on validation scores only (never test):
- which checkpoint is best: `selection_key` (SynthClips: semantic exact accuracy, ties broken by
  CIDEr-D; real data: CIDEr-D), compared lexicographically;
- is the model still learning: `PlateauSchedule.update` (progress = any component of the key beats
  its best so far by more than its threshold: absolute for exact accuracy, relative for CIDEr-D);
- did the run converge: `convergence_verdict`, the one written rule every run is judged by;
- was the run trained to completion: `training_status` (in the verdict as "status" and "trained"). A
  claim compares trained runs: a run that converged, that its plateau schedule stopped, that reached
  its plateau and then fell off it, or that diverged has been trained (more steps of this recipe
  would not change what it is: the instability of a plain RNN is a finding, not a missing result);
  a run whose budget ran out while it was still improving is UNDERTRAINED, and says nothing yet.

Why a plateau schedule rather than "stop after `patience` validations without a new best": val
scores of a model still improving are noisy, so a fixed patience stops on a dip (the benchmark's
runs stopped at their last epoch, still improving). Here a stall first lowers the learning rate,
which is what a stall at a too-high LR needs, and the run stops only when `max_lr_reductions` cuts in
a row have brought no progress: at least plateau_patience x (max_lr_reductions + 1) validations
without it. A gain must exceed its threshold, so noise does not keep a flat run alive for ever.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# The convergence rule's constants (see `convergence_verdict`).
LATE_FRACTION = 0.3  # the plateau must be reached before the last 30% of the run's steps
FINAL_VALIDATIONS = 3  # ... and the last 3 validations stay near the best:
# within EXACT_EPSILON exact accuracy, or two binomial standard errors of the best's exact accuracy on
# the val clips when their number is known, whichever is larger: on 120 val clips a model at 0.05 exact
# scores 0.017-0.05 from one validation to the next by chance alone (measured), 2 SE = 0.04 there
EXACT_EPSILON = 0.03
CIDER_RELATIVE_EPSILON = 0.05  # and within 5% of the best CIDEr-D (its plateau wander is about +-4%)

STOP_REASONS = ("plateau", "budget", "diverged")

# `training_status`: what a run is, for the claims that compare it.
CONVERGED = "converged"  # plateau reached and held (the convergence rule)
SCHEDULE_ENDED = "schedule ended"  # its plateau schedule stopped it (LR cuts without progress), rule not met
FELL_OFF = "fell off"  # reached its plateau early enough, then its last validations fell below the best
DIVERGED = "diverged"  # non-finite loss or gradient: stopped at once
UNDERTRAINED = "undertrained"  # the budget ran out while it was still improving (or it never validated)
TRAINED_STATUSES = (CONVERGED, SCHEDULE_ENDED, FELL_OFF, DIVERGED)
STATUS_RULE = (
    "a run is **trained** when it converged, when its plateau schedule stopped it (the learning rate was cut "
    "and cut again without progress), when it reached its plateau before the last "
    f"{LATE_FRACTION:.0%} of its steps and then fell off it, or when it diverged: more steps of the recipe would "
    "not change what it is, and a plain RNN's instability is a finding; it is **undertrained** when its step "
    "budget ran out while it was still improving (plateau inside the last "
    f"{LATE_FRACTION:.0%} of its steps, or fewer than {FINAL_VALIDATIONS} validations after it) or it never validated"
)


def selection_key(val: Mapping[str, float], synth: bool) -> tuple[float, ...]:
    """What makes a checkpoint better, compared lexicographically (Python tuple order).

    SynthClips: (exact, CIDEr): exact accuracy is what the project claims, and many checkpoints tie
    on it (early on all score 0), where CIDEr-D still orders them. Real data: (CIDEr,).
    """
    cider = float(val["CIDEr"])
    if synth:
        exact = float(val["exact"])
        return (0.0 if math.isnan(exact) else exact, cider)
    return (cider,)


def key_names(synth: bool) -> tuple[str, ...]:
    """The val-score names of `selection_key`'s components, in order."""
    return ("exact", "CIDEr") if synth else ("CIDEr",)


@dataclass
class PlateauState:
    """The plateau schedule's state; saved in last.pt (as a dict) so a resumed run continues it."""

    lr_scale: float = 1.0  # multiplies cfg.lr (after the warmup)
    best_seen: list[float] | None = None  # each key component at the last progress (the progress reference)
    stale_validations: int = 0  # validations since the last progress
    fruitless_reductions: int = 0  # LR cuts since the last progress
    reductions: int = 0  # LR cuts in the whole run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PlateauState:
        return cls(**values)


@dataclass(frozen=True)
class PlateauSchedule:
    """Cut the LR by `decay` after `patience` validations without progress; stop once
    `max_reductions` cuts in a row brought none. `patience` None: never cut, never stop.

    Validations before step `start_step` never count as stale: a model still on its starting plateau
    (S2VT-LSTM writes the same few captions for 500-700 steps on some seeds) is not slowed down by LR cuts
    before it could leave it; cut there, it never did (convergence.py's module docstring has the numbers)."""

    patience: int | None
    decay: float
    max_reductions: int
    min_deltas: tuple[tuple[float, float], ...]  # per key component: (absolute, relative to |best|) gain needed
    start_step: int = 0  # no validation before this step counts towards an LR cut or a stop

    def update(self, state: PlateauState, key: Sequence[float], step: int | None = None) -> str:
        """Record one validation (made after `step` optimizer steps; None = past `start_step`); returns
        "progress", "stale", "reduce" (LR cut made) or "stop"."""
        if len(key) != len(self.min_deltas):
            raise ValueError(f"selection key {tuple(key)} has {len(key)} components; the schedule expects "
                             f"{len(self.min_deltas)}")
        best = state.best_seen
        progress = best is None or any(k > b + absolute + relative * abs(b)
                                       for k, b, (absolute, relative) in zip(key, best, self.min_deltas))
        if progress:  # the reference moves only on progress: a slow climb adds up until it counts
            state.best_seen = list(key) if best is None else [max(k, b) for k, b in zip(key, best)]
            state.stale_validations = 0
            state.fruitless_reductions = 0
            return "progress"
        if step is not None and step < self.start_step:
            return "stale"  # not counted: the schedule starts at start_step
        state.stale_validations += 1
        if self.patience is None or state.stale_validations < self.patience:
            return "stale"
        if state.fruitless_reductions >= self.max_reductions:
            return "stop"
        state.lr_scale *= self.decay
        state.fruitless_reductions += 1
        state.reductions += 1
        state.stale_validations = 0
        return "reduce"


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warmup: step 0 trains at lr / warmup_steps, step warmup_steps - 1 and later at lr."""
    return min(1.0, (step + 1) / warmup_steps)


def convergence_verdict(validations: Sequence[tuple[int, Sequence[float]]], steps_done: int,
                        stop_reason: str | None, val_clips: int | None = None) -> dict[str, Any]:
    """Whether a run converged: the one rule every run is judged by (the benchmark reads the result).

    `validations`: (step, selection key) of each validation, in order; `steps_done`: the steps the
    run trained; `stop_reason`: "plateau", "budget" or "diverged"; `val_clips`: how many clips the
    exact accuracy is measured on (None: unknown, EXACT_EPSILON alone).

    A run converged when all of these hold:
      1. it did not diverge;
      2. it reached its plateau at or before 70% of its steps (LATE_FRACTION): the plateau is reached
         at the first validation within epsilon of the best one (exact accuracy within
         max(EXACT_EPSILON, 2 binomial standard errors of the best's exact on `val_clips` clips), and
         CIDEr-D within CIDER_RELATIVE_EPSILON of the best's), so it then trained at least 30% of its
         steps more without getting measurably better, and the budget did not cut a climb short.
         Measured from the plateau, not from the best validation itself: on a plateau a lucky
         validation late in the run (SynthClips, oracle features + frame differences, 300 val clips:
         exact 0.56 from step 2200 on, a 0.577 at step 2800) would otherwise pass for a climb;
      3. its last FINAL_VALIDATIONS (3) validations come after the plateau was reached and each is
         within epsilon of the best: it stayed on the plateau rather than falling off it (overfitting
         or instability).
    The verdict does not depend on why the run stopped: a run stopped by its budget after it had
    flattened converged; a run stopped by the plateau schedule while the rule fails (it can: the
    schedule counts progress on any key component) did not.
    """
    verdict = _convergence(validations, steps_done, stop_reason, val_clips)
    status = training_status(verdict)
    return {**verdict, "status": status, "trained": status in TRAINED_STATUSES, "status_rule": STATUS_RULE,
            **best_and_last(validations)}


def training_status(verdict: Mapping[str, Any]) -> str:
    """STATUS_RULE applied to a convergence verdict (`convergence_verdict`'s keys; older verdicts without
    "validations_after_plateau" count as having enough validations after their plateau)."""
    stop = verdict.get("stop_reason")
    if stop == "diverged":
        return DIVERGED
    if verdict.get("converged"):
        return CONVERGED
    if not verdict.get("validations") or verdict.get("plateau_fraction") is None:
        return UNDERTRAINED
    if stop == "plateau":
        return SCHEDULE_ENDED
    late = float(verdict["plateau_fraction"]) > 1.0 - LATE_FRACTION
    if late or int(verdict.get("validations_after_plateau", FINAL_VALIDATIONS)) < FINAL_VALIDATIONS:
        return UNDERTRAINED
    return FELL_OFF


def best_and_last(validations: Sequence[tuple[int, Sequence[float]]]) -> dict[str, Any]:
    """The best validation (first of ties) and the last one: {"best_validation": {"step", "key"}, "last_validation": ...}."""
    if not validations:
        return {"best_validation": None, "last_validation": None}
    best = max(range(len(validations)), key=lambda i: (tuple(validations[i][1]), -i))
    return {"best_validation": {"step": validations[best][0], "key": [float(k) for k in validations[best][1]]},
            "last_validation": {"step": validations[-1][0], "key": [float(k) for k in validations[-1][1]]}}


def _convergence(validations: Sequence[tuple[int, Sequence[float]]], steps_done: int, stop_reason: str | None,
                 val_clips: int | None) -> dict[str, Any]:
    verdict: dict[str, Any] = {
        "converged": False, "stop_reason": stop_reason, "steps_done": steps_done, "validations": len(validations),
        "best_step": None, "plateau_step": None, "plateau_fraction": None, "final_gap": None,
        "rule": (f"plateau (first validation within max({EXACT_EPSILON}, 2 binomial SE) exact and "
                 f"{CIDER_RELATIVE_EPSILON:.0%} CIDEr-D of the best) reached before the last {LATE_FRACTION:.0%} of "
                 f"steps, and the last {FINAL_VALIDATIONS} validations within those of the best"),
    }
    if stop_reason == "diverged":
        return {**verdict, "reason": "diverged"}
    if not validations or steps_done <= 0:
        return {**verdict, "reason": "no validation"}
    best_index = max(range(len(validations)), key=lambda i: (tuple(validations[i][1]), -i))  # first of ties
    best_step, best_key = validations[best_index][0], tuple(validations[best_index][1])
    exact_epsilon = exact_tolerance(best_key[0], val_clips) if len(best_key) == 2 else EXACT_EPSILON
    plateau_index = next(i for i, (_, key) in enumerate(validations) if near_best(key, best_key, exact_epsilon))
    plateau_step = validations[plateau_index][0]
    final = validations[-FINAL_VALIDATIONS:]
    verdict.update(best_step=best_step, plateau_step=plateau_step, plateau_fraction=round(plateau_step / steps_done, 4),
                   final_gap=final_gap(final, best_key), exact_epsilon=round(exact_epsilon, 4),
                   validations_after_plateau=len(validations) - 1 - plateau_index)
    if plateau_step > (1.0 - LATE_FRACTION) * steps_done:
        reason = (f"still improving: plateau reached at step {plateau_step} of {steps_done}, inside the last "
                  f"{LATE_FRACTION:.0%}" + (" (stopped by the budget)" if stop_reason == "budget" else ""))
        return {**verdict, "reason": reason}
    if len(validations) - 1 - plateau_index < FINAL_VALIDATIONS:
        return {**verdict, "reason": f"fewer than {FINAL_VALIDATIONS} validations after the plateau was reached"}
    if not all(near_best(key, best_key, exact_epsilon) for _, key in final):
        return {**verdict, "reason": f"fell off its best: the last {FINAL_VALIDATIONS} validations are not all near it"}
    return {**verdict, "converged": True, "reason": "plateau reached and held"}


def exact_tolerance(best_exact: float, val_clips: int | None) -> float:
    """How far below the best exact accuracy a validation may fall and still be on its plateau."""
    if not val_clips:
        return EXACT_EPSILON
    p = min(max(best_exact, 0.0), 1.0)
    return max(EXACT_EPSILON, 2.0 * math.sqrt(p * (1.0 - p) / val_clips))


def near_best(key: Sequence[float], best: Sequence[float], exact_epsilon: float = EXACT_EPSILON) -> bool:
    """Within epsilon of the best on every component: (exact, CIDEr) on SynthClips, (CIDEr,) elsewhere."""
    *exact, cider = key
    *best_exact, best_cider = best
    if exact and best_exact[0] - exact[0] > exact_epsilon + 1e-12:
        return False
    return best_cider - cider <= CIDER_RELATIVE_EPSILON * abs(best_cider)


def final_gap(final: Sequence[tuple[int, Sequence[float]]], best: Sequence[float]) -> dict[str, float]:
    """The largest drop below the best, per key component, over the final validations."""
    names = key_names(synth=len(best) == 2)
    return {name: round(max(b - key[i] for _, key in final), 6) for i, (name, b) in enumerate(zip(names, best))}
