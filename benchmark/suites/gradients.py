"""`gradients`: vanishing and exploding gradients in plain RNNs (the report, section 4.2.2).

Vanishing: the gradient-flow probe's ||dL/dx_t|| (Pascanu et al. 2013) for every input frame t,
against the distance from the last frame, at initialisation and after training; summarised per run
as log10(||dL/dx_first|| / ||dL/dx_last||) (more negative = the start of the clip gets less signal).
Exploding: how often clipping fired (runs with clipping on), and with clipping off the largest
pre-clip gradient norm and how many runs diverged (non-finite loss or gradient).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import pandas as pd

from benchmark.figures import gradient_panels, grouped_bars
from benchmark.runner import RunRecord, RunSpec
from benchmark.selection import CELLS
from benchmark.suites.compare import compare_runs
from benchmark.suites.context import BenchContext
from benchmark.suites.groups import train_and_evaluate
from benchmark.suites.results import SuiteResult, figure_link
from benchmark.suites.rows import history_facts
from benchmark.tables import NOT_AVAILABLE, fmt, markdown_table, per_seed, seed_summary

NAME = "gradients"
TITLE = "Gradients: vanishing and exploding gradients by cell"
NOCLIP_SUFFIX = "-noclip"
CLIPPED_COLUMNS = {  # column -> heading in the cells table (runs with clipping on)
    "log10_ratio_init": "log10 ratio at init",
    "log10_ratio_final": "log10 ratio after training",
    "log10_ratio_mean": "log10 ratio, mean over probes",
    "clip_fraction": "clip fraction",
}


def groups(ctx: BenchContext) -> dict[str, list[RunSpec]]:
    out = {f"s2vt-{cell}": ctx.grid("s2vt", cell) for cell in CELLS}
    out.update({f"s2vt-{cell}{NOCLIP_SUFFIX}": ctx.grid("s2vt", cell, suffix=NOCLIP_SUFFIX, grad_clip=None)
                for cell in CELLS})
    return out


def plan(ctx: BenchContext) -> list[RunSpec]:
    return [spec for specs in groups(ctx).values() for spec in specs]


def probe_norms(record: RunRecord, which: str) -> list[float] | None:
    """||dL/dx_t|| of the probe at initialisation ('init') or at its last probe ('final')."""
    rows = sorted(record.gradients, key=lambda r: r["step"])
    if not rows:
        return None
    row = rows[0] if which == "init" else rows[-1]
    if which == "final" and row["step"] == 0:
        return None
    return [float(v) for v in row["grad_norms"]]


def log_ratio(norms: list[float] | None) -> float:
    """log10(||dL/dx_first|| / ||dL/dx_last||); NaN when undefined."""
    if not norms or norms[0] <= 0 or norms[-1] <= 0:
        return float("nan")
    return math.log10(norms[0] / norms[-1])


def mean_log_ratio(record: RunRecord) -> float:
    """log10 ratio averaged over every probe of the run (initialisation and each probed validation)."""
    ratios = [log_ratio([float(v) for v in row["grad_norms"]]) for row in record.gradients]
    finite = [r for r in ratios if math.isfinite(r)]
    return float(np.mean(finite)) if finite else float("nan")


def gradient_facts(record: RunRecord) -> dict[str, Any]:
    facts = history_facts(record)
    return {
        "log10_ratio_init": log_ratio(probe_norms(record, "init")),
        "log10_ratio_final": log_ratio(probe_norms(record, "final")),
        "log10_ratio_mean": mean_log_ratio(record),
        "clip_fraction": facts["clip_fraction"],
        "log10_grad_norm_max": math.log10(facts["grad_norm_max"]) if facts["grad_norm_max"] > 0 else float("nan"),
        "diverged": record.diverged,
        **{name: facts[name] for name in ("steps", "best_step", "stop_reason", "converged", "convergence",
                                          "convergence_rule", "status", "trained", "val_exact", "val_CIDEr",
                                          "last_val_step", "last_val_exact", "last_val_CIDEr", "train_seconds")},
    }


def run(ctx: BenchContext) -> SuiteResult:
    trained = train_and_evaluate(ctx, NAME, groups(ctx), request=None)  # gradients need no test scores
    rows = []
    for label, group in trained.items():
        for record in group.records:
            rows.append({"suite": NAME, "config": label, "cell": record.config["cell"], "seed": record.seed,
                         "grad_clip": record.config["grad_clip"], **gradient_facts(record), "run_label": record.label,
                         "run_key": record.key})
    by_seed = {label: {r["seed"]: r for r in rows if r["config"] == label} for label in trained}

    def facts(label: str, column: str) -> dict[int, float]:
        return {seed: float(row[column]) for seed, row in by_seed[label].items()}

    def runs(label: str) -> list[RunRecord]:
        return trained[label].records

    comparisons = {}

    def compare(a: str, b: str, column: str) -> None:
        comparisons.update(compare_runs(ctx, a, facts(a, column), b, facts(b, column), column, runs(a), runs(b)))

    for moment in ("init", "final", "mean"):
        for other in ("lstm", "gru"):
            compare(f"s2vt-{other}", "s2vt-rnn", f"log10_ratio_{moment}")
    for other in ("lstm", "gru"):
        compare("s2vt-rnn", f"s2vt-{other}", "clip_fraction")
        compare(f"s2vt-rnn{NOCLIP_SUFFIX}", f"s2vt-{other}{NOCLIP_SUFFIX}", "log10_grad_norm_max")
    table = pd.DataFrame(rows)
    free = table[table["config"].str.endswith(NOCLIP_SUFFIX)]
    noclip = free.groupby("cell", sort=False)["diverged"].agg(["sum", "size"]).reindex(list(CELLS), fill_value=0)
    diverged = {cell: int(noclip.loc[cell, "sum"]) for cell in CELLS}
    runs_noclip = {cell: int(noclip.loc[cell, "size"]) for cell in CELLS}
    panels = {
        "at initialisation": {cell: [n for r in trained[f"s2vt-{cell}"].records if (n := probe_norms(r, "init"))] for cell in CELLS},
        "after training": {cell: [n for r in trained[f"s2vt-{cell}"].records if (n := probe_norms(r, "final"))] for cell in CELLS},
    }
    flow = gradient_panels(ctx.figures_dir / "gradients_flow.png", panels,
                           "Gradient reaching each input frame, S2VT (log scale; band = min..max over seeds)")
    clip = grouped_bars(ctx.figures_dir / "gradients_clipping.png", list(CELLS), {
        "clip fraction (clipping on)": {cell: [r["clip_fraction"] for r in rows if r["config"] == f"s2vt-{cell}"] for cell in CELLS},
    }, "share of steps clipped", "How often gradient clipping fired")
    clip_value = ctx.spec("s2vt", "lstm", ctx.seeds[0]).config.grad_clip
    body = "\n\n".join([
        "log10 ratio = log10(||dL/dx_first|| / ||dL/dx_last||) of the probe batch (mean ± std over seeds): "
        "0 means the first frame receives as much gradient as the last; -3 means a thousand times less. "
        f"Clip fraction: share of training steps whose total gradient norm exceeded the clipping threshold ({fmt(clip_value)}).",
        markdown_table(cells_frame(table, diverged, runs_noclip)),
        markdown_table(per_seed(table, ["config"], "log10_ratio_mean")),
        figure_link(flow.name, "gradient norm against distance from the last frame"),
        figure_link(clip.name, "clip fraction"),
    ])
    facts_out = {"diverged_without_clipping": diverged, "runs_without_clipping": runs_noclip}
    return SuiteResult(NAME, TITLE, table, body, figures=[flow.name, clip.name], comparisons=comparisons, facts=facts_out)


def cells_frame(table: pd.DataFrame, diverged: dict[str, int], runs_noclip: dict[str, int]) -> pd.DataFrame:
    """One row per cell: log10 ratios and clip fraction with clipping on, the largest gradient norm
    without clipping (each mean ± std over seeds), and how many runs without clipping diverged."""
    noclip = table["config"].str.endswith(NOCLIP_SUFFIX)
    clipped = seed_summary(table[~noclip], ["cell"], list(CLIPPED_COLUMNS), count_column=None).set_index("cell")
    free = seed_summary(table[noclip], ["cell"], ["log10_grad_norm_max"], count_column=None).set_index("cell")
    frame = pd.concat([clipped, free], axis=1).reindex(list(CELLS)).fillna(NOT_AVAILABLE)
    frame = frame.rename(columns={**CLIPPED_COLUMNS, "log10_grad_norm_max": "max grad norm, no clipping (log10)"})
    frame["diverged without clipping"] = [f"{diverged[cell]} of {runs_noclip[cell]}" for cell in CELLS]
    converged = table.assign(noclip=noclip).groupby(["cell", "noclip"])["converged"].agg(["sum", "size"])
    for flag, heading in ((False, "converged (clipping on)"), (True, "converged (no clipping)")):
        frame[heading] = [f"{int(converged.loc[(cell, flag), 'sum'])}/{int(converged.loc[(cell, flag), 'size'])}"
                          if (cell, flag) in converged.index else NOT_AVAILABLE for cell in CELLS]
    return frame.rename_axis("cell").reset_index()
