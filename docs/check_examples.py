"""Run the Python examples of a Markdown page and compare them with the output it shows.

Every ```python block of the page runs, in order, in one namespace; the ```text block that
follows a python block must be exactly what that block printed. With --write, the text
blocks are rewritten from the actual output instead (then read the diff before committing).

    .venv/bin/python docs/check_examples.py docs/scheduling.md [--write]

Exits 1 when a shown output differs, so a test or CI step can call it;
tests/unit/test_docs_examples.py runs it on every page of docs/ that has examples.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.S)


def run(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, shown, actual) for every text block that follows a python block."""
    namespace: dict[str, object] = {"__name__": "__doc_example__"}
    found = []
    printed: str | None = None
    for block in BLOCK.finditer(text):
        kind, body = block.group(1), block.group(2)
        if kind == "python":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(body, "<example>", "exec"), namespace)
            printed = out.getvalue()
        elif printed is not None:
            found.append((block.start(2), block.end(2), body, printed))
            printed = None
    return found


def main(argv: list[str]) -> int:
    path = Path(argv[0])
    text = path.read_text()
    results = run(text)
    if "--write" in argv:
        for start, end, _, actual in reversed(results):
            text = text[:start] + actual + text[end:]
        path.write_text(text)
        return 0
    stale = [(shown, actual) for _, _, shown, actual in results if shown != actual]
    for shown, actual in stale:
        print(f"--- shown in {path}\n{shown}+++ printed now\n{actual}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
