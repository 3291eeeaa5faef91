"""`vidcap-demo` entry point. Until the Gradio app lands it runs the synthetic pipeline instead:
it makes the tiny SynthClips preset and prints its dataset statistics."""

from __future__ import annotations

import json
from pathlib import Path

SYNTH_DIR = Path(".cache/vidcap-demo/synth-tiny")


def main() -> None:
    from vidcap_core.data import dataset_stats, load_dataset
    from vidcap_core.synth import generate_synthclips

    print("The Gradio app is not built yet; running the synthetic pipeline instead.")
    summary = generate_synthclips("tiny", SYNTH_DIR, seed=0)
    print(f"SynthClips tiny: {summary['clips']} clips in {SYNTH_DIR}")
    print(json.dumps(dataset_stats(load_dataset("synth", SYNTH_DIR)), indent=2))
