"""Every test a page of docs/ cites exists and is a test pytest collects.

Backticked spans on every page: ``tests/...`` files and directories, and each ``::name`` (a
continuation ``::name`` refers to the last file named before it on the line; a bare
``test_x.py`` is looked up by file name under tests/; ``*`` globs must match).

The "test" column of docs/conformance.md's tables is read whole, backticks or not, and
strictly: every test it names is named in the file it is attributed to. A cell names files by
path (``tests/...``, ``benchmarks/...``), by a bare ``test_x.py`` file name (one file of that
name under tests/), or by the section's letters (``` `test_x.py` (E)``` or
``` `test_x.py` = B``` in the section's prose); a test by ``::name`` after a file, meaning that
file (the last one named before it in the cell, or, at the start of a cell in a section that
says "tests are in FILE unless named otherwise", that file). ``::name`` is a module-level test
function, a ``Test`` class, ``::TestClass::test_method``, or ``::test_name[id]`` (a
parametrized test: its name must be the file's). Refused: a test name without ``::`` (it was
looked up in every test file, so a row could cite a test of another file), a ``_suffix``
continuing a name, a glob (``*``, ``...``), a ``::name`` after no file, a letter the section
does not define.

A name must be a test pytest collects: a module-level ``test*`` function or a ``Test*`` class
(without ``__init__``) of a ``test_*.py`` file, or a ``test*`` method of such a class; a file
must hold one, a directory a file that does (other files cited, data or helpers, need only
exist).
"""

from __future__ import annotations

import ast
import fnmatch
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

#: Its outcome cannot depend on the Python version: the main interpreter only (ADR 0025).
pytestmark = pytest.mark.main_interpreter

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TESTS = ROOT / "tests"
CONFORMANCE = DOCS / "conformance.md"
_SPAN = re.compile(r"`([^`]+)`")
_REF = re.compile(r"(?:(tests/[\w/.*-]*)|\b(test_[\w*]+\.py))?(?:::([\w*]+))?")

#: the tokens of a conformance "test" cell (backticks removed), in the order tried; a name,
#: a suffix and a glob are read only to be refused
_TOKEN = re.compile(
    r"(?P<path>\b(?:tests|benchmarks)/[\w/.*-]*)"
    r"|(?P<file>\btest_[\w*]+\.py\b)"
    r"|::(?P<member>(?:\w|\*|\.\.\.)+(?:::\w+)?(?:\[[^\]|]*\])?)"
    r"|(?P<name>\btest_(?:\w|\*|\.\.\.)*)"
    r"|(?<![\w/.-])(?P<suffix>_\w+)"
    r"|(?<![\w/.`-])(?P<letter>[A-Z])(?![\w/.-])"
)
#: a section's letters: `test_x.py` (E) or `test_x.py` = B
_LEGEND = re.compile(r"`([\w/.]*test_\w+\.py)`\s*(?:\(([A-Z])\)|=\s*([A-Z])\b)")
_DEFAULT = re.compile(r"`([\w/.]*test_\w+\.py)`[^`|]*unless named otherwise", re.IGNORECASE)


@cache
def names_in(path: Path) -> frozenset[str]:
    """The tests pytest collects from ``path`` (module level, default naming rules)."""
    if not (path.name.startswith("test_") and path.suffix == ".py"):
        return frozenset()
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            found.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            methods = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            if "__init__" not in methods:
                found.add(node.name)
                found.update(f"{node.name}::{m}" for m in methods if m.startswith("test"))
    return frozenset(found)


@cache
def by_file_name(name: str) -> tuple[Path, ...]:
    return tuple(TESTS.rglob(name))


@cache
def all_test_files() -> tuple[Path, ...]:
    return tuple(sorted(TESTS.rglob("test_*.py")))


class Unfound(Exception):
    """A cited path that names no file, or not one."""


def files_of(where: str, path: str) -> list[Path]:
    """The files ``path`` names (a path from the root, a glob, or a bare file name)."""
    if "/" in path:
        files = sorted(ROOT.glob(path)) if "*" in path else [ROOT / path]
        if not files:
            raise Unfound(f"{where}: {path} matches nothing")
        if not all(f.exists() for f in files):
            raise Unfound(f"{where}: {path} does not exist")
        return files
    files = list(by_file_name(path))
    if len(files) != 1:
        raise Unfound(f"{where}: {path} matches {len(files)} files under tests/")
    return files


def holds_a_test(path: Path) -> bool:
    if path.is_dir():
        return any(names_in(f) for f in path.rglob("test_*.py"))
    return bool(names_in(path))


