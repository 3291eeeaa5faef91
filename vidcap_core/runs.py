"""RUN_DIR: the files one training run leaves, named once for the code that writes them (training)
and the code that reads them (evaluation, the benchmark)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidcap_core.errors import DatasetError


@dataclass(frozen=True)
class RunDir:
    """Paths inside RUN_DIR."""

    root: Path

    @property
    def config(self) -> Path:
        """TrainConfig.to_dict() as JSON."""
        return self.root / "config.json"

    @property
    def vocab(self) -> Path:
        return self.root / "vocab.json"

    @property
    def last(self) -> Path:
        """Resume state: weights, optimizer, RNG, where the run stands."""
        return self.root / "last.pt"

    @property
    def best(self) -> Path:
        """Inference checkpoint of the best validation (selection key: training/convergence.py)."""
        return self.root / "best.pt"

    @property
    def log(self) -> Path:
        """One JSON row per validation interval (val_every_steps optimizer steps)."""
        return self.root / "log.jsonl"

    @property
    def gradients(self) -> Path:
        """Gradient-flow probe rows."""
        return self.root / "gradients.jsonl"

    @property
    def summary(self) -> Path:
        """The finished run's facts: steps, stop reason, convergence verdict, caption limit."""
        return self.root / "summary.json"

    def event_files(self) -> list[Path]:
        """TensorBoard event files (training/board.py), one per process that trained the run."""
        return sorted(self.root.glob("events.out.tfevents.*"))

    def read_config(self, required: tuple[str, ...] = ()) -> dict[str, Any]:
        """config.json as plain data (no TrainConfig: inference reads it without importing training).
        DatasetError when it is missing, unreadable or lacks one of `required`."""
        try:
            values = json.loads(self.config.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise DatasetError(f"{self.config} does not exist: {self.root} is not a training run "
                               "(train one with `vidcap train --out RUN_DIR`).") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{self.config} cannot be read ({exc}); retrain into a fresh --out.") from exc
        missing = [key for key in required if not isinstance(values, dict) or key not in values]
        if missing:
            raise DatasetError(f"{self.config} lacks {', '.join(missing)}; it was not written by `vidcap train`.")
        return values
