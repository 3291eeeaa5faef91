"""`vidcap-bench ood`: how often the out-of-distribution flag fires, where it should and where it should not.

The served checkpoint's OOD calibration (vidcap_core/ood/, `<stem>.ood.npz`) flags a clip
whose frame features lie far from its training frames, or whose decoded frames' low-level statistics
(noise, edges, colours, motion, size, frame rate) lie outside its training clips' range. This program
measures that flag through the one captioning corridor (`Captioner.caption(path).ood`, as `vidcap
caption`, `/caption` and the demo page get it) on three kinds of input:

1. the SynthClips test split the checkpoint was trained on (its model card's `- Dataset:` line, made
   again with benchmark.prepare's `synth_source` into the benchmark cache, or `--root`): every test
   clip, split into in-distribution and held-out compositions (ground_truth.json `heldout`); aim <= 1%;
2. every file in ../shared/videos (read in place; absent folder: a note) and any `--videos` given:
   real camera footage the model never saw; aim 100%;
3. generated patterns that are not SynthClips (an FFmpeg testsrc2-like colour-bar chart, a gradient
   pan, random noise, the perf benchmark's textured 480p clip), written into a temp folder; aim 100%.

Files are decoded in an IsolatedDecoder child, so a damaged one costs its row (its typed error), not the run.
Results: `<out>/ood.md` and `<out>/ood.json`, written atomically, with the machine and the command.

By job: patterns.py writes the generated patterns; scoring.py locates the SynthClips test clips and
scores every file (`measure_ood`); report.py builds the tables and writes ood.md / ood.json (`write_ood`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmark.ood.patterns import (
    NOISE_SEED,
    PATTERN_FPS,
    PATTERN_SECONDS,
    PATTERN_SIZE,
    colour_bar_chart_frame,
    gradient_pan_frame,
    noise_frames,
    write_patterns,
)
from benchmark.ood.report import SYNTH_AIM, UNSEEN_AIM, files_table, markdown, scored_frame, share_rows, share_table, write_ood
from benchmark.ood.scoring import (
    EXTRA,
    PATTERNS,
    SHARED,
    SYNTH_ALL,
    SYNTH_HELDOUT,
    SYNTH_IN,
    OodOptions,
    OodRun,
    ScoredFile,
    SynthTestSet,
    card_dataset,
    locate_synth_test,
    measure_ood,
    real_videos,
    score_file,
)


def run_ood(options: OodOptions, say: Callable[[str], None] = print) -> Path:
    """Measure (measure_ood) and write ood.md / ood.json into `options.out`; returns ood.md's path."""
    return write_ood(measure_ood(options, say), Path(options.out))


__all__ = [
    "EXTRA", "NOISE_SEED", "PATTERNS", "PATTERN_FPS", "PATTERN_SECONDS", "PATTERN_SIZE", "SHARED", "SYNTH_AIM",
    "SYNTH_ALL", "SYNTH_HELDOUT", "SYNTH_IN", "UNSEEN_AIM", "OodOptions", "OodRun", "ScoredFile", "SynthTestSet",
    "card_dataset", "colour_bar_chart_frame", "files_table", "gradient_pan_frame", "locate_synth_test", "markdown",
    "measure_ood", "noise_frames", "real_videos", "run_ood", "score_file", "scored_frame", "share_rows",
    "share_table", "write_ood", "write_patterns",
]