@dataclass(frozen=True)
class Ref:
    """A citation: ``where`` (page:line), ``path`` (None: a name no file is named for),
    ``name`` (None for the file itself; a glob on pages other than conformance.md's tables),
    ``problem`` (why the conformance table's reader refuses it, or None)."""

    where: str
    path: str | None
    name: str | None = None
    problem: str | None = None

    @property
    def id(self) -> str:
        return f"{self.where}:{self.path or ''}{f'::{self.name}' * bool(self.name)}"


def span_references(page: Path) -> list[Ref]:
    """The backticked citations of ``page`` (outside conformance.md's "test" cells)."""
    found = []
    text = page.read_text()
    if page == CONFORMANCE:  # its tables' test cells are read by table_references
        _COLUMN.clear()
        text = "\n".join(
            line.replace(cell, "") if cell else line
            for line, (cell,) in ((line, _test_cell(line)) for line in text.split("\n"))
        )
    for span in _SPAN.finditer(text):
        content = re.sub(r"\s+", "", span.group(1))  # a span may wrap across lines
        if "tests/" not in content and "test_" not in content:
            continue
        where = f"{page.name}:{text.count(chr(10), 0, span.start()) + 1}"
        last = None
        for match in _REF.finditer(content):
            path, bare, name = match.groups()
            if path or bare:
                last = path or bare
            if (path or bare or name) and last is not None:
                found.append(Ref(where, last, name))
    return found


_COLUMN: dict[str, int] = {}


def _test_cell(line: str) -> list[str | None]:
    """[the row's "test" cell or None]: set by the table header seen last."""
    if not line.startswith("|"):
        _COLUMN.pop("test", None)
        return [None]
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
    if "test" in cells and "clause" in cells:
        _COLUMN["test"] = cells.index("test")
        return [None]
    if set("".join(cells)) <= set("-: ") or "test" not in _COLUMN:
        return [None]
    index = _COLUMN["test"]
    return [cells[index] if index < len(cells) else ""]


def table_references(page: Path = CONFORMANCE, text: str | None = None) -> list[Ref]:
    """Every citation in the "test" cells of ``page``'s tables (``text``, if given, is its
    text), in the forms described above."""
    found: list[Ref] = []
    lines = (page.read_text() if text is None else text).split("\n")
    letters: dict[str, str] = {}
    default: str | None = None
    prose: list[str] = []
    _COLUMN.clear()
    for number, line in enumerate(lines, 1):
        if line.startswith("## "):
            letters, default, prose = {}, None, []
        (cell,) = _test_cell(line)
        if not line.startswith("|"):
            prose.append(line)
            section = "\n".join(prose)
            for match in _LEGEND.finditer(section):
                letters[match.group(2) or match.group(3)] = match.group(1)
            if (named := _DEFAULT.search(section)) is not None:
                default = named.group(1)
            continue
        if cell is None:
            continue
        where = f"{page.name}:{number}"
        last = default
        text = cell.replace("`", "")
        for token in _TOKEN.finditer(text):
            kind, value = token.lastgroup, token.group(token.lastgroup or 0)
            # a file followed by its ::name is that test's file, not a citation of the file
            after = r"::" if kind in ("path", "file") else r"\s*::"
            whole = not re.match(after, text[token.end() :])
            if kind in ("path", "file"):
                last = value
                glob = f"{value} is a glob, not a file" if "*" in value else None
                if whole or glob:
                    found.append(Ref(where, value, None, glob))
            elif kind == "letter":
                if value not in letters:
                    found.append(Ref(where, None, value, f"letter {value} is not defined"))
                    continue
                last = letters[value]
                if whole:
                    found.append(Ref(where, last))
            elif kind == "member":
                if last is None:
                    found.append(Ref(where, None, value, f"::{value} names no file"))
                elif "*" in value or "..." in value:
                    found.append(Ref(where, last, value, f"{value} is a glob, not a test"))
                else:
                    found.append(Ref(where, last, value))
            else:  # a name or a suffix: without a file
                found.append(
                    Ref(where, None, value, f"{value} has no file: cite it as FILE::{value}")
                )
    return found


def references() -> list[Ref]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        found.extend(span_references(page))
    found.extend(table_references())
    return found


REFS = references()


def test_the_conformance_inventory_cites_tests():
    tables = table_references()
    assert sum(1 for ref in tables if ref.name) > 300
    # the section's letters and its default file are read
    assert any(ref.path == "test_messaging_board.py" and ref.name for ref in tables)
    assert any(ref.path == "tests/drlc/test_drlc_client_core.py" for ref in tables)


