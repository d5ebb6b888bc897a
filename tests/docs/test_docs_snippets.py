"""Every fenced Python block marked ``<!-- run -->`` in docs/*.md runs as written.

A runnable block is a whole program (imports included); those that need a network use the
simulator and ``zse.sim.run`` (virtual time), so nothing here waits in real time. Blocks not
marked are fragments or need hardware (a USB stick) and are not run.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
MARKER = "<!-- run -->"
_BLOCK = re.compile(r"<!-- run -->\s*\n```python\n(.*?)\n```", re.DOTALL)
#: ``print(...)  # what it prints``: the comment is the output the page promises ("..." elides).
_PROMISE = re.compile(r"^\s*print\(.*\)\s+#\s*(.+?)\s*$", re.MULTILINE)


def runnable_blocks() -> list[tuple[str, str]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text()
        blocks = _BLOCK.findall(text)
        # A marker must be followed by a python block: a typo would silently skip a snippet.
        assert text.count(MARKER) == len(blocks), f"{page.name}: a {MARKER} without a block"
        found += [(f"{page.name}#{i + 1}", code) for i, code in enumerate(blocks)]
    return found


BLOCKS = runnable_blocks()


def test_the_guides_have_runnable_examples():
    pages = {name.split("#")[0] for name, _ in BLOCKS}
    assert {"quickstart.md", "concepts.md"} <= pages


@pytest.mark.parametrize(("name", "code"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_snippet_runs(name, code):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, name, "exec"), {"__name__": "__main__"})
    printed = out.getvalue()
    for promised in _PROMISE.findall(code):
        pattern = ".*".join(re.escape(part.strip()) for part in promised.split("..."))
        assert re.search(pattern, printed), f"{name}: the page says {promised!r}, not {printed!r}"
