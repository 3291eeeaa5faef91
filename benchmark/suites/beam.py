"""`beam`: beam sizes 1 / 2 / 3 / 5 / 10 on the best model (the report's literature survey:
"beam size one is better than larger beam sizes"). The best model is chosen on validation
CIDEr-D across the architecture x cell grid (see benchmark.best); every seed of that
configuration is decoded with every beam size."""

from __future__ import annotations

from benchmark.figures import lines_over_x
from benchmark.runner import EvalRequest, RunSpec
from benchmark.selection import choose, grid_labels
from benchmark.suites.base import (
    BenchContext,
    SuiteResult,
    Trained,
    compare_configs,
    figure_link,
    fmt,
    metrics_for,
    per_seed_table,
    reevaluate,
    rows_of,
    summary_table,
    train_and_evaluate,
)

NAME = "beam"
TITLE = "Beam size on the best model"


def groups(ctx: BenchContext) -> dict[str, list[RunSpec]]:
    return {label: ctx.grid(*label.split("-")) for label in grid_labels()}


def plan(ctx: BenchContext) -> list[RunSpec]:
    return [spec for specs in groups(ctx).values() for spec in specs]


def claim_beam(beams: tuple[int, ...]) -> int:
    """The larger beam the claim is judged against: 5 (the usual default) or the largest below it."""
    larger = [k for k in beams if 1 < k <= 5]
    return max(larger) if larger else max(beams)


def run(ctx: BenchContext) -> SuiteResult:
    grid = train_and_evaluate(ctx, NAME, groups(ctx), request=None)
    choice = choose({label: group.records for label, group in grid.items()})
    if choice is None:
        return SuiteResult(NAME, TITLE, [], "_No configuration has a usable checkpoint: every run diverged._")
    group = grid[choice.label]
    by_beam: dict[int, Trained] = {k: reevaluate(ctx, group, EvalRequest(beam=k)) for k in ctx.profile.beams}
    rows = [dict(row, beam=k) for k, trained in by_beam.items() for row in rows_of(NAME, trained)]
    comparisons = {}
    for k in ctx.profile.beams:
        if k != 1:
            comparisons.update(compare_configs(ctx, "beam 1", by_beam[1].evals, f"beam {k}", by_beam[k].evals,
                                               metrics_for(ctx)))
    beams = list(ctx.profile.beams)
    figures = []
    for metric, label in (("CIDEr", "test CIDEr-D"), ("METEOR", "test METEOR"), ("sem_exact", "exact-match accuracy")):
        if metric.startswith("sem_") and not ctx.is_synth:
            continue
        series = {choice.label: [[r[metric] for r in rows if r["beam"] == k] for k in beams]}
        path = lines_over_x(ctx.figures_dir / f"beam_{metric.lower()}.png", beams, series, "beam size", label,
                            f"{label} against beam size ({choice.label}, band ± 1 std over seeds)", logx=True)
        figures.append(path.name)
    columns = ["CIDEr", "METEOR", "Bleu_4", "ROUGE_L"] + (["sem_exact"] if ctx.is_synth else []) + ["inference_ms_per_clip"]
    val_table = ["| configuration | mean best val CIDEr-D | seeds |", "|---|---|---|"]
    for label, trained in grid.items():
        values = [r.result.get("best_val", {}) or {} for r in trained.records]
        cider = [v.get("CIDEr") for v in values if v.get("CIDEr") is not None]
        val_table.append(f"| {label} | {fmt(sum(cider) / len(cider)) if cider else 'n/a'} | {len(trained.records)} |")
    body = "\n\n".join([
        f"Best configuration on validation: **{choice.label}** (mean best val CIDEr-D {fmt(choice.mean_val)}); "
        f"every seed decoded on test with beam sizes {', '.join(map(str, beams))} (no length penalty).",
        summary_table(rows, ["beam"], columns),
        per_seed_table(rows, ["beam"], "CIDEr"),
        "Validation CIDEr-D of every candidate configuration (the selection; test is never used):",
        "\n".join(val_table),
        *(figure_link(name, name) for name in figures),
    ])
    facts = {"best_config": choice.label, "claim_beam": claim_beam(ctx.profile.beams), "beams": beams}
    return SuiteResult(NAME, TITLE, rows, body, figures=figures, comparisons=comparisons, facts=facts)
