"""The names every layer agrees on (datasets, architectures, cells, backbones, the decoding preset...),
in a module that imports nothing heavy, so the CLI can type its options (and print the preset in
`--help`) without importing torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vidcap_core.errors import ConfigError

DatasetName = Literal["synth", "msrvtt", "msvd", "csv"]
ArchName = Literal["meanpool", "s2vt", "attention", "concepts"]
ConceptMode = Literal["init", "input"]  # concepts arch: the concept vector initialises the decoder, or is an input
CellName = Literal["lstm", "gru", "rnn"]
FrameOrder = Literal["ordered", "shuffled", "reversed"]
DeviceName = Literal["auto", "cpu", "cuda"]
BackboneName = Literal["resnet18", "resnet50", "resnet152", "vgg16", "vgg19", "synth-cnn", "synth-slots", "random", "oracle"]

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
SYNTH_CNN_WEIGHTS = ASSETS_DIR / "synth_cnn.safetensors"  # committed; `vidcap pretrain-cnn` rebuilds it


@dataclass(frozen=True)
class DecodingPreset:
    """Beam size, n-gram repetition block (0 = off) and GNMT length penalty, under one name."""

    name: str
    beam: int
    no_repeat_ngram: int
    length_penalty: float = 0.0

    def __post_init__(self) -> None:
        if self.beam < 1 or self.no_repeat_ngram < 0 or self.length_penalty < 0:
            raise ConfigError(f"decoding preset {self.name!r} needs beam >= 1, no_repeat_ngram >= 0 and "
                              f"length_penalty >= 0, got {self.beam}, {self.no_repeat_ngram}, {self.length_penalty}.")

    def describe(self) -> str:
        """e.g. "beam 3, no repeated 3-gram"."""
        search = "greedy" if self.beam == 1 else f"beam {self.beam}"
        block = f"no repeated {self.no_repeat_ngram}-gram" if self.no_repeat_ngram else "no repetition block"
        penalty = f", length penalty {self.length_penalty:g}" if self.length_penalty else ""
        return f"{search}, {block}{penalty}"


# How captions that people read are decoded: the demo page and `vidcap caption` by default, and the
# benchmark's demo examples (the model card's "Demo examples"). Beam 3 finds likelier captions than
# greedy; the 3-gram block stops a caption from repeating a phrase up to the length limit (issue #12).
# The benchmark's tables decode greedily with no block (`decoding.decode`'s defaults), so they compare
# decoders, not decoding settings. Also importable as `vidcap_core.decoding.READABLE`.
READABLE = DecodingPreset("readable", beam=3, no_repeat_ngram=3)
