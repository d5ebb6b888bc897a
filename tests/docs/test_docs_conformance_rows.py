"""docs/conformance.md's rows keep to the page's own rules.

Its first paragraph defines the statuses (the bold words); every row's status starts with one
of them, a row done or partial names at least one test that exists (a test of the file it is
attributed to, or a test file or directory: read as ``test_docs_references.py`` reads a "test"
cell), and no clause and claim is listed twice (two rows saying the same thing drift apart:
one is updated, the other contradicts it). Every test a row names is checked by
``test_docs_references.py``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs.test_docs_references import names_a_test, table_references

#: Its outcome cannot depend on the Python version: the main interpreter only (ADR 0025).
pytestmark = pytest.mark.main_interpreter

PAGE = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"


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
    tested = {ref.where for ref in table_references(PAGE, text) if names_a_test(ref)}
    seen: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in rows(text):
        where = f"conformance.md:{row.line}"
        if not status.match(row.status):
            found.append(f"{where}: status {row.status!r} is none of {', '.join(words)}")
        elif (kind := re.split(r"[ (:,]", row.status)[0]) in ("done", "partial") and (
            where not in tested
        ):
            found.append(f"{where}: {kind} but names no test")
        seen[(row.clause, row.what)].append(row.line)
    for (clause, _), lines in seen.items():
        if len(lines) > 1:
            found.append(f"conformance.md:{lines[0]}: {clause} listed again at {lines[1:]}")
    return found


def test_every_row_keeps_to_the_page_s_rules():
    text = PAGE.read_text()
    # the statuses the page's conventions define, and no other bold word of that paragraph
    assert vocabulary(text) == ("done", "partial", "planned", "open")
    assert len(rows(text)) > 500
    assert problems(text) == []


def test_the_rules_catch_each_kind_of_mistake():
    here = "tests/docs/test_docs_conformance_rows.py"
    text = (
        "# Conformance\n\nStatus is **done**, **partial** or **open**.\n\n"
        "| clause | what | status | test |\n|---|---|---|---|\n"
        "| SE X | a | done (tshark) | `tests/docs/` |\n"
        "| SE X | b | limit documented | `tests/docs/` |\n"
        "| SE X | c | partial: no d | — |\n"
        "| SE X | a | open | — |\n"
        "| SE X | e | done | E |\n"
        "| SE X | f | done | test_every_row_keeps_to_the_page_s_rules |\n"
        f"| SE X | g | done | `{here}::test_no_such_test` |\n"
        "| SE X | h | done | `tests/vectors/` |\n"
        f"| SE X | i | done, on a fake | `{here}::test_no_such_test`, `::rows` |\n"
        f"| SE X | j | partial: no k | `tests/docs/test_no_such_file.py`, `{here}` |\n"
        "| SE X | l | done: m | `test_docs_references.py::test_cited_test_exists[x]` |\n"
    )
    assert problems(text) == [
        "conformance.md:8: status 'limit documented' is none of done, partial, open",
        "conformance.md:9: partial but names no test",
        "conformance.md:11: done but names no test",
        "conformance.md:12: done but names no test",
        "conformance.md:13: done but names no test",
        "conformance.md:14: done but names no test",
        "conformance.md:15: done but names no test",
        "conformance.md:7: SE X listed again at [10]",
    ]


#: an oracle a row's status may claim, and what a test file using it says
_ORACLES = {
    "tshark": re.compile(r"tshark|\bdissect\(|tests\.oracles"),
    "openssl": re.compile(r"openssl", re.IGNORECASE),
    "mosquitto": re.compile(r"mosquitto|tests\.mqtt\.broker|\bbroker\b", re.IGNORECASE),
    "postgresql": re.compile(r"postgres", re.IGNORECASE),
}
_TESTS = PAGE.parents[1] / "tests"
#: `tests/x/test_y.py`, a bare `test_y.py`, a directory `tests/x/`, or a section's letter
_NAMED = re.compile(r"(tests/[\w/]+\.py|tests/[\w/]+/(?![\w/]*\.py)|\btest_\w+\.py|^`?[A-Z]\b)")


def _letters(text: str) -> dict[int, dict[str, Path]]:
    """Per line, the test files a section's preamble abbreviates to a letter (`f.py` (E))."""
    found: dict[int, dict[str, Path]] = {}
    current: dict[str, Path] = {}
    folder = _TESTS
    for number, line in enumerate(text.split("\n"), 1):
        if line.startswith("#"):
            current, folder = {}, _TESTS
        if not line.startswith("|"):
            if where := re.search(r"Tests (?:are )?in `(tests/[\w/]+/)`", line):
                folder = PAGE.parents[1] / where.group(1)
            for name, letter in re.findall(r"`(test_\w+\.py)`(?: \(| = )([A-Z])\b", line):
                current[letter] = folder / name
        found[number] = dict(current)
    return found


def _files(cell: str, letters: dict[str, Path]) -> list[Path]:
    """The test files (or directories) a cell names."""
    files = []
    for part in re.split(r",|;", cell):
        for found in _NAMED.findall(part.strip()):
            token = found.strip("`")
            if token in letters:
                files.append(letters[token])
            elif token.startswith("tests/"):
                files.append(PAGE.parents[1] / token)
            elif token.startswith("test_"):
                files.extend(_TESTS.rglob(token))
    return files


def _source(path: Path) -> str:
    """A test file's text with its folders' conftest.py (fixtures such as ``place``)."""
    if path.is_dir():
        return "".join(_source(p) for p in sorted(path.rglob("test_*.py")))
    conftests = [d / "conftest.py" for d in path.parents if _TESTS in (d, *d.parents)]
    return "".join(p.read_text() for p in (path, *conftests) if p.is_file())


def oracle_problems(text: str) -> list[str]:
    """Rows whose status claims an oracle none of the tests they name uses."""
    found = []
    letters = _letters(text)
    for row in rows(text):
        status = row.status.lower()
        for oracle, used in _ORACLES.items():
            if oracle not in status:
                continue
            named = _files(f"{row.test}, {row.status}", letters[row.line])
            if not named or not all(p.exists() for p in named):
                found.append(f"conformance.md:{row.line}: claims {oracle}; tests not found")
            elif not any(used.search(_source(p)) for p in named):
                found.append(f"conformance.md:{row.line}: claims {oracle}; no test named uses it")
    return found


def test_a_row_claiming_an_oracle_names_a_test_that_uses_it():
    """A status "(tshark)", "(OpenSSL)", "(Mosquitto)" or "(PostgreSQL)" is a claim about
    the named tests: at least one of them runs that oracle (it was a status citing
    `openssl ecparam` for a test that never ran openssl)."""
    assert oracle_problems(PAGE.read_text()) == []


def test_the_oracle_rule_catches_a_claim_no_named_test_backs():
    text = (
        "# Conformance\n\nStatus is **done**.\n\n## A\n\n"
        "Tests in `tests/docs/`: `test_docs_references.py` (R).\n\n"
        "| clause | what | status | test |\n|---|---|---|---|\n"
        "| SE X | a | done (tshark) | `tests/docs/test_docs_snippets.py` |\n"
        "| SE X | b | done (OpenSSL) | R `::test_x` |\n"
        "| SE X | c | done (tshark) | `tests/docs/test_missing.py` |\n"
        "| SE X | d | done (tshark) | `tests/capture/test_capture_zep.py::test_x` |\n"
    )
    assert oracle_problems(text) == [
        "conformance.md:11: claims tshark; no test named uses it",
        "conformance.md:12: claims openssl; no test named uses it",
        "conformance.md:13: claims tshark; tests not found",
    ]
