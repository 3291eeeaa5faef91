"""The best model, chosen on validation (benchmark.selection), exported with a model card; the best
seed of every architecture x cell, and of every other configuration of the `seeds` suite (concepts,
semantic consistency, the SCST / adversarial fine-tunes), is kept next to it for the demo as
`checkpoints/<label>.pt` when its checkpoint is small. Only the grid is ranked for `best`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.checkpoint_index import describe
from benchmark.demo_examples import demo_examples_section, score_demo_examples
from benchmark.runner import EvalRecord, RunRecord
from benchmark.selection import (
    SELECTION_RULE,
    Choice,
    best_of,
    choose,
    grid_labels,
    region_options,
    selection_values,
    val_cider,
)
from benchmark.suites.context import BenchContext
from benchmark.tables import fmt, markdown_table
from vidcap_core.ood import sidecar_path
from vidcap_core.files import atomic_write, atomic_write_text, json_safe, write_json

MAX_CHECKPOINT_BYTES = 5 * 1024 * 1024  # per-config checkpoints kept for the demo only below this size


def candidates(ctx: BenchContext) -> dict[str, list[RunRecord]]:
    """Finished default-setting runs of each architecture x cell on the main features, by label."""
    found: dict[str, list[RunRecord]] = {}
    for spec, record in ctx.executor.seen.values():
        default = ctx.spec(spec.config.arch, spec.config.cell, spec.seed, **region_options(spec.label))
        if spec.label in grid_labels() and spec.key == default.key:
            found.setdefault(spec.label, []).append(record)
    return {label: sorted(records, key=lambda r: r.seed) for label, records in found.items()}


def seeds_exports(ctx: BenchContext) -> dict[str, list[RunRecord]]:
    """Finished runs of the `seeds` suite's configurations outside the grid, by label (e.g. concepts-lstm,
    attention-lstm-scst): exported for the demo, never ranked for `best` (SELECTION_RULE ranks the grid)."""
    from benchmark.suites import seeds

    wanted = {spec.key: label for label, specs in seeds.groups(ctx).items() if label not in grid_labels() for spec in specs}
    found: dict[str, list[RunRecord]] = {}
    for key, (_, record) in ctx.executor.seen.items():
        if key in wanted:
            found.setdefault(wanted[key], []).append(record)
    return {label: sorted(records, key=lambda r: r.seed) for label, records in found.items()}


def copy_atomic(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as handle:
        atomic_write(target, lambda f: shutil.copyfileobj(handle, f))
    if source.suffix == ".pt" and sidecar_path(source).is_file():  # its OOD calibration travels with it
        copy_atomic(sidecar_path(source), sidecar_path(target))


def export_best(ctx: BenchContext, command: str) -> Choice | None:
    """Write `<out>/best/` (model.pt, MODEL_CARD.md, summary.json) and `<out>/checkpoints/<arch>-<cell>.pt`."""
    groups = candidates(ctx)
    choice = choose(groups)
    if choice is None:
        return None
    best_dir = ctx.out / "best"
    checkpoint = choice.record.best_checkpoint
    assert checkpoint is not None  # best_of only returns runs with a checkpoint
    copy_atomic(checkpoint, best_dir / "model.pt")
    test = ctx.evaluate(choice.record)
    summary = {
        "config": choice.label, "seed": choice.record.seed, "run_key": choice.record.key,
        "selection_rule": SELECTION_RULE, "mean_val_of_config": dict(zip(choice.key_names, choice.mean_key)),
        "val": choice.record.result.get("best_val"), "best_step": choice.record.result.get("best_step"),
        "steps_done": choice.record.result.get("steps_done"), "convergence": choice.record.convergence,
        "test": None if test is None else {**test.metrics, **({"semantic": test.semantic} if test.semantic else {})},
        "train_config": choice.record.config, "data": ctx.main.dataset.label,
        "features": ctx.source_of(choice.record).label,
    }
    if ctx.is_synth:  # the demo's examples are SynthClips clips: a real-data model is not judged on them
        summary["demo_examples"] = score_demo_examples(best_dir / "model.pt", ctx.store.root.parent / "demo-examples")
    write_json(best_dir / "summary.json", json_safe(summary))
    atomic_write_text(best_dir / "MODEL_CARD.md", model_card(ctx, choice, test, command, summary.get("demo_examples")))
    export_per_config(ctx, {**groups, **seeds_exports(ctx)}, ranked=set(groups))
    return choice


def export_per_config(ctx: BenchContext, groups: dict[str, list[RunRecord]], ranked: set[str]) -> None:
    """checkpoints/<label>.pt (best seed of each configuration) and checkpoints/index.json; `ranked`: the
    labels the selection rule chose `best` among (index.json's "ranked"). Each entry also says what the
    checkpoint is for the demo (benchmark.checkpoint_index: title, compare_column, data, features)."""
    index: dict[str, Any] = {}
    for label, records in sorted(groups.items()):
        record = best_of(records)
        if record is None or record.best_checkpoint is None:
            continue
        size = record.best_checkpoint.stat().st_size
        entry: dict[str, Any] = {"seed": record.seed, "val_CIDEr": val_cider(record), "bytes": size, "run_key": record.key,
                                 **{f"val_{name}": value for name, value in selection_values(record).items()},
                                 "converged": record.converged, "ranked": label in ranked, **describe(label),
                                 "data": ctx.main.dataset.label, "features": ctx.source_of(record).label}
        if record.parent is not None:  # a fine-tune: the run it started from
            entry.update(parent=record.parent.get("label"), parent_converged=record.parent_converged)
        if size <= MAX_CHECKPOINT_BYTES:
            copy_atomic(record.best_checkpoint, ctx.out / "checkpoints" / f"{label}.pt")
            entry["file"] = f"{label}.pt"
        else:
            entry["file"] = None
            entry["skipped"] = f"{size / 2**20:.1f} MiB is over the {MAX_CHECKPOINT_BYTES / 2**20:.0f} MiB limit"
        test = ctx.evaluate(record)
        entry["test_CIDEr"] = None if test is None else test.metrics.get("CIDEr")
        index[label] = entry
    if index:
        write_json(ctx.out / "checkpoints" / "index.json", json_safe(index))


CARD_METRICS = ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr")


def scores_frame(scores: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per split ("val (greedy)", "test (greedy)"), one column per caption metric."""
    return pd.DataFrame([{"split": split, **{m: fmt(metrics.get(m)) for m in CARD_METRICS}} for split, metrics in scores.items()])


def model_card(ctx: BenchContext, choice: Choice, test: EvalRecord | None, command: str,
               demo_examples: dict[str, Any] | None = None) -> str:
    record = choice.record
    val = record.result.get("best_val") or {}
    scores = {"val (greedy)": val, **({"test (greedy)": test.metrics} if test is not None else {})}
    lines = [
        f"# Model card: {choice.label} (seed {record.seed})", "",
        f"Chosen by the benchmark on validation: {SELECTION_RULE}. The configuration's {choice.describe()}.", "",
        "## Data", "",
        f"- Dataset: {ctx.main.dataset.label}",
        f"- Features: {ctx.source_of(record).label} (weights: {ctx.source_of(record).weights_id})",
        f"- Train / val / test splits of that dataset; best.pt from step {record.result.get('best_step')} of "
        f"{record.result.get('steps_done')} (the training selection key on validation); convergence: "
        f"{'converged' if record.converged else 'not converged'} ({record.convergence.get('reason', 'no verdict')}).", "",
        "## Scores", "", markdown_table(scores_frame(scores)),
    ]
    if test is not None and test.semantic:
        lines += ["", "Semantic checker on test (SynthClips): " + ", ".join(
            f"{k} {fmt(v)}" for k, v in test.semantic.items() if k != "n")]
    if demo_examples is not None:
        lines += ["", *demo_examples_section(demo_examples)]
    config = {k: v for k, v in record.config.items() if k not in ("root", "features")}
    lines += [
        "", "## Training configuration", "", "```json", json.dumps(config, indent=2), "```", "",
        "## Use it", "", "```bash", "vidcap caption VIDEO.mp4 --checkpoint results/best/model.pt", "```", "",
        "The checkpoint carries its vocabulary and preprocessing (backbone, frame count and size), so "
        "`vidcap caption` needs nothing else; the backbone's weights must be available (synth-cnn's are in the package).", "",
        "## Regenerate", "", "```bash", command, "```", "",
        "Every run is keyed on its configuration, data and features and the numerics versions of the stages "
        "that compute it (vidcap_core/numerics.py); this one is "
        f"`{record.key}` in the benchmark cache.",
    ]
    return "\n".join(lines) + "\n"
