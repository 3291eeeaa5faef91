"""`cells`: S2VT with a plain RNN, a GRU and an LSTM (the report, section 4.2), on the main features
and, on SynthClips, on oracle features (perfect perception: the cell comparison without the CNN)."""

from __future__ import annotations

import pandas as pd

from benchmark.figures import curves, grouped_bars
from benchmark.runner import RunSpec
from benchmark.selection import CELLS
from benchmark.suites.compare import compare_configs, metrics_for
from benchmark.suites.context import ORACLE_SUFFIX, BenchContext
from benchmark.suites.groups import curves_of, metric_values, rows_of, train_and_evaluate
from benchmark.suites.rows import oracle_ceiling
from benchmark.suites.results import SuiteResult, figure_link
from benchmark.tables import markdown_table, per_seed, suite_summary

NAME = "cells"
TITLE = "Cells: S2VT with a plain RNN, a GRU and an LSTM"
PAIRS = (("lstm", "rnn"), ("gru", "rnn"), ("lstm", "gru"))


def groups(ctx: BenchContext) -> dict[str, list[RunSpec]]:
    return {label: specs for cell in CELLS for label, specs in ctx.variants("s2vt", cell).items()}


def plan(ctx: BenchContext) -> list[RunSpec]:
    return [spec for specs in groups(ctx).values() for spec in specs]


def run(ctx: BenchContext) -> SuiteResult:
    trained = train_and_evaluate(ctx, NAME, groups(ctx))
    table = pd.DataFrame([row for group in trained.values() for row in rows_of(NAME, group)])
    comparisons = {}
    for suffix in ("", ORACLE_SUFFIX) if ctx.oracle is not None else ("",):
        for a, b in PAIRS:
            a_label, b_label = f"s2vt-{a}{suffix}", f"s2vt-{b}{suffix}"
            comparisons.update(compare_configs(ctx, a_label, trained[a_label], b_label, trained[b_label], metrics_for(ctx)))
    labels = list(trained)
    bars = grouped_bars(ctx.figures_dir / "cells_test_metrics.png", labels,
                        {m: metric_values(trained, m) for m in ("CIDEr", "METEOR")},
                        "test score", "S2VT test CIDEr-D and METEOR by cell (bars: mean, dots: seeds)")
    val = curves(ctx.figures_dir / "cells_val_curves.png", {label: curves_of(g, "step") for label, g in trained.items()},
                 "optimizer step", "validation CIDEr-D", "Validation CIDEr-D during training, one line per seed")
    columns = ["CIDEr", "METEOR", "Bleu_4", "ROUGE_L"] + (["sem_exact", "sem_action", "sem_order"] if ctx.is_synth else [])
    columns += [*ctx.split_columns(), "val_exact", "val_CIDEr", "steps", "train_ms_per_step"]
    oracle = (f" Configurations ending in `{ORACLE_SUFFIX}` train the same decoder on oracle features (the SynthClips "
              "ground-truth scene state per frame): the cell comparison with perfect perception." if ctx.oracle else "")
    body = "\n\n".join([
        "Test-set scores, mean ± std over seeds (per-seed values below); `_in` / `_heldout`: test clips without / "
        "with a composition held out of training; converged: runs that met the convergence rule, of seeds." + oracle,
        markdown_table(suite_summary(table, ["config"], columns)),
        markdown_table(per_seed(table, ["config"], "CIDEr")),
        figure_link(bars.name, "test metrics by cell"),
        figure_link(val.name, "validation CIDEr-D curves"),
    ])
    facts = {"oracle_ceiling": oracle_ceiling(table)} if ctx.oracle is not None else {}
    return SuiteResult(NAME, TITLE, table, body, figures=[bars.name, val.name], comparisons=comparisons, facts=facts)
