"""What a killed process leaves behind, and how a rerun sweeps it.

Every checkpoint and log is written to a temp file `.NAME.XXXXXXXX.tmp` next to its target and
renamed over it (vidcap_core.training.run_files.atomic_write), so a kill -9 never leaves half a
file under a real name; it can leave the temp file. `sweep_interrupted_writes(folder)` removes
those before a run resumes in `folder`. Called by `vidcap train` and by the benchmark runner.
"""

from __future__ import annotations

import os
from pathlib import Path

TEMP_PATTERN = ".*.tmp"  # atomic_write's mkstemp(prefix=".NAME.", suffix=".tmp")


def sweep_interrupted_writes(folder: Path) -> list[Path]:
    """Delete the atomic-write temp files directly in `folder`; returns what was removed.

    Only call it where no other process is writing into `folder` (before a run starts or resumes).
    Under torchrun only rank 0 sweeps: the others start at the same time and never write there.
    """
    if int(os.environ.get("RANK", "0")) != 0 or not Path(folder).is_dir():
        return []
    removed = []
    for path in Path(folder).glob(TEMP_PATTERN):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
