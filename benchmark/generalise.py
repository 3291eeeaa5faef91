"""The generalisation check of issue #11's Done-when: a fresh SynthClips set, made with a seed the
benchmark never used, captioned by the exported best model; its test exact accuracy with a 95% CI
next to the committed test split's, and the CI of the difference (two independent clip sets).

If the best model learned the task rather than the committed test clips (which selection never
reads, but a pipeline bug could leak), the two accuracies agree within sampling error. Both are also
split into in-distribution and held-out-composition clips. Runs as the last step of `vidcap-bench
run` on SynthClips; writes `<out>/generalisation.json`, which REPORT.md shows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from benchmark.prepare import ensure_features, feature_source, synth_source
from benchmark.runner import per_video_semantic
from benchmark.selection import Choice
from benchmark.stats import compare_independent
from benchmark.suites.context import BenchContext
from benchmark.suites.rows import SPLIT_SUFFIXES, heldout_videos
from vidcap_core.errors import ConfigError
from vidcap_core.files import json_safe, write_json

GENERALISATION_SEED = 1011  # SynthClips seed of the fresh set; every other benchmark SynthClips set uses seed 0
RESULT_FILE = "generalisation.json"
EVAL_METRICS = ("Bleu_4", "CIDEr")  # METEOR's JVM is not worth starting for a check about exact accuracy


def exact_by_clip(per_video: dict[str, dict[str, float | None]]) -> dict[str, float]:
    """{video_id: exact (0/1)} for the clips the checker scored."""
    return {v: float(s["exact"]) for v, s in per_video.items() if s.get("exact") is not None and math.isfinite(s["exact"])}


def compared(fresh: dict[str, float], committed: dict[str, float], resamples: int) -> dict[str, Any] | None:
    result = compare_independent(list(fresh.values()), list(committed.values()), n_resamples=resamples)
    return None if result is None else {**result.to_dict(), "within_sampling_error": result.within_sampling_error}


def check_generalisation(ctx: BenchContext, choice: Choice) -> dict[str, Any] | None:
    """Caption a fresh SynthClips test set with the chosen best run; write and return the comparison."""
    main = ctx.main
    if not main.dataset.is_synth or main.dataset.synth_preset is None:
        return None
    if main.dataset.synth_seed == GENERALISATION_SEED:
        raise ConfigError(f"the benchmark's own data use SynthClips seed {GENERALISATION_SEED}: the generalisation "
                          "check needs a seed it never used; change GENERALISATION_SEED in benchmark/generalise.py.")
    committed_eval = ctx.evaluate(choice.record)
    checkpoint = choice.record.best_checkpoint
    if committed_eval is None or checkpoint is None:
        return None
    cache = ctx.store.root.parent
    data = synth_source(cache, main.dataset.synth_preset, main.dataset.synth_clips, seed=GENERALISATION_SEED)
    read = ctx.source_of(choice.record)  # the features the chosen run was trained on (object slots for regions)
    source = feature_source(cache, data, read.backbone, read.num_frames, read.weights, read.frame_size)
    ensure_features(source, log=ctx.executor.prep, say=ctx.executor.progress.say)
    from vidcap_core.pipeline import evaluate_checkpoint

    out_dir = cache / "generalisation" / choice.record.key
    report = evaluate_checkpoint(checkpoint, source.dir, "synth", data.root, split="test", out_dir=out_dir,
                                 scorer=ctx.scorer(), metrics=EVAL_METRICS)
    fresh = exact_by_clip(per_video_semantic(data.root, report.predictions_file))
    committed = exact_by_clip(committed_eval.per_video_semantic)
    held = {"fresh": heldout_videos(str(data.root)), "committed": heldout_videos(str(main.dataset.root))}
    result: dict[str, Any] = {
        "seed": GENERALISATION_SEED, "data": data.label, "committed_data": main.dataset.label,
        "config": choice.label, "run_seed": choice.record.seed, "run_key": choice.record.key,
        "fresh_CIDEr": report.metrics.get("CIDEr"), "committed_CIDEr": committed_eval.metrics.get("CIDEr"),
        "all": compared(fresh, committed, ctx.profile.resamples),
    }
    for suffix in SPLIT_SUFFIXES:
        wanted = suffix == "heldout"
        result[suffix] = compared({v: x for v, x in fresh.items() if (v in held["fresh"]) == wanted},
                                  {v: x for v, x in committed.items() if (v in held["committed"]) == wanted},
                                  ctx.profile.resamples)
    write_json(ctx.out / RESULT_FILE, json_safe(result))
    return result


def read_generalisation(results: Path) -> dict[str, Any] | None:
    path = Path(results) / RESULT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
