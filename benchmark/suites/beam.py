"""`beam`: beam sizes 1 / 2 / 3 / 5 / 10 on the best model (the report's literature survey:
"beam size one is better than larger beam sizes"). The best model is chosen on validation across
the architecture x cell grid (benchmark.selection: SynthClips exact accuracy, ties by CIDEr-D; real
data CIDEr-D); every seed of that configuration is decoded with every beam size. The beam claim reads
that configuration, so it gets the claim seeds (`BenchContext.claim_seeds`): when the choice is one no
other claim compares, its missing seeds are trained here and the choice is made again over the grid
(`choose_with_claim_seeds`), until the chosen configuration has them; the exported best model
(benchmark.best) is chosen over the same runs, so it is the same configuration."""

from __future__ import annotations

import pandas as pd

from benchmark.figures import lines_over_x
from benchmark.runner import EvalRequest, RunSpec
from benchmark.selection import VAL_COLUMNS, choose, grid_labels, region_options, selection_values
from benchmark.suites.compare import compare_configs, metrics_for
from benchmark.suites.context import BenchContext
from benchmark.suites.groups import Trained, reevaluate, rows_of, train_and_evaluate
from benchmark.suites.results import SuiteResult, figure_link
from benchmark.tables import fmt, markdown_table, per_seed, suite_summary

NAME = "beam"
TITLE = "Beam size on the best model"


def groups(ctx: BenchContext) -> dict[str, list[RunSpec]]:
    return {label: ctx.grid(*label.split("-")[:2], **region_options(label)) for label in grid_labels()}  # arch, cell


def plan(ctx: BenchContext) -> list[RunSpec]:
    return [spec for specs in groups(ctx).values() for spec in specs]


def claim_beam(beams: tuple[int, ...]) -> int:
    """The larger beam the claim is judged against: 5 (the usual default) or the largest below it."""
    larger = [k for k in beams if 1 < k <= 5]
    return max(larger) if larger else max(beams)


def choose_with_claim_seeds(ctx: BenchContext, grid: dict[str, Trained]) -> dict[str, Trained]:
    """The grid with the claim seeds trained for whichever configuration is chosen, choosing again after
    each addition (a configuration's extra seeds move its mean) until the choice has them all."""
    claimed = set(ctx.claim_seeds or ctx.seeds)
    while (choice := choose({label: group.records for label, group in grid.items()})) is not None:
        have = {r.seed for r in grid[choice.label].records}
        if claimed <= have:
            break
        arch, cell = choice.label.split("-")[:2]
        specs = ctx.grid(arch, cell, seeds=tuple(sorted(claimed | have)), **region_options(choice.label))
        grid = {**grid, choice.label: train_and_evaluate(ctx, NAME, {choice.label: specs}, request=None)[choice.label]}
    return grid


def validation_frame(grid: dict[str, Trained]) -> pd.DataFrame:
    """Per candidate configuration: the mean over its seeds of each run's best validation scores (the
    selection key's components) and how many of its runs converged."""
    rows = [{"configuration": label, **selection_values(r), "converged": r.converged}
            for label, trained in grid.items() for r in trained.records]
    best_val = pd.DataFrame(rows)
    names = [name for name in VAL_COLUMNS if name in best_val]
    best_val[names] = best_val[names].apply(pd.to_numeric, errors="coerce")  # None (no validation) -> NaN
    grouped = best_val.groupby("configuration", sort=False)
    means = grouped[names].mean()
    frame = pd.DataFrame({"configuration": means.index})
    for name in names:
        frame[f"mean best {VAL_COLUMNS[name]}"] = [fmt(v) for v in means[name]]
    frame["converged"] = [f"{int(g['converged'].sum())}/{len(g)}" for _, g in grouped]
    return frame


def run(ctx: BenchContext) -> SuiteResult:
    grid = choose_with_claim_seeds(ctx, train_and_evaluate(ctx, NAME, groups(ctx), request=None))
    choice = choose({label: group.records for label, group in grid.items()})
    if choice is None:
        return SuiteResult(NAME, TITLE, pd.DataFrame(), "_No configuration has a usable checkpoint: every run diverged._")
    group = grid[choice.label]
    by_beam: dict[int, Trained] = {k: reevaluate(ctx, group, EvalRequest(beam=k)) for k in ctx.profile.beams}
    table = pd.DataFrame([dict(row, beam=k) for k, trained in by_beam.items() for row in rows_of(NAME, trained)])
    comparisons = {}
    for k in ctx.profile.beams:
        if k != 1:
            comparisons.update(compare_configs(ctx, "beam 1", by_beam[1], f"beam {k}", by_beam[k], metrics_for(ctx)))
    beams = list(ctx.profile.beams)
    figures = []
    for metric, label in (("CIDEr", "test CIDEr-D"), ("METEOR", "test METEOR"), ("sem_exact", "exact-match accuracy")):
        if metric.startswith("sem_") and not ctx.is_synth:
            continue
        series = {choice.label: [table.loc[table["beam"] == k, metric].tolist() for k in beams]}
        path = lines_over_x(ctx.figures_dir / f"beam_{metric.lower()}.png", beams, series, "beam size", label,
                            f"{label} against beam size ({choice.label}, band ± 1 std over seeds)", logx=True)
        figures.append(path.name)
    columns = ["CIDEr", "METEOR", "Bleu_4", "ROUGE_L"] + (["sem_exact"] if ctx.is_synth else [])
    columns += [*ctx.split_columns(), "inference_ms_per_clip"]
    val_table = validation_frame(grid)
    body = "\n\n".join([
        f"Best configuration on validation: **{choice.label}** ({choice.describe()}); "
        f"every seed decoded on test with beam sizes {', '.join(map(str, beams))} (no length penalty).",
        markdown_table(suite_summary(table, ["beam"], columns)),
        markdown_table(per_seed(table, ["beam"], "CIDEr")),
        "Validation scores of every candidate configuration (the selection; test is never used):",
        markdown_table(val_table),
        *(figure_link(name, name) for name in figures),
    ])
    facts = {"best_config": choice.label, "claim_beam": claim_beam(ctx.profile.beams), "beams": beams}
    return SuiteResult(NAME, TITLE, table, body, figures=figures, comparisons=comparisons, facts=facts)
