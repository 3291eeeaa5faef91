"""`length`: plain RNN vs LSTM vs attention-LSTM as clips get longer (the long preset: one early
event, then only distractor motion), where a plain RNN should lose the beginning of the clip."""

from __future__ import annotations

import pandas as pd

from benchmark.figures import lines_over_x
from benchmark.runner import RunSpec
from benchmark.suites.compare import compare_configs
from benchmark.suites.context import BenchContext
from benchmark.suites.groups import Trained, rows_of, train_and_evaluate
from benchmark.suites.results import SuiteResult, figure_link
from benchmark.tables import markdown_table, suite_summary

NAME = "length"
TITLE = "Clip length: plain RNN vs LSTM vs attention-LSTM from short to long clips"
MODELS = ("s2vt-rnn", "s2vt-lstm", "attention-lstm")


def groups(ctx: BenchContext) -> dict[tuple[str, int], list[RunSpec]]:
    out = {}
    for frames, source in sorted(ctx.length_sources.items()):
        for label in MODELS:
            arch, cell = label.split("-")
            out[(label, frames)] = ctx.grid(arch, cell, features=source, suffix=f"-{frames}f", **ctx.profile.length_train)
    return out


def plan(ctx: BenchContext) -> list[RunSpec]:
    return [spec for specs in groups(ctx).values() for spec in specs]


def run(ctx: BenchContext) -> SuiteResult:
    planned = groups(ctx)
    flat = {f"{label}-{frames}f": specs for (label, frames), specs in planned.items()}
    trained = train_and_evaluate(ctx, NAME, flat)
    by_key: dict[tuple[str, int], Trained] = {key: trained[f"{key[0]}-{key[1]}f"] for key in planned}
    frames_list = sorted(ctx.length_sources)
    rows = []
    for (label, frames), group in by_key.items():
        rows += [dict(row, config=label, frames=frames) for row in rows_of(NAME, group)]
    table = pd.DataFrame(rows)
    comparisons = {}
    for frames in frames_list:
        for a, b in (("s2vt-lstm", "s2vt-rnn"), ("attention-lstm", "s2vt-rnn")):
            comparisons.update(compare_configs(ctx, f"{a} {frames}f", by_key[(a, frames)],
                                               f"{b} {frames}f", by_key[(b, frames)],
                                               ["CIDEr", *(["sem_exact"] if ctx.is_synth else [])]))
    figures = []
    for metric, label in (("CIDEr", "test CIDEr-D"), ("sem_exact", "exact-match accuracy"), ("sem_action", "action slot accuracy")):
        if metric.startswith("sem_") and not ctx.is_synth:
            continue
        series = {model: [table.loc[(table["config"] == model) & (table["frames"] == f), metric].tolist() for f in frames_list]
                  for model in MODELS}
        path = lines_over_x(ctx.figures_dir / f"length_{metric.lower()}.png", frames_list, series,
                            "frames per clip", label, f"{label} against clip length (band: ± 1 std over seeds)", logx=True)
        figures.append(path.name)
    columns = ["CIDEr", "METEOR"] + (["sem_exact", "sem_action", "sem_colour", "sem_shape"] if ctx.is_synth else [])
    columns += [*ctx.split_columns(), "val_exact", "val_CIDEr", "steps", "train_ms_per_step"]
    source = next(iter(ctx.length_sources.values())).dataset
    body = "\n\n".join([
        f"Data: {source.label}; each length is its own feature extraction of the same clips, "
        "frames sampled evenly over the whole clip. Test metrics, mean ± std over seeds.",
        markdown_table(suite_summary(table.sort_values(["config", "frames"], kind="stable"), ["config", "frames"], columns)),
        *(figure_link(name, name) for name in figures),
    ])
    facts = {"frames": frames_list}
    return SuiteResult(NAME, TITLE, table, body, figures=figures, comparisons=comparisons, facts=facts)
