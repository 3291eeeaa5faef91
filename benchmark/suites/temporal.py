"""`temporal`: does the order of frames matter? Mean pooling vs S2VT vs attention (LSTM cells),
tested on ordered, shuffled and reversed frames, plus S2VT and attention trained on shuffled frames
(S2VT's own ablation: MSVD METEOR 29.2 ordered vs 28.2 shuffled)."""

from __future__ import annotations

import pandas as pd

from benchmark.figures import grouped_bars
from benchmark.runner import EvalRequest, RunSpec
from benchmark.suites.compare import compare_configs, metrics_for
from benchmark.suites.context import BenchContext
from benchmark.suites.groups import Trained, metric_values, reevaluate, rows_of, train_and_evaluate
from benchmark.suites.results import SuiteResult, figure_link
from benchmark.tables import markdown_table, suite_summary

NAME = "temporal"
TITLE = "Temporal order: mean pooling vs S2VT vs attention; ordered, shuffled and reversed frames"
MODELS = ("meanpool-lstm", "s2vt-lstm", "attention-lstm")
SHUFFLE_TRAINED = ("s2vt-lstm", "attention-lstm")  # mean pooling ignores order by construction
TEST_ORDERS = ("ordered", "shuffled", "reversed")
SHUFFLED_SUFFIX = "-trainshuffled"


def groups(ctx: BenchContext) -> dict[str, list[RunSpec]]:
    out = {label: ctx.grid(*label.split("-")) for label in MODELS}
    for label in SHUFFLE_TRAINED:
        arch, cell = label.split("-")
        out[label + SHUFFLED_SUFFIX] = ctx.grid(arch, cell, suffix=SHUFFLED_SUFFIX, frame_order="shuffled")
    return out


def plan(ctx: BenchContext) -> list[RunSpec]:
    return [spec for specs in groups(ctx).values() for spec in specs]


def run(ctx: BenchContext) -> SuiteResult:
    ordered = train_and_evaluate(ctx, NAME, groups(ctx))
    # (train order, test order) -> label -> runs evaluated that way
    tested: dict[tuple[str, str], dict[str, Trained]] = {}
    for order in TEST_ORDERS:
        tested[("ordered", order)] = {label: reevaluate(ctx, ordered[label], EvalRequest(frame_order=order))
                                      for label in MODELS}
    for order in ("shuffled", "ordered"):
        tested[("shuffled", order)] = {label: reevaluate(ctx, ordered[label + SHUFFLED_SUFFIX], EvalRequest(frame_order=order))
                                       for label in SHUFFLE_TRAINED}
    rows = []
    for (train_order, test_order), by_label in tested.items():
        for label, group in by_label.items():
            rows += [dict(row, config=label, train_order=train_order, test_order=test_order)
                     for row in rows_of(NAME, group)]
    table = pd.DataFrame(rows)
    slots = ("order", "direction")
    metrics = metrics_for(ctx, slots)
    comparisons = {}
    # S2VT's ablation: trained and tested on shuffled frames vs ordered.
    for label in SHUFFLE_TRAINED:
        comparisons.update(compare_configs(
            ctx, f"{label} ordered", tested[("ordered", "ordered")][label],
            f"{label} trained+tested shuffled", tested[("shuffled", "shuffled")][label], metrics))
    # Test-time perturbation of models trained on ordered frames.
    for label in MODELS[1:]:
        for order in ("shuffled", "reversed"):
            comparisons.update(compare_configs(
                ctx, f"{label} ordered", tested[("ordered", "ordered")][label],
                f"{label} tested {order}", tested[("ordered", order)][label], metrics))
    # Temporal models vs mean pooling.
    for label in MODELS[1:]:
        comparisons.update(compare_configs(
            ctx, label, tested[("ordered", "ordered")][label],
            "meanpool-lstm", tested[("ordered", "ordered")]["meanpool-lstm"], metrics))
    figures = []
    for metric, title in (("METEOR", "METEOR"), ("sem_direction", "direction slot accuracy"),
                          ("sem_order", "event-order slot accuracy")):
        if metric.startswith("sem_") and not ctx.is_synth:
            continue
        series = {}
        for (train_order, test_order), by_label in tested.items():
            values = metric_values(by_label, metric)
            series[f"train {train_order} / test {test_order}"] = values
        path = grouped_bars(ctx.figures_dir / f"temporal_{metric.lower()}.png", list(MODELS), series,
                            title, f"Test {title} by frame order at training / test time")
        figures.append(path.name)
    columns = ["CIDEr", "METEOR", "Bleu_4"] + ([f"sem_{s}" for s in ("exact", *slots)] if ctx.is_synth else [])
    columns += ctx.split_columns()
    body = "\n\n".join([
        "Test metrics by model, training-time and test-time frame order (mean ± std over seeds). "
        "Shuffled = one random permutation of each clip's frames (fixed per run seed); reversed = last frame first."
        + (" `sem_direction`: the clip's time-reversible actions named with the right member of the pair "
           "(left/right, grows/shrinks, appears/disappears); `sem_order`: multi-event clips with events in the right order."
           if ctx.is_synth else ""),
        markdown_table(suite_summary(table, ["config", "train_order", "test_order"], columns)),
        *(figure_link(name, name) for name in figures),
    ])
    return SuiteResult(NAME, TITLE, table, body, figures=figures, comparisons=comparisons)
