"""What the benchmark says about each checkpoint it exports, for people and for the demo: a title, its
place in the demo's Compare view, and what it was trained on.

`results/checkpoints/index.json` holds one entry per exported configuration (written by
`best.export_per_config`: seed, validation and test scores, run key, file, ...), and each entry also
carries `describe(label)` here plus `data` and `features`. The demo builds its Compare view from
those fields (`demo/cards.py`) and knows no benchmark label. `results/best/summary.json` is the best
model's JSON card (data, features, selection rule, steps), which the demo reads the same way.

`refresh_index(results)` adds these fields to an index written before they existed, from what the
results folder holds (best/summary.json's data label, each checkpoint's preprocessing facts): no run
is trained or evaluated. `vidcap-bench index --results results` runs it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmark.selection import REGIONS_SUFFIX
from benchmark.suites import seeds
from vidcap_core.errors import ConfigError
from vidcap_core.files import json_safe, write_json

INDEX = Path("checkpoints") / "index.json"
SUMMARY = Path("best") / "summary.json"
ARCH_TITLES = {"meanpool": "Mean pool", "s2vt": "S2VT", "attention": "Attention", "concepts": "Concepts"}
CELL_TITLES = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
# The demo's Compare view, left to right: the report's comparison (plain RNN vs LSTM in S2VT, then
# attention), attention over the objects of each frame, then the surveyed systems of the `seeds` suite.
COMPARE_COLUMNS = ("s2vt-rnn", "s2vt-lstm", "attention-lstm", f"attention-lstm{REGIONS_SUFFIX}",
                   seeds.CONCEPTS_INIT, seeds.CONCEPTS_INPUT, seeds.CONSISTENCY, seeds.ADVERSARIAL, seeds.SCST,
                   seeds.SCST_SEMANTIC)
# Titles a label's parts do not give ([n]: the report survey's numbering, as in seeds.py).
TITLES = {
    f"attention-lstm{REGIONS_SUFFIX}": "Attention over objects (LSTM)",
    seeds.CONCEPTS_INIT: "Concepts init (LSTM) [1]",
    seeds.CONCEPTS_INPUT: "Concepts as input (LSTM) [1]",
    seeds.CONSISTENCY: "Attention + consistency [4]",
    seeds.ADVERSARIAL: "LSTM-GAN fine-tune [2]",
    seeds.SCST: "SCST fine-tune (CIDEr-D)",
    seeds.SCST_SEMANTIC: "SCST fine-tune (semantic)",
}


def title_of(label: str) -> str:
    """How a person calls configuration `label`: "RNN (S2VT)" (S2VT's columns compare cells),
    "Attention (LSTM)", "Mean pool (GRU)", a TITLES entry, else the label itself."""
    if label in TITLES:
        return TITLES[label]
    arch, _, cell = label.partition("-")
    if arch not in ARCH_TITLES or cell not in CELL_TITLES:
        return label
    return f"{CELL_TITLES[cell]} (S2VT)" if arch == "s2vt" else f"{ARCH_TITLES[arch]} ({CELL_TITLES[cell]})"


def describe(label: str) -> dict[str, Any]:
    """{"title", "compare_column"}: the column's place in the demo's Compare view (1 = leftmost), or
    None for a checkpoint the view leaves out."""
    column = COMPARE_COLUMNS.index(label) + 1 if label in COMPARE_COLUMNS else None
    return {"title": title_of(label), "compare_column": column}


def refresh_index(results: Path) -> Path:
    """Add `describe(label)`, `data` and `features` to every entry of <results>/checkpoints/index.json
    (kept where already there) and write it back; returns its path. `data`: best/summary.json's (every
    exported configuration trains on the main dataset); `features`: the checkpoint's own backbone and
    frame count. ConfigError when there is no index."""
    from vidcap_core.checkpoint import load_checkpoint

    results = Path(results)
    path = results / INDEX
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; `vidcap-bench run --suite cells --out {results}` writes it.")
    index: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    summary_path = results / SUMMARY
    data = json.loads(summary_path.read_text(encoding="utf-8")).get("data") if summary_path.is_file() else None
    for label, entry in index.items():
        entry.update(describe(label))
        if data is not None:
            entry.setdefault("data", data)
        checkpoint = results / "checkpoints" / entry["file"] if entry.get("file") else None
        if "features" not in entry and checkpoint is not None and checkpoint.is_file():
            facts = load_checkpoint(checkpoint).preprocessing or {}
            entry["features"] = f"{facts.get('backbone')}, {facts.get('num_frames')} frames"
    write_json(path, json_safe(index))
    return path
