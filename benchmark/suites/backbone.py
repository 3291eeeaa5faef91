"""`backbone`: the same S2VT-LSTM on features of different frame encoders: our pretrained
synth-cnn (or the ImageNet CNN given with --backbone on real data) vs the same CNN untrained, and on
SynthClips the oracle (the ground-truth scene state: what perfect perception would give)."""

from __future__ import annotations

import pandas as pd

from benchmark.figures import grouped_bars
from benchmark.prepare import ORACLE_BACKBONE, FeatureSource
from benchmark.runner import RunSpec
from benchmark.suites.compare import compare_configs, metrics_for
from benchmark.suites.context import BenchContext
from benchmark.suites.groups import metric_values, rows_of, train_and_evaluate
from benchmark.suites.results import SuiteResult, figure_link
from benchmark.tables import markdown_table, per_seed, suite_summary

NAME = "backbone"
TITLE = "Frame features: oracle vs pretrained vs untrained CNN"
ARCH, CELL = "s2vt", "lstm"


def sources(ctx: BenchContext) -> dict[str, FeatureSource]:
    oracle = {ctx.oracle.backbone: ctx.oracle} if ctx.oracle is not None else {}
    return {**oracle, ctx.main.backbone: ctx.main, **{s.backbone: s for s in ctx.backbone_sources}}


def groups(ctx: BenchContext) -> dict[str, list[RunSpec]]:
    out = {}
    for backbone, source in sources(ctx).items():
        suffix = "" if source is ctx.main else f"-{backbone}"
        out[backbone] = ctx.grid(ARCH, CELL, features=source, suffix=suffix)
    return out


def plan(ctx: BenchContext) -> list[RunSpec]:
    return [spec for specs in groups(ctx).values() for spec in specs]


def run(ctx: BenchContext) -> SuiteResult:
    trained = train_and_evaluate(ctx, NAME, groups(ctx))
    rows = []
    for backbone, group in trained.items():
        rows += [dict(row, backbone=backbone, weights=sources(ctx)[backbone].weights_id) for row in rows_of(NAME, group)]
    comparisons = {}
    main = ctx.main.backbone
    slots = ("colour", "shape", "action")
    for backbone in trained:
        if backbone != main:  # the better encoder first: oracle vs main, main vs the others
            first, second = (backbone, main) if backbone == ORACLE_BACKBONE else (main, backbone)
            comparisons.update(compare_configs(ctx, first, trained[first], second, trained[second],
                                               metrics_for(ctx, slots)))
    metrics = ["CIDEr", "METEOR"] + (["sem_exact"] if ctx.is_synth else [])
    bars = grouped_bars(ctx.figures_dir / "backbone_metrics.png", list(trained),
                        {m: metric_values(trained, m) for m in metrics},
                        "test score", f"{ARCH}-{CELL} test scores by frame encoder (bars: mean, dots: seeds)")
    columns = ["CIDEr", "METEOR", "Bleu_4", "ROUGE_L"] + ([f"sem_{s}" for s in ("exact", *slots)] if ctx.is_synth else [])
    columns += [*ctx.split_columns(), "val_exact", "val_CIDEr", "steps"]
    table = pd.DataFrame(rows)
    weights = "; ".join(f"{name}: {source.weights_id}" for name, source in sources(ctx).items())
    body = "\n\n".join([
        f"{ARCH}-{CELL} trained on features of each encoder ({weights}). `random` is synth-cnn's architecture "
        "with its initial (untrained) weights: what the decoder can learn from features that were never taught "
        "what objects look like." + (" `oracle` is no CNN: the SynthClips ground-truth scene state per frame "
                                     "(shape, colour, size, position, angle, opacity of each object), the ceiling "
                                     "any frame encoder could give this decoder." if ctx.oracle is not None else ""),
        markdown_table(suite_summary(table, ["backbone"], columns)),
        markdown_table(per_seed(table, ["backbone"], "CIDEr")),
        figure_link(bars.name, "scores by frame encoder"),
    ])
    return SuiteResult(NAME, TITLE, table, body, figures=[bars.name], comparisons=comparisons)
