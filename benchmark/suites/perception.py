"""`perception`: what the learned object slots (synth-slots: synth-cnn's detections tracked through
the clip) carry of each SynthClips object, field by field, against the oracle's ground truth
(vidcap_core/perception/measure.py), on the main data's test clips: per-frame accuracy or error of
presence, shape, colour, size, scale, opacity, position and angle, identity swaps, and the objects
no slot follows, by number of objects and by event kind. No training run: it reads the feature
cache attention over regions reads (`BenchContext.objects`), so a change to synth-cnn shows here
what it fixed before any caption model is trained on it."""

from __future__ import annotations

import pandas as pd

from benchmark.figures import field_heatmap
from benchmark.prepare import ensure_features
from benchmark.runner import RunSpec
from benchmark.suites.context import BenchContext
from benchmark.suites.results import SuiteResult, figure_link
from benchmark.tables import markdown_table
from vidcap_core.perception.measure import FOLLOW_DISTANCE, VISIBLE, measure_perception, perception_table

NAME = "perception"
TITLE = "Perception against the oracle: learned object slots, field by field"
SPLIT = "test"
# column -> (shown as, higher is better, digits)
SHOWN: dict[str, tuple[str, bool, int]] = {
    "presence": ("presence", True, 3), "shape": ("shape", True, 3), "colour": ("colour", True, 3),
    "size": ("size", True, 3), "scale_px": ("scale err px", False, 2), "opacity": ("opacity err", False, 3),
    "position_px": ("position err px", False, 2), "angle_deg": ("angle err deg", False, 1),
    "position_jitter_px": ("position jitter px", False, 2), "angle_jitter_deg": ("angle jitter deg", False, 1),
    "flips": ("attribute flips", False, 3), "swaps per clip": ("swaps / clip", False, 2),
    "unfollowed": ("unfollowed", False, 3),
}
NOT_MEASURED = ("_Not measured: the perception suite compares object slots with SynthClips' ground truth, so it runs "
                "on SynthClips with the synth-cnn main backbone (whose detections become synth-slots' slots)._")


def plan(ctx: BenchContext) -> list[RunSpec]:
    return []  # no training: it reads a feature cache


def run(ctx: BenchContext) -> SuiteResult:
    source = ctx.objects
    if not ctx.is_synth or source is None:
        return SuiteResult(NAME, TITLE, pd.DataFrame(), NOT_MEASURED)
    ensure_features(source, seeds=ctx.seeds, log=ctx.executor.prep, say=ctx.executor.progress.say)
    table = perception_table(measure_perception(source.dir, source.dataset.root, split=SPLIT))
    figure = field_heatmap(
        ctx.figures_dir / "perception_fields.png", table[list(SHOWN)].to_numpy(), list(table["group"]),
        [shown for shown, _, _ in SHOWN.values()], [better for _, better, _ in SHOWN.values()],
        f"synth-slots vs the oracle, {SPLIT} clips (green: best in its column)", [d for _, _, d in SHOWN.values()])
    shown = table.rename(columns={name: label for name, (label, _, _) in SHOWN.items()})
    body = "\n\n".join([
        f"Learned object slots ({source.backbone}, weights {source.weights_id}) of the {SPLIT} clips of "
        f"{source.dataset.label}, {source.num_frames} frames each, matched per clip to the oracle's objects "
        "(Hungarian assignment on position over the clip). Per object and frame: presence (the slot is there "
        f"exactly when the object is at least {VISIBLE} opaque; frames mid-way through a fade are not judged), "
        "shape, colour and size accuracy and scale, position and angle (modulo symmetry) error where both are "
        "there, opacity error where either is; jitter: how much the slot's position, turn and attribute argmax "
        "change between two frames while the object's do not (a decoder reading frame differences takes it for "
        "an event); per clip the identity swaps, and the share of objects no slot follows (within "
        f"{FOLLOW_DISTANCE} frame sides in at least half of its visible frames). Rows: all object-frames, by objects in the clip, by what the "
        "object is doing in the frame (event kind), mid-fade and overlapping another object. n/a: the slots "
        "carry no such field. Definitions: vidcap_core/perception/measure.py.",
        markdown_table(shown.round(4)),
        figure_link(figure.name, "perception against the oracle by field and group"),
    ])
    facts = {"weights": source.weights_id, "split": SPLIT,
             "groups": table.set_index("group").to_dict(orient="index")}
    return SuiteResult(NAME, TITLE, table, body, figures=[figure.name], facts=facts)
