"""`attention`: S2VT without attention vs the soft-attention decoder, for each cell (the report, 4.3).

Precision: every caption metric. Speed: training milliseconds per optimizer step, seconds until
validation CIDEr-D first reaches 95% of the run's best, and decoding milliseconds per test clip. On
SynthClips every configuration is also trained on oracle features (perfect perception), and the
suite records the oracle ceiling: per architecture x cell what oracle features reach, and the gap
to the main features.
"""

from __future__ import annotations

import pandas as pd

from benchmark.figures import curves, grouped_bars
from benchmark.runner import RunSpec
from benchmark.selection import CELLS, REGION_CELLS, REGIONS_SUFFIX, region_options
from benchmark.suites.compare import compare_configs, compare_runs, metrics_for
from benchmark.suites.context import ORACLE_SUFFIX, BenchContext
from benchmark.suites.groups import curves_of, metric_values, rows_of, train_and_evaluate
from benchmark.suites.rows import oracle_ceiling
from benchmark.suites.results import SuiteResult, figure_link
from benchmark.tables import markdown_table, per_seed, suite_summary

NAME = "attention"
TITLE = "Attention: S2VT (no attention) vs soft attention, for each cell"
SPEED = ("s_to_95pct_val_CIDEr", "train_ms_per_step", "inference_ms_per_clip")


def groups(ctx: BenchContext) -> dict[str, list[RunSpec]]:
    """S2VT and attention over frames per cell (the claim), and attention over the objects of each frame
    (REGION_CELLS; synth-slots' tracked object slots when the main backbone is synth-cnn, the oracle's
    object slots), each on the main and the oracle features."""
    found = {label: specs for cell in CELLS for arch in ("s2vt", "attention")
             for label, specs in ctx.variants(arch, cell).items()}
    for cell in REGION_CELLS:
        found.update(ctx.variants("attention", cell, **region_options(f"attention-{cell}{REGIONS_SUFFIX}")))
    return found


def plan(ctx: BenchContext) -> list[RunSpec]:
    return [spec for specs in groups(ctx).values() for spec in specs]


def run(ctx: BenchContext) -> SuiteResult:
    trained = train_and_evaluate(ctx, NAME, groups(ctx))
    table = pd.DataFrame([row for group in trained.values() for row in rows_of(NAME, group)])
    comparisons = {}
    for suffix in ("", ORACLE_SUFFIX) if ctx.oracle is not None else ("",):
        for cell in CELLS:
            a, b = trained[f"attention-{cell}{suffix}"], trained[f"s2vt-{cell}{suffix}"]
            comparisons.update(compare_configs(ctx, a.label, a, b.label, b, metrics_for(ctx)))
            for fact in SPEED:
                comparisons.update(compare_runs(ctx, a.label, a.facts(fact), b.label, b.facts(fact), fact,
                                                a.records, b.records))
            if cell in REGION_CELLS:
                regions = trained[f"attention-{cell}{REGIONS_SUFFIX}{suffix}"]
                comparisons.update(compare_configs(ctx, regions.label, regions, a.label, a, metrics_for(ctx)))
    bars = grouped_bars(
        ctx.figures_dir / "attention_cider.png", list(CELLS),
        {arch: {cell: metric_values(trained, "CIDEr")[f"{arch}-{cell}"] for cell in CELLS} for arch in ("s2vt", "attention")},
        "test CIDEr-D", "Test CIDEr-D without and with attention (bars: mean, dots: seeds)")
    speed = grouped_bars(
        ctx.figures_dir / "attention_time_to_95.png", list(CELLS),
        {arch: {cell: list(trained[f"{arch}-{cell}"].facts("s_to_95pct_val_CIDEr").values()) for cell in CELLS}
         for arch in ("s2vt", "attention")},
        "seconds", "Training seconds until val CIDEr-D reaches 95% of its best")
    val = curves(ctx.figures_dir / "attention_val_curves.png",
                 {label: curves_of(trained[label]) for label in ("s2vt-lstm", "attention-lstm")},
                 "training wall-clock seconds (incl. validation)", "validation CIDEr-D",
                 "LSTM: validation CIDEr-D against time, one line per seed")
    columns = ["CIDEr", "METEOR", "Bleu_4", "ROUGE_L"] + (["sem_exact"] if ctx.is_synth else [])
    columns += [*ctx.split_columns(), "val_exact", "val_CIDEr", *SPEED]
    oracle = (f" Configurations ending in `{ORACLE_SUFFIX}` are trained on oracle features (the ground-truth scene "
              "state per frame): the attention comparison with perfect perception." if ctx.oracle else "")
    regions = ("synth-slots' object slots: synth-cnn's detections followed from frame to frame"
               if ctx.objects is not None else f"{ctx.main.backbone}'s region grid")
    oracle += (f" Configurations with `{REGIONS_SUFFIX}` attend over the regions of every frame (`vidcap train "
               f"--regions`) instead of whole frames: {regions}" + ("; the oracle's ground-truth object slots." if ctx.oracle
                                                                   else "."))
    body = "\n\n".join([
        "Precision (test metrics) and speed, mean ± std over seeds. `s_to_95pct_val_CIDEr`: cumulative seconds "
        "(training + validation) until validation CIDEr-D first reaches 95% of the run's best; "
        "`train_ms_per_step`: training milliseconds per optimizer step; `inference_ms_per_clip`: greedy decoding of "
        "the test split from cached features, per clip; `_in` / `_heldout`: test clips without / with a held-out "
        "composition." + oracle,
        markdown_table(suite_summary(table, ["config"], columns)),
        markdown_table(per_seed(table, ["config"], "CIDEr")),
        markdown_table(per_seed(table, ["config"], "s_to_95pct_val_CIDEr", digits=1)),
        figure_link(bars.name, "CIDEr with and without attention"),
        figure_link(speed.name, "time to 95% of best validation CIDEr"),
        figure_link(val.name, "validation curves against time"),
    ])
    facts = {"oracle_ceiling": oracle_ceiling(table)} if ctx.oracle is not None else {}
    return SuiteResult(NAME, TITLE, table, body, figures=[bars.name, speed.name, val.name], comparisons=comparisons,
                       facts=facts)

