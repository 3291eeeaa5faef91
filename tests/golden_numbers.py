"""Golden numbers: values each numerics stage computed when its version was declared (tests/golden/).

`check_golden(stage, name, values)` compares freshly computed `values` (nested dicts and lists of
numbers and strings) with `tests/golden/<stage>/<name>.json`, recorded at the stage's numerics version
(vidcap_core/numerics.py). Floats compare with a relative tolerance that absorbs a different CPU's
rounding, not a changed computation; ints and strings compare exactly.

- Same version, other numbers: the change moved a number. Fix it, or bump the stage's version.
- Another version recorded: the stage was bumped; record its numbers anew.
Recording: `VIDCAP_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py` rewrites the files of stages whose
recorded version is not the current one (and any missing file); it never rewrites numbers of an unbumped
stage, so a refactor cannot re-record its way past a moved number.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from vidcap_core.numerics import NUMERICS_VERSIONS

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
UPDATE_VARIABLE = "VIDCAP_UPDATE_GOLDEN"
RTOL = 1e-5  # relative: float32 rounding of another CPU after a few seeded steps stays far below it
ATOL = 1e-6  # absolute, for values near zero
RECORD_COMMAND = f"{UPDATE_VARIABLE}=1 python -m pytest tests/test_golden.py"


def golden_path(stage: str, name: str) -> Path:
    return GOLDEN_DIR / stage / f"{name}.json"


def check_golden(stage: str, name: str, values: Any) -> None:
    """Fail with which stage to bump when `values` differ from the golden numbers of (stage, name)."""
    version = NUMERICS_VERSIONS[stage]
    path = golden_path(stage, name)
    recorded = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if recorded is None or recorded["version"] != version:
        if os.environ.get(UPDATE_VARIABLE) == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"stage": stage, "version": version, "values": values}, indent=1) + "\n",
                            encoding="utf-8")
            return
        if recorded is None:
            pytest.fail(f"no golden numbers for {stage}/{name} ({path}): record them with {RECORD_COMMAND}")
        pytest.fail(f"the golden numbers of {stage}/{name} were recorded at numerics version {recorded['version']} of "
                    f"'{stage}', which is now {version}: record them anew with {RECORD_COMMAND}")
    differences = list(compare(recorded["values"], values, name))
    if differences:
        shown = "; ".join(differences[:5]) + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
        pytest.fail(f"the numbers changed ({shown}): fix the change, or bump the numerics version of '{stage}' in "
                    f"vidcap_core/numerics.py and record them anew with {RECORD_COMMAND}", pytrace=False)


def compare(expected: Any, actual: Any, where: str):
    """Yield 'where: expected X, got Y' for every leaf that differs."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            if key not in expected or key not in actual:
                yield f"{where}.{key}: {'missing' if key not in actual else 'new'}"
            else:
                yield from compare(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, list) and isinstance(actual, (list, tuple)):
        if len(expected) != len(actual):
            yield f"{where}: expected {len(expected)} items, got {len(actual)}"
        else:
            for i, (e, a) in enumerate(zip(expected, actual)):
                yield from compare(e, a, f"{where}[{i}]")
    elif isinstance(expected, float) or isinstance(actual, float):
        if not isinstance(actual, (int, float)) or not close(float(expected), float(actual)):
            yield f"{where}: expected {expected!r}, got {actual!r}"
    elif expected != actual:
        yield f"{where}: expected {expected!r}, got {actual!r}"


def close(expected: float, actual: float) -> bool:
    if math.isnan(expected) or math.isnan(actual):
        return math.isnan(expected) and math.isnan(actual)
    return math.isclose(expected, actual, rel_tol=RTOL, abs_tol=ATOL)


def rounded(values: Any, digits: int = 7) -> Any:
    """Numbers as JSON floats (numpy and torch scalars included), 7 significant digits: what a golden file holds."""
    if isinstance(values, dict):
        return {str(k): rounded(v, digits) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return [rounded(v, digits) for v in values]
    if isinstance(values, bool) or isinstance(values, str) or values is None:
        return values
    if isinstance(values, int):
        return values
    if hasattr(values, "tolist"):  # numpy / torch
        return rounded(values.tolist(), digits)
    value = float(values)
    return value if not math.isfinite(value) or value == 0 else float(f"{value:.{digits}g}")
