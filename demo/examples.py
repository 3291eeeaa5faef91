"""The demo's bundled examples: a few SynthClips clips with their reference captions and ground
truth, generated once (deterministic seed) into a cache folder at first start.

An uploaded file counts as an example when its bytes are an example's (size, then SHA-256), so
the semantic checker's verdict appears whichever way the clip reached the server (the example
table, a re-upload of the same file, or the API).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vidcap_core.errors import DatasetError
from vidcap_core.files import file_sha256

if TYPE_CHECKING:
    from vidcap_core.synth import ClipTruth

DEFAULT_EXAMPLES_DIR = Path(".cache/vidcap-demo/examples")
EXAMPLE_PRESET = "standard"  # the benchmark's preset: the best model was trained on clips like these
EXAMPLE_CLIPS = 8
EXAMPLE_SEED = 20240  # not the benchmark's seed: examples are clips no model has trained on
EXAMPLES_SHOWN = 4
GROUND_TRUTH = "ground_truth.json"


@dataclass(frozen=True)
class Example:
    video_id: str
    path: Path
    references: tuple[str, ...]
    truth: ClipTruth
    size: int  # bytes
    sha256: str

    def references_text(self, limit: int = 3) -> str:
        shown = list(self.references[:limit])
        more = len(self.references) - len(shown)
        return "\n".join(shown + ([f"(+{more} more)"] if more > 0 else []))


class ExampleSet:
    """The examples, looked up by file content."""

    def __init__(self, examples: list[Example] | None = None) -> None:
        self.examples = list(examples or [])
        self._by_size: dict[int, list[Example]] = {}
        for example in self.examples:
            self._by_size.setdefault(example.size, []).append(example)

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self):
        return iter(self.examples)

    def match(self, path: Path) -> Example | None:
        """The example whose bytes equal the file at `path`, else None (cheap: size first)."""
        try:
            candidates = self._by_size.get(Path(path).stat().st_size, [])
        except OSError:
            return None
        if not candidates:
            return None
        digest = file_sha256(Path(path))
        return next((example for example in candidates if example.sha256 == digest), None)


def ensure_examples(out_dir: Path = DEFAULT_EXAMPLES_DIR, preset: str = EXAMPLE_PRESET,
                    num_clips: int = EXAMPLE_CLIPS, seed: int = EXAMPLE_SEED) -> Path:
    """Generate the example clips into `out_dir` unless a finished SynthClips folder is there."""
    out_dir = Path(out_dir)
    if not (out_dir / GROUND_TRUTH).is_file():
        from vidcap_core.synth import generate_synthclips

        generate_synthclips(preset, out_dir, seed=seed, num_clips=num_clips, workers=1)
    return out_dir


def load_examples(root: Path, count: int = EXAMPLES_SHOWN) -> ExampleSet:
    """Up to `count` clips of a SynthClips folder, test split first, with references and truth."""
    from vidcap_core.data import load_dataset
    from vidcap_core.synth import load_ground_truth

    root = Path(root)
    truths = load_ground_truth(root)
    records = [r for r in load_dataset("synth", root).records if r.exists]
    if not records:
        raise DatasetError(f"{root} holds no SynthClips videos; delete it and restart vidcap-demo to regenerate it.")
    split_rank = {"test": 0, "val": 1, "train": 2}
    records.sort(key=lambda r: split_rank.get(r.split, 3))
    chosen = []
    for record in records[:count]:
        if record.video_id not in truths:
            raise DatasetError(f"{root}/{GROUND_TRUTH} has no entry for {record.video_id}; "
                               "delete the folder and restart vidcap-demo to regenerate it.")
        chosen.append(Example(record.video_id, record.path, tuple(record.captions), truths[record.video_id],
                              record.path.stat().st_size, file_sha256(record.path)))
    return ExampleSet(chosen)
