"""The names every layer agrees on (datasets, architectures, cells, backbones...), in a module that
imports nothing heavy, so the CLI can type its options without importing torch."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

DatasetName = Literal["synth", "msrvtt", "msvd", "csv"]
ArchName = Literal["meanpool", "s2vt", "attention", "concepts"]
ConceptMode = Literal["init", "input"]  # concepts arch: the concept vector initialises the decoder, or is an input
CellName = Literal["lstm", "gru", "rnn"]
FrameOrder = Literal["ordered", "shuffled", "reversed"]
DeviceName = Literal["auto", "cpu", "cuda"]
BackboneName = Literal["resnet18", "resnet50", "resnet152", "vgg16", "vgg19", "synth-cnn", "synth-slots", "random", "oracle"]

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
SYNTH_CNN_WEIGHTS = ASSETS_DIR / "synth_cnn.safetensors"  # committed; `vidcap pretrain-cnn` rebuilds it
