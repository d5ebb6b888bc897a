"""docs/conformance.md's rows keep to the page's own rules.

Its first paragraph defines the statuses (the bold words); every row's status starts with one
of them, a row done or partial names at least one test, and no clause and claim is listed
twice (two rows saying the same thing drift apart: one is updated, the other contradicts it).
The tests a row names are checked by ``test_docs_references.py``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Its outcome cannot depend on the Python version: the main interpreter only (ADR 0025).
pytestmark = pytest.mark.main_interpreter

PAGE = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"
#: what a test cell may hold when it names no test: a dash, nothing
_NO_TEST = re.compile(r"^(?:—|-|)$")
#: a test cell naming a test: a path, a test file or a test name
_A_TEST = re.compile(r"\btests/|\btest_\w+|::\w+|^`?[A-Z]`?\b")


@dataclass(frozen=True)
class Row:
    line: int
    clause: str
    what: str
    status: str
    test: str


def vocabulary(text: str) -> tuple[str, ...]:
    """The statuses the page defines: the bold words of its first paragraph."""
    first = text.split("\n\n")[1]
    words = tuple(re.findall(r"\*\*(\w+)\*\*", first))
    assert "done" in words, "the first paragraph defines no statuses"
    return words


def rows(text: str) -> list[Row]:
    """Every row of a table whose header has clause, what, status and test."""
    found = []
    columns: list[str] | None = None
    for number, line in enumerate(text.split("\n"), 1):
        if not line.startswith("|"):
            columns = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if columns is None:
            columns = cells
            continue
        if set("".join(cells)) <= set("-: ") or not {"clause", "what", "status", "test"} <= set(
            columns
        ):
            continue
        assert len(cells) == len(columns), f"conformance.md:{number}: {len(cells)} cells"
        cell = dict(zip(columns, cells, strict=True))
        found.append(Row(number, cell["clause"], cell["what"], cell["status"], cell["test"]))
    return found


def problems(text: str) -> list[str]:
    """What breaks the page's rules, one line each."""
    words = vocabulary(text)
    status = re.compile(rf"^(?:{'|'.join(words)})(?=$|[ (:,])")
    found = []
    seen: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in rows(text):
        where = f"conformance.md:{row.line}"
        if not status.match(row.status):
            found.append(f"{where}: status {row.status!r} is none of {', '.join(words)}")
        elif (kind := row.status.split(":")[0].split()[0].rstrip(",")) in ("done", "partial") and (
            _NO_TEST.match(row.test) or not _A_TEST.search(row.test)
        ):
            found.append(f"{where}: {kind} but names no test")
        seen[(row.clause, row.what)].append(row.line)
    for (clause, _), lines in seen.items():
        if len(lines) > 1:
            found.append(f"conformance.md:{lines[0]}: {clause} listed again at {lines[1:]}")
    return found


def test_every_row_keeps_to_the_page_s_rules():
    text = PAGE.read_text()
    assert len(rows(text)) > 500
    assert problems(text) == []


def test_the_rules_catch_each_kind_of_mistake():
    text = (
        "# Conformance\n\nStatus is **done**, **partial** or **open**.\n\n"
        "| clause | what | status | test |\n|---|---|---|---|\n"
        "| SE X | a | done (tshark) | `tests/docs/` |\n"
        "| SE X | b | limit documented | `tests/docs/` |\n"
        "| SE X | c | partial: no d | — |\n"
        "| SE X | a | open | — |\n"
        "| SE X | e | done | E |\n"
    )
    assert problems(text) == [
        "conformance.md:8: status 'limit documented' is none of done, partial, open",
        "conformance.md:9: partial but names no test",
        "conformance.md:7: SE X listed again at [10]",
    ]
