"""The docs a newcomer reads: README.md stays short, keeps the markers `vidcap-bench report --readme`
rewrites, and every relative link in README.md and docs/ points at a file of the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmark.report import README_END, README_START

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 200
LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmark" / "README.md"]


def test_readme_is_short_and_keeps_the_claims_table_markers():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES, f"README.md is over {README_MAX_LINES} lines: move detail to docs/"
    assert text.count(README_START) == 1 and text.count(README_END) == 1
    assert text.index(README_START) < text.index(README_END)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files(doc):
    targets = [t for t in LINK.findall(doc.read_text(encoding="utf-8")) if "://" not in t and not t.startswith("#")]
    missing = [t for t in targets if not (doc.parent / t.split("#")[0]).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} links to missing {missing}"
