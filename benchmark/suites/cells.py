"""`cells`: S2VT with a plain RNN, a GRU and an LSTM (the report, section 4.2)."""

from __future__ import annotations

import pandas as pd

from benchmark.figures import curves, grouped_bars
from benchmark.runner import RunSpec
from benchmark.selection import CELLS
from benchmark.suites.compare import compare_configs, metrics_for
from benchmark.suites.context import BenchContext
from benchmark.suites.groups import curves_of, metric_values, rows_of, train_and_evaluate
from benchmark.suites.results import SuiteResult, figure_link
from benchmark.tables import markdown_table, per_seed, seed_summary

NAME = "cells"
TITLE = "Cells: S2VT with a plain RNN, a GRU and an LSTM"
PAIRS = (("lstm", "rnn"), ("gru", "rnn"), ("lstm", "gru"))


def groups(ctx: BenchContext) -> dict[str, list[RunSpec]]:
    return {f"s2vt-{cell}": ctx.grid("s2vt", cell) for cell in CELLS}


def plan(ctx: BenchContext) -> list[RunSpec]:
    return [spec for specs in groups(ctx).values() for spec in specs]


def run(ctx: BenchContext) -> SuiteResult:
    trained = train_and_evaluate(ctx, NAME, groups(ctx))
    table = pd.DataFrame([row for group in trained.values() for row in rows_of(NAME, group)])
    comparisons = {}
    for a, b in PAIRS:
        comparisons.update(compare_configs(ctx, f"s2vt-{a}", trained[f"s2vt-{a}"].evals, f"s2vt-{b}",
                                           trained[f"s2vt-{b}"].evals, metrics_for(ctx)))
    labels = list(trained)
    bars = grouped_bars(ctx.figures_dir / "cells_test_metrics.png", labels,
                        {m: metric_values(trained, m) for m in ("CIDEr", "METEOR")},
                        "test score", "S2VT test CIDEr-D and METEOR by cell (bars: mean, dots: seeds)")
    val = curves(ctx.figures_dir / "cells_val_curves.png", {label: curves_of(g, "epoch") for label, g in trained.items()},
                 "epoch", "validation CIDEr-D", "Validation CIDEr-D during training, one line per seed")
    columns = ["CIDEr", "METEOR", "Bleu_4", "ROUGE_L"] + (["sem_exact", "sem_action", "sem_order"] if ctx.is_synth else [])
    columns += ["val_CIDEr", "epochs", "train_s_per_epoch"]
    body = "\n\n".join([
        "Test-set scores, mean ± std over seeds (per-seed values below).",
        markdown_table(seed_summary(table, ["config"], columns)),
        markdown_table(per_seed(table, ["config"], "CIDEr")),
        figure_link(bars.name, "test metrics by cell"),
        figure_link(val.name, "validation CIDEr-D curves"),
    ])
    return SuiteResult(NAME, TITLE, table, body, figures=[bars.name, val.name], comparisons=comparisons)
