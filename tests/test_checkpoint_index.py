"""results/checkpoints/index.json's descriptive fields (benchmark/checkpoint_index.py): titles, the demo's
Compare-view columns, data and features; `vidcap-bench index` adds them to an index written before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmark.checkpoint_index import COMPARE_COLUMNS, describe, refresh_index, title_of
from benchmark.cli import app
from benchmark.selection import grid_labels
from benchmark.suites import seeds
from vidcap_core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "results"


def test_every_benchmark_label_has_a_title_and_the_compare_columns_are_numbered_in_order():
    labels = [*grid_labels(), *seeds.MLE_LABELS, *seeds.FINETUNE_LABELS]
    assert all(title_of(label) != label for label in labels)  # none falls back to its raw label
    assert title_of("s2vt-rnn") == "RNN (S2VT)" and title_of("attention-lstm") == "Attention (LSTM)"
    assert set(COMPARE_COLUMNS) <= set(labels)
    assert [describe(label)["compare_column"] for label in COMPARE_COLUMNS] == list(range(1, len(COMPARE_COLUMNS) + 1))
    assert describe("meanpool-gru") == {"title": "Mean pool (GRU)", "compare_column": None}


def test_refresh_adds_the_fields_from_what_the_folder_holds(tmp_path):
    """An index written before the fields existed gets them from best/summary.json and each checkpoint's
    preprocessing facts; what it already says is kept; nothing is trained."""
    results = tmp_path / "results"
    (results / "checkpoints").mkdir(parents=True)
    (results / "best").mkdir()
    shutil.copy(COMMITTED / "checkpoints" / "meanpool-rnn.pt", results / "checkpoints" / "meanpool-rnn.pt")
    old = {"meanpool-rnn": {"seed": 0, "file": "meanpool-rnn.pt", "ranked": True},
           "s2vt-rnn": {"seed": 0, "file": None, "skipped": "too big", "features": "kept as written"}}
    (results / "checkpoints" / "index.json").write_text(json.dumps(old))
    (results / "best" / "summary.json").write_text(json.dumps({"data": "SynthClips standard (seed 0)"}))
    result = CliRunner().invoke(app, ["index", "--results", str(results)])
    assert result.exit_code == 0, result.output
    index = json.loads((results / "checkpoints" / "index.json").read_text())
    assert index["meanpool-rnn"] == {**old["meanpool-rnn"], "title": "Mean pool (RNN)", "compare_column": None,
                                     "data": "SynthClips standard (seed 0)", "features": "synth-cnn, 32 frames"}
    assert index["s2vt-rnn"]["features"] == "kept as written" and index["s2vt-rnn"]["compare_column"] == 1
    with pytest.raises(ConfigError, match="vidcap-bench run"):
        refresh_index(tmp_path / "nothing")


def test_the_committed_index_describes_every_checkpoint_for_the_demo():
    """`vidcap-bench index --results results` wrote these fields into the committed index (no run retrained)."""
    index = json.loads((COMMITTED / "checkpoints" / "index.json").read_text())
    for label, entry in index.items():
        assert {key: entry[key] for key in ("title", "compare_column")} == describe(label)
        assert entry["data"] and entry["features"].endswith("32 frames")
    columns = sorted((entry["compare_column"], label) for label, entry in index.items() if entry["compare_column"])
    assert [label for _, label in columns] == [label for label in COMPARE_COLUMNS if label in index]
