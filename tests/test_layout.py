"""File sizes (issue #19): every .py file under vidcap_core/, benchmark/ and demo/ is at most 450
lines, unless its module docstring says why its one job needs more, with the marker phrase
"needs more than 450 lines". A file over the limit without it is split by job, or its docstring
says why not."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vidcap_core", "benchmark", "demo")
MAX_LINES = 450
MARKER = "needs more than 450 lines"


def oversized_without_reason() -> list[str]:
    """'path: N lines' for each file over MAX_LINES whose module docstring lacks MARKER."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            count = len(text.splitlines())
            if count > MAX_LINES and MARKER not in (ast.get_docstring(ast.parse(text)) or ""):
                found.append(f"{path.relative_to(ROOT)}: {count} lines")
    return found


def test_every_file_is_short_or_says_why() -> None:
    found = oversized_without_reason()
    assert not found, (f"over {MAX_LINES} lines: {', '.join(found)}; split each by job, or say in its module "
                       f"docstring why its one job {MARKER}")
