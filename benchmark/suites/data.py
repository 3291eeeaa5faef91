"""`data`: test exact accuracy against the number of training clips, with the val and test clips fixed.

SynthClips sets grown to N x the main preset's training clips (`generate_synthclips(train_multiplier=N)`:
the preset's own clips, then more training clips; every val and test clip is the preset's, byte for
byte) for each N of the profile's `data_multipliers`; on each, attention-LSTM over object slots with the
profile's recipe (the attention suite's region model), once on the learned features (synth-slots'
tracked slots when the main backbone is synth-cnn, else the main backbone's regions) and once on the
oracle's slots. Every run is tested on the same test clips, so the curve is paired from point to point:
each size is compared with the smallest on test exact accuracy, paired over those clips.

Why: issue #21 measured that data, not the decoder or the steps, limit these models (oracle slots,
2100 -> 8400 training clips: test exact 0.735 -> 0.962 at the same number of steps). The curve is what
the profile's main training size (`Profile.train_multiplier`, which every other suite but `length`
reads) is chosen from; at that size the runs here are the attention suite's runs (same keys).
SynthClips only: real datasets cannot grow with their test set fixed.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from benchmark.figures import lines_over_x
from benchmark.prepare import FeatureSource, feature_source, synth_source
from benchmark.runner import RunSpec
from benchmark.selection import REGIONS_SUFFIX
from benchmark.suites.compare import compare_configs
from benchmark.suites.context import ORACLE_SUFFIX, BenchContext
from benchmark.suites.groups import rows_of, train_and_evaluate
from benchmark.suites.results import SuiteResult, figure_link
from benchmark.tables import fmt, markdown_table, suite_summary

NAME = "data"
TITLE = "Training data: test exact accuracy against the number of training clips (val and test clips fixed)"
ARCH, CELL = "attention", "lstm"
LEARNED, ORACLE = "learned", "oracle"  # the two feature families of the curve
EXACT_COLUMNS = ("sem_exact", "sem_exact_in", "sem_exact_heldout")  # all test clips, in-distribution, held-out


def label_of(features: str, multiplier: int) -> str:
    """The curve's name for a point: attention-lstm-regions-4x (learned features), attention-lstm-regions-oracle-4x."""
    return f"{run_label_of(features)}-{multiplier}x"


def run_label_of(features: str, multiplier: int | None = None) -> str:
    """The training configuration of a point: at the profile's main size (`multiplier` None) the attention
    suite's own label (attention-lstm-regions[-oracle], the same runs), else the point's name."""
    base = f"{ARCH}-{CELL}{REGIONS_SUFFIX}{ORACLE_SUFFIX if features == ORACLE else ''}"
    return base if multiplier is None else f"{base}-{multiplier}x"


def sources(ctx: BenchContext) -> dict[tuple[str, int], FeatureSource]:
    """(features, multiplier) -> the features of the main SynthClips set grown to that multiplier; {} when
    the main data are not SynthClips the benchmark generates."""
    main = ctx.main.dataset
    if not main.is_synth or main.synth_preset is None:
        return {}
    cache = ctx.store.root.parent
    read = {LEARNED: ctx.region_source(True), ORACLE: ctx.oracle}
    found: dict[tuple[str, int], FeatureSource] = {}
    for multiplier in ctx.profile.data_multipliers:
        data = synth_source(cache, main.synth_preset, main.synth_clips, main.synth_seed, train_multiplier=multiplier)
        for features, source in read.items():
            if source is not None:
                found[(features, multiplier)] = feature_source(cache, data, source.backbone, source.num_frames,
                                                               source.weights, source.frame_size)
    return found


def groups(ctx: BenchContext) -> dict[str, list[RunSpec]]:
    """{point name: its runs}, one seed each (`BenchContext.seeds`: no claim reads the curve); the point at the
    main size is the attention suite's run under its own label, so every suite sees that run under one name."""
    out = {}
    for (features, multiplier), source in sources(ctx).items():
        main = multiplier == ctx.profile.train_multiplier
        label = run_label_of(features, None if main else multiplier)
        out[label_of(features, multiplier)] = ctx.grid(ARCH, CELL, seeds=ctx.seeds, features=source,
                                                       suffix=label.removeprefix(f"{ARCH}-{CELL}"), regions=True)
    return out


def plan(ctx: BenchContext) -> list[RunSpec]:
    return [spec for specs in groups(ctx).values() for spec in specs]


def train_clips(source: FeatureSource) -> int:
    """Training clips of a generated SynthClips set (its synth.json's counts)."""
    info = json.loads((source.dataset.root / "synth.json").read_text(encoding="utf-8"))
    return int(info["counts"]["splits"]["train"])


