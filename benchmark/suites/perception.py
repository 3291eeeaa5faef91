"""`perception`: what the learned object slots (synth-slots: synth-cnn's detections tracked through
the clip) carry of each SynthClips object, field by field, against the oracle's ground truth
(vidcap_core/perception/measure.py), on the main data's test clips: per-frame accuracy or error of
presence, shape, colour, size, scale, opacity, position and angle, identity swaps, and the objects
no slot follows, by number of objects and by event kind. No training run: it reads the feature
cache attention over regions reads (`BenchContext.objects`), so a change to synth-cnn shows here
what it fixed before any caption model is trained on it. Then which of those faults cost captions: per
test clip, the attention suite's attention-LSTM over learned object slots against the same decoder over
the oracle's slots (same runs, same keys), exact accuracy on the clips with and without each fault. Last,
which fields cost captions: the decoder trained on the oracle's slots reads the test clips with one group of
fields as the learned slots perceive them (vidcap_core/perception/transplant.py); evaluations only."""

from __future__ import annotations

import pandas as pd

from benchmark.figures import field_heatmap
from benchmark.prepare import ensure_features
from benchmark.runner import EvalRequest, RunSpec
from benchmark.selection import REGIONS_SUFFIX, region_options
from benchmark.suites.compare import per_video
from benchmark.suites.context import ORACLE_SUFFIX, BenchContext
from benchmark.suites.groups import Trained, reevaluate, train_and_evaluate
from benchmark.suites.results import SuiteResult, figure_link
from benchmark.tables import markdown_table
from vidcap_core.perception.measure import (
    FAULT_SHARE,
    FOLLOW_DISTANCE,
    NO_EVENT,
    VISIBLE,
    clip_faults,
    measure_perception,
    perception_table,
)
from vidcap_core.perception.transplant import TRANSPLANT_GROUPS, TRANSPLANT_VERSION, write_transplanted

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


CAPTIONER = f"attention-lstm{REGIONS_SUFFIX}"  # the decoder read over learned and over oracle slots


def caption_groups(ctx: BenchContext) -> dict[str, list[RunSpec]]:
    """The attention suite's attention-LSTM over object slots, on learned and on oracle slots (its runs)."""
    if not ctx.is_synth or ctx.objects is None or ctx.oracle is None:
        return {}
    return ctx.variants("attention", "lstm", **region_options(CAPTIONER))


def plan(ctx: BenchContext) -> list[RunSpec]:
    return [spec for specs in caption_groups(ctx).values() for spec in specs]


def exact_by_clip(group: Trained) -> pd.Series:
    """Per test clip, the share of the group's seeds whose caption states every event right."""
    seeds = [pd.Series(scores, dtype=float) for scores in per_video(group.evals, "sem_exact")]
    return pd.concat(seeds, axis=1).mean(axis=1) if seeds else pd.Series(dtype=float)


def accuracy_on(chosen: pd.Series | list[str], learned: pd.Series, oracle: pd.Series) -> dict[str, float]:
    """The captioner's mean exact accuracy on the `chosen` clips (a mask or ids) over learned and over
    oracle slots, and the gap between them."""
    over_learned, over_oracle = learned[chosen].mean(), oracle[chosen].mean()
    return {"exact, learned slots": over_learned, "exact, oracle slots": over_oracle, "gap": over_oracle - over_learned}


def captions_by_fault(faults: pd.DataFrame, learned: pd.Series, oracle: pd.Series) -> pd.DataFrame:
    """One row per perception fault (and: no fault, any fault, all clips): the clips that have it, the
    captioner's test exact accuracy on them over learned and over oracle slots, the gap, and the share of
    all clips the learned slots lose (wrong over learned, right over oracle) that fall in the group."""
    clips = faults.index.intersection(learned.index).intersection(oracle.index)
    faults, learned, oracle = faults.loc[clips], learned.loc[clips], oracle.loc[clips]
    lost = ((1.0 - learned) * oracle).clip(lower=0.0)  # per clip, in seed shares
    groups = {"all clips": pd.Series(True, index=clips), "no fault": ~faults["any"],
              **{name: faults[name] for name in faults.columns}}
    rows = []
    for name, chosen in groups.items():
        rows.append({"clips with": name, "clips": int(chosen.sum()), **accuracy_on(chosen, learned, oracle),
                     "share of lost clips": lost[chosen].sum() / lost.sum() if lost.sum() else float("nan")})
    return pd.DataFrame(rows)


def clean_clips_by_kind(faults: pd.DataFrame, frames: pd.DataFrame, learned: pd.Series, oracle: pd.Series) -> pd.DataFrame:
    """The clips with no fault (faults["any"] False), by what happens in them (each event kind seen in a
    sampled frame) and by their number of objects: the captioner's exact accuracy over learned and over
    oracle slots, where perception measured no fault."""
    clips = faults.index[~faults["any"]].intersection(learned.index).intersection(oracle.index)
    frames = frames[frames["clip"].isin(clips)]
    kinds = frames[frames["event"] != NO_EVENT].groupby("clip")["event"].agg(set)  # clip -> its event kinds
    objects = frames.groupby("clip")["objects"].first()
    groups = {kind: [c for c in clips if kind in kinds.get(c, set())] for kind in sorted(set().union(*kinds))}
    groups.update({f"{n} object{'s' if n > 1 else ''}": list(objects.index[objects == n]) for n in sorted(objects.unique())})
    return pd.DataFrame([{"no-fault clips with": name, "clips": len(chosen), **accuracy_on(chosen, learned, oracle)}
                         for name, chosen in groups.items() if chosen])


