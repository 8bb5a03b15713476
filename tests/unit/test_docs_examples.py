"""The examples in the docs print what the docs say they print.

docs/scheduling.md teaches the scheduler by example; a reader who pastes an example must see
the output shown. `docs/check_examples.py` runs every python block of a page and compares
what it prints with the text block after it; this test runs it on every page that has
examples, so a change in the core that changes a decision or a reason fails here until the
page is brought up to date (`docs/check_examples.py PAGE --write`, then read the diff).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def checker() -> ModuleType:
    """docs/check_examples.py, which is a script, not part of the package."""
    spec = importlib.util.spec_from_file_location("check_examples", DOCS / "check_examples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PAGES = sorted(p for p in DOCS.rglob("*.md") if "```python" in p.read_text())


def test_the_scheduling_guide_has_examples_with_output() -> None:
    page = DOCS / "scheduling.md"
    assert page in PAGES
    assert len(checker().run(page.read_text())) >= 5


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_examples_print_what_the_page_shows(page: Path) -> None:
    results = checker().run(page.read_text())
    stale = [(shown, printed) for _, _, shown, printed in results if shown != printed]
    assert not stale, "\n".join(
        f"--- shown in {page.name}\n{shown}+++ printed now\n{printed}" for shown, printed in stale
    )


def test_the_checker_fails_on_a_mismatch() -> None:
    page = "```python\nprint('ready')\n```\n\n```text\nnot ready\n```\n"
    [(_, _, shown, printed)] = checker().run(page)
    assert (shown, printed) == ("not ready\n", "ready\n")