def test_a_cell_s_forms_are_read_and_a_helper_is_not_a_test(tmp_path: Path):
    page = tmp_path / "conformance.md"
    page.write_text(
        "## A section\n\nTests: `test_docs_references.py` (Q); the rest in\n"
        "`tests/docs/test_docs_snippets.py` unless named otherwise.\n\n"
        "| clause | what | status | test |\n|---|---|---|---|\n"
        "| X | y \\| z | done | Q `::names_in`, `::test_a_*`, ::test_b, "
        "test_cited_test_exists, _c, ::test_d_..._e, tests/docs/, ::TestX::test_y, "
        "::test_z[a-1, b] |\n"
        "| X | y | done | `::test_default`, Z, tests/x/test_*.py |\n"
    )
    refs = {(r.path, r.name, r.problem) for r in table_references(page)}
    assert refs == {  # Q followed by its ::names cites no whole file
        ("test_docs_references.py", "names_in", None),
        ("test_docs_references.py", "test_a_*", "test_a_* is a glob, not a test"),
        ("test_docs_references.py", "test_b", None),
        (
            None,
            "test_cited_test_exists",
            "test_cited_test_exists has no file: cite it as FILE::test_cited_test_exists",
        ),
        (None, "_c", "_c has no file: cite it as FILE::_c"),
        ("test_docs_references.py", "test_d_..._e", "test_d_..._e is a glob, not a test"),
        ("tests/docs/", None, None),
        ("tests/docs/", "TestX::test_y", None),
        ("tests/docs/", "test_z[a-1, b]", None),
        ("tests/docs/test_docs_snippets.py", "test_default", None),
        (None, "Z", "letter Z is not defined"),
        ("tests/x/test_*.py", None, "tests/x/test_*.py is a glob, not a file"),
    }
    assert "names_in" not in names_in(Path(__file__))
    assert "test_cited_test_exists" in names_in(Path(__file__))


def _collected(name: str, files: list[Path] | tuple[Path, ...]) -> bool:
    return any(fnmatch.filter(names_in(f), name) for f in files)


def citation_problem(ref: Ref) -> str | None:
    """Why ``ref`` does not name a test in the file it is attributed to, or None."""
    if ref.problem is not None or ref.path is None:
        return f"{ref.where}: {ref.problem or f'{ref.name} names no file'}"
    try:
        files = files_of(ref.where, ref.path)
    except Unfound as error:
        return str(error)
    if ref.name is None:  # a test file or directory holds a test; anything else exists
        files = [f for f in files if f.is_dir() or f.name.startswith("test_")]
        if not all(holds_a_test(f) for f in files):
            return f"{ref.where}: {ref.path} holds no test pytest collects"
        return None
    files = [f for f in files if f.is_file()]
    if len(files) != 1:
        return f"{ref.where}: {ref.path}::{ref.name} does not name one file"
    name = ref.name.split("[")[0]  # a parametrized test's id: its test is the file's
    if not _collected(name, files):
        return f"{ref.where}: {ref.path} has no collected test {ref.name}"
    return None


def names_a_test(ref: Ref) -> bool:
    """``ref`` names a test that exists: a test of its file, or a test file or directory."""
    if citation_problem(ref) is not None or ref.path is None:
        return False
    if ref.name is not None:
        return True
    return any(
        (f.is_dir() or f.name.startswith("test_")) and holds_a_test(f)
        for f in files_of(ref.where, ref.path)
    )


@pytest.mark.parametrize("ref", REFS, ids=[ref.id for ref in REFS])
def test_cited_test_exists(ref: Ref):
    assert citation_problem(ref) is None, citation_problem(ref)


def test_a_bogus_or_misattributed_citation_fails(tmp_path: Path):
    """The checks can fail: a file that does not exist, a test of another file, a test
    without a file, a glob, a method its class does not have."""
    page = tmp_path / "conformance.md"
    here = "tests/docs/test_docs_references.py"
    page.write_text(
        "## A\n\n| clause | what | status | test |\n|---|---|---|---|\n"
        f"| X | a | done | `tests/docs/test_no_such_file.py::test_x` |\n"
        f"| X | b | done | `{here}::test_every_row_keeps_to_the_page_s_rules` |\n"
        "| X | c | done | `test_every_row_keeps_to_the_page_s_rules` |\n"
        f"| X | d | done | `{here}::test_cited_*` |\n"
        f"| X | e | done | `{here}::TestNone::test_x`, `::test_cited_test_exists[x]`, "
        "`::test_cited_test_exists` |\n"
    )
    assert [citation_problem(ref) for ref in table_references(page) if ref.name] == [
        "conformance.md:5: tests/docs/test_no_such_file.py does not exist",
        f"conformance.md:6: {here} has no collected test test_every_row_keeps_to_the_page_s_rules",
        "conformance.md:7: test_every_row_keeps_to_the_page_s_rules has no file: cite it as "
        "FILE::test_every_row_keeps_to_the_page_s_rules",
        "conformance.md:8: test_cited_* is a glob, not a test",
        f"conformance.md:9: {here} has no collected test TestNone::test_x",
        None,
        None,
    ]
