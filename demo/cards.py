"""What the benchmark says about each served checkpoint (its JSON card), and the Compare view's columns
built from it: the demo knows no benchmark label; titles and column order come from the files.

A checkpoint's card is JSON written by `vidcap-bench run` next to it: for `checkpoints/<label>.pt`,
the entry `<label>` of `checkpoints/index.json` (title, compare_column, data, features, seed, scores,
run_key: benchmark/checkpoint_index.py); for `best/model.pt`, `best/summary.json` (data, features,
selection_rule, best_step, steps_done, convergence, run_key). A checkpoint without one (a run's
best.pt from `vidcap train`) has the card {}. Plain JSON reading: no torch, no Gradio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDEX = "index.json"  # next to results/checkpoints/<label>.pt
SUMMARY = "summary.json"  # next to results/best/model.pt
BEST_FILE = "model.pt"


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; {} when the file is missing or is not a JSON object."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def model_card(checkpoint: Path) -> dict[str, Any]:
    """The benchmark's JSON card of `checkpoint`, or {} (see the module docstring)."""
    checkpoint = Path(checkpoint)
    entry = read_json(checkpoint.parent / INDEX).get(checkpoint.stem)
    if isinstance(entry, dict):
        return entry
    if checkpoint.name == BEST_FILE:
        return read_json(checkpoint.parent / SUMMARY)
    return {}


@dataclass(frozen=True)
class CompareColumn:
    """One column of the Compare view."""

    name: str  # the checkpoint's name among the served models (its file stem)
    title: str
    missing: str | None = None  # why no checkpoint is served for it (the page says so in the column)


def compare_columns(checkpoints: dict[str, Path]) -> list[CompareColumn]:
    """The Compare view's columns: every entry with a `compare_column` in the index.json files next to
    the served checkpoints, in that order, served or not (`missing` says why not). Without such an
    index (checkpoints from `vidcap train`), every served checkpoint, in serving order."""
    entries: dict[str, tuple[Path, dict[str, Any]]] = {}
    for folder in dict.fromkeys(Path(path).parent for path in checkpoints.values()):
        for label, entry in read_json(folder / INDEX).items():
            if isinstance(entry, dict) and isinstance(entry.get("compare_column"), int):
                entries.setdefault(label, (folder, entry))
    if not entries:
        return [CompareColumn(name, model_card(path).get("title") or name) for name, path in checkpoints.items()]
    columns = []
    for label, (folder, entry) in sorted(entries.items(), key=lambda item: item[1][1]["compare_column"]):
        missing = None
        if label not in checkpoints:
            file = folder / (entry.get("file") or f"{label}.pt")
            missing = (f"{folder.name}/{file.name} is not served: {entry['skipped']}" if entry.get("skipped")
                       else f"{folder.name}/{file.name} is missing")
        columns.append(CompareColumn(label, str(entry.get("title") or label), missing))
    return columns