def prep_seconds(ctx: BenchContext, found: dict[tuple[str, int], FeatureSource]) -> dict[str, float]:
    """Seconds this invocation spent generating each grown set and extracting its features (0: cached)."""
    spent = ctx.executor.prep.seconds
    out: dict[str, float] = {}
    for (features, multiplier), source in found.items():
        out[f"{multiplier}x data"] = round(spent.get(str(source.dataset.root), 0.0), 1)
        out[f"{multiplier}x {features} features"] = round(spent.get(str(source.dir), 0.0), 1)
    return out


def run(ctx: BenchContext) -> SuiteResult:
    found = sources(ctx)
    if not found:
        return SuiteResult(NAME, TITLE, pd.DataFrame(), "_SynthClips only: a real dataset cannot grow with its test "
                           "set fixed; this suite needs the benchmark's own SynthClips data._")
    trained = train_and_evaluate(ctx, NAME, groups(ctx))
    clips = {multiplier: train_clips(source) for (_, multiplier), source in found.items()}
    rows = []
    for (features, multiplier), source in found.items():
        group = trained[label_of(features, multiplier)]
        rows += [dict(row, config=label_of(features, multiplier), features=features, multiplier=multiplier,
                      train_clips=clips[multiplier]) for row in rows_of(NAME, group)]
    table = pd.DataFrame(rows)
    multipliers = sorted({m for _, m in found})
    comparisons = {}
    for features in dict.fromkeys(f for f, _ in found):
        smallest = trained[label_of(features, multipliers[0])]
        for multiplier in multipliers[1:]:
            larger = trained[label_of(features, multiplier)]
            comparisons.update(compare_configs(ctx, label_of(features, multiplier), larger,
                                               label_of(features, multipliers[0]), smallest, ["sem_exact", "CIDEr"]))
    figure = curve_figure(ctx, table, multipliers, clips)
    columns = [*EXACT_COLUMNS, "CIDEr", "val_exact", "steps", "train_seconds"]
    summary = suite_summary(table.sort_values(["features", "multiplier"], kind="stable"), ["features", "train_clips"], columns)
    main = ctx.profile.train_multiplier
    body = "\n\n".join([
        f"Attention-LSTM over object slots ({ctx.region_source(True).backbone} for the learned features, the "
        "oracle's for `oracle`), the profile's recipe and step budget, trained on SynthClips "
        f"{ctx.main.dataset.synth_preset} seed {ctx.main.dataset.synth_seed} grown to "
        f"{', '.join(f'{m} x' for m in multipliers)} its training clips ({', '.join(str(clips[m]) for m in multipliers)} "
        "clips); the val and test clips are the preset's in every set (the same files and ids), so every point "
        "is tested on the same clips. Test exact accuracy on all test clips, in-distribution (`_in`) and with a "
        f"held-out composition (`_heldout`), mean ± std over seeds. The profile's main training size is "
        f"{main} x (`train_multiplier` in benchmark/profiles.py), chosen from this curve.",
        markdown_table(summary),
        figure_link(figure.name, "test exact accuracy against training clips"),
        "Preparation in this invocation, seconds (0: cached, or made by an earlier suite; a grown set links the "
        f"clips and features a finished sibling set shares with it): {cost_text(prep_seconds(ctx, found))}.",
    ])
    facts: dict[str, Any] = {"multipliers": multipliers, "train_clips": {str(m): n for m, n in clips.items()},
                             "main_multiplier": main, "curve": curve_points(table), "prep_seconds": prep_seconds(ctx, found)}
    return SuiteResult(NAME, TITLE, table, body, figures=[figure.name], comparisons=comparisons, facts=facts)


def curve_points(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per (features, multiplier): training clips and the mean over seeds of each exact column."""
    means = table.groupby(["features", "multiplier", "train_clips"], sort=True)[list(EXACT_COLUMNS)].mean()
    return [{"features": f, "multiplier": int(m), "train_clips": int(n), **{c: float(row[c]) for c in EXACT_COLUMNS}}
            for (f, m, n), row in means.iterrows()]


def curve_figure(ctx: BenchContext, table: pd.DataFrame, multipliers: list[int], clips: dict[int, int]) -> Any:
    """Test exact accuracy (all, held-out) against training clips, one line per features x clip set."""
    xs = [clips[m] for m in multipliers]
    series: dict[str, list[list[float]]] = {}
    for features in dict.fromkeys(table["features"]):
        for column, words in (("sem_exact", "all test clips"), ("sem_exact_heldout", "held-out compositions")):
            if column not in table:
                continue
            rows = table[table["features"] == features]
            series[f"{features}, {words}"] = [rows.loc[rows["multiplier"] == m, column].tolist() for m in multipliers]
    return lines_over_x(ctx.figures_dir / "data_exact.png", xs, series, "training clips (log scale)",
                        "test exact accuracy", "Test exact accuracy against training clips (same test clips)", logx=True)


def cost_text(seconds: dict[str, float]) -> str:
    return ", ".join(f"{name} {fmt(value, 1)}" for name, value in seconds.items()) or "none"