def mean_exact(group: Trained) -> float:
    """The group's test exact accuracy, mean over its evaluated seeds (NaN when none was evaluated)."""
    return float(pd.Series(group.facts("sem_exact"), dtype=float).mean())


def transplant_request(ctx: BenchContext, groups: tuple[str, ...]) -> EvalRequest:
    """The test evaluation on the oracle's slots with `groups` from the learned slots: a feature cache named by
    both caches (their folder names carry their identities) and the groups, written once."""
    assert ctx.oracle is not None and ctx.objects is not None
    tag = f"fields-{'-'.join(groups)}-from-{ctx.objects.dir.name}-v{TRANSPLANT_VERSION}"
    folder = ctx.oracle.dir.parent / f"{ctx.oracle.dir.name}-{tag}"
    write_transplanted(ctx.oracle.dir, ctx.objects.dir, ctx.objects.dataset.root, groups, folder, split=SPLIT)
    return EvalRequest(split=SPLIT, features=str(folder), tag=tag)


def captions_by_field(ctx: BenchContext, oracle: Trained, learned: Trained) -> pd.DataFrame:
    """Test exact accuracy of the decoder trained on oracle slots (mean of its seeds) with no field, each group
    of fields and all of them from the learned slots, and the drop against none; last, for reference, the same
    decoder trained on the learned slots."""
    rows = [("none (the oracle's slots)", mean_exact(oracle))]
    for groups in [(g,) for g in TRANSPLANT_GROUPS] + [tuple(TRANSPLANT_GROUPS)]:
        label = groups[0] if len(groups) == 1 else "all of them"
        rows.append((label, mean_exact(reevaluate(ctx, oracle, transplant_request(ctx, groups)))))
    table = pd.DataFrame(rows, columns=["fields from the learned slots", "exact"])
    table["drop"] = table["exact"].iloc[0] - table["exact"]
    trained_on_learned = {"fields from the learned slots": "(decoder trained on the learned slots)",
                          "exact": mean_exact(learned), "drop": table["exact"].iloc[0] - mean_exact(learned)}
    return pd.concat([table, pd.DataFrame([trained_on_learned])], ignore_index=True)


def run(ctx: BenchContext) -> SuiteResult:
    source = ctx.objects
    if not ctx.is_synth or source is None:
        return SuiteResult(NAME, TITLE, pd.DataFrame(), NOT_MEASURED)
    ensure_features(source, seeds=ctx.seeds, log=ctx.executor.prep, say=ctx.executor.progress.say)
    rows = measure_perception(source.dir, source.dataset.root, split=SPLIT)
    table = perception_table(rows)
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
    groups = caption_groups(ctx)
    if groups:
        trained = train_and_evaluate(ctx, NAME, groups)
        faults = clip_faults(rows)
        learned, oracle = exact_by_clip(trained[CAPTIONER]), exact_by_clip(trained[CAPTIONER + ORACLE_SUFFIX])
        by_fault = captions_by_fault(faults, learned, oracle)
        clean = clean_clips_by_kind(faults, rows.frames, learned, oracle)
        body += "\n\n" + "\n\n".join([
            "## Which faults cost captions",
            f"The attention suite's {CAPTIONER} (its seeds) over these learned slots and over the oracle's slots, "
            f"test exact accuracy per clip (the share of seeds right), on the clips with each fault: an object whose "
            f"slot is wrong on more than {FAULT_SHARE:.0%} of the frames where a field is judged (presence, shape, "
            "colour, size), an identity swap, an object no slot follows; `any`: at least one of them. `share of lost "
            "clips`: of the clips the learned slots lose (wrong over them, right over the oracle's), the share in "
            "the row's group (groups overlap).",
            markdown_table(by_fault.round(3)),
            "The clips with no fault, by the events seen in their sampled frames and by their number of objects "
            "(a clip is in every row of its events): where per-frame perception is right, what the captions still lose.",
            markdown_table(clean.round(3)) if len(clean) else "_No clip is without a fault._",
        ])
        by_field = captions_by_field(ctx, trained[CAPTIONER + ORACLE_SUFFIX], trained[CAPTIONER])
        body += "\n\n" + "\n\n".join([
            "## Which fields cost captions",
            f"The attention suite's {CAPTIONER} trained on the oracle's slots (mean of its seeds) reads the {SPLIT} "
            "clips with one group of each object's fields taken from the learned slot matched to it, the rest at the "
            "truth: presence (the frames the slot does not hold the object become empty), opacity (the slot's "
            "confidence), shape, colour and size probabilities, position, angle; then all of them at once (the "
            "oracle's drawn RGB and scale, which the learned slots lack, stay true). `drop`: against the untouched "
            "oracle. The decoder never saw perception errors in training, so a drop is what that group's errors cost "
            "it, an upper bound on what a decoder trained on them loses; the last row is that decoder, trained on the "
            "learned slots. Definitions: vidcap_core/perception/transplant.py.",
            markdown_table(by_field.round(3)),
        ])
        facts["captions_by_field"] = by_field.set_index("fields from the learned slots").to_dict(orient="index")
        facts["captions_by_fault"] = by_fault.set_index("clips with").to_dict(orient="index")
        facts["no_fault_clips"] = clean.set_index("no-fault clips with").to_dict(orient="index") if len(clean) else {}
    return SuiteResult(NAME, TITLE, table, body, figures=[figure.name], facts=facts)
