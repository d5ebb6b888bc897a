"""Every test a page of docs/ cites exists and is a test pytest collects.

Backticked spans on every page: ``tests/...`` files and directories, and each ``::name`` (a
continuation ``::name`` refers to the last file named before it on the line; a bare
``test_x.py`` is looked up by file name under tests/; ``*`` globs must match).

The "test" column of docs/conformance.md's tables is read whole, backticks or not, in the forms
its rows use: paths (``tests/...``, ``benchmarks/...``), bare ``test_x.py`` file names,
``::name`` after a file (or, in a section that says "tests are in FILE unless named
otherwise", after nothing: that file), the section's letters (``` `test_x.py` (E)``` or
``` `test_x.py` = B``` in the section's prose, then ``E ::name``), bare test names looked up in
every test file (``test_a, _b`` is ``test_a`` and a ``test_...`` ending in ``_b``; ``..._``
stands for any text, as ``*`` does).

A name must be a test pytest collects: a module-level ``test*`` function or a ``Test*`` class
(without ``__init__``) of a ``test_*.py`` file; a file must hold one, a directory a file that
does (other files cited, data or helpers, need only exist).
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

#: the tokens of a conformance "test" cell (backticks removed), in the order tried
_TOKEN = re.compile(
    r"(?P<path>\b(?:tests|benchmarks)/[\w/.*-]*)"
    r"|(?P<file>\btest_[\w*]+\.py\b)"
    r"|::(?P<member>[\w*]+)"
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
            methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            if "__init__" not in methods:
                found.add(node.name)
    return frozenset(found)


@cache
def by_file_name(name: str) -> tuple[Path, ...]:
    return tuple(TESTS.rglob(name))


@cache
def all_test_files() -> tuple[Path, ...]:
    return tuple(sorted(TESTS.rglob("test_*.py")))


def files_of(where: str, path: str) -> list[Path]:
    """The files ``path`` names (a path from the root, a glob, or a bare file name)."""
    if "/" in path:
        files = sorted(ROOT.glob(path)) if "*" in path else [ROOT / path]
        assert files, f"{where}: {path} matches nothing"
        assert all(f.exists() for f in files), f"{where}: {path} does not exist"
        return files
    files = list(by_file_name(path))
    assert len(files) == 1, f"{where}: {path} matches {len(files)} files under tests/"
    return files


def holds_a_test(path: Path) -> bool:
    if path.is_dir():
        return any(names_in(f) for f in path.rglob("test_*.py"))
    return bool(names_in(path))


@dataclass(frozen=True)
class Ref:
    """A citation: ``where`` (page:line), ``path`` (None: any test file), ``name`` (a glob, or
    None for the file itself), ``after`` (for a bare ``_suffix``: the name it continues)."""

    where: str
    path: str | None
    name: str | None = None
    after: str | None = None

    @property
    def id(self) -> str:
        tail = f"::{self.after}+{self.name}" if self.after else f"::{self.name}" * bool(self.name)
        return f"{self.where}:{self.path or ''}{tail}"


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


def table_references(page: Path = CONFORMANCE) -> list[Ref]:
    """Every citation in the "test" cells of ``page``'s tables, in the forms described above."""
    found: list[Ref] = []
    lines = page.read_text().split("\n")
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
        last, previous = default, None
        for token in _TOKEN.finditer(cell.replace("`", "")):
            kind, value = token.lastgroup, token.group(token.lastgroup or 0)
            if kind in ("path", "file"):
                last, previous = value, None
                found.append(Ref(where, value))
            elif kind == "letter":
                assert value in letters, f"{where}: letter {value} is not defined in its section"
                last, previous = letters[value], None
                found.append(Ref(where, last))
            elif kind == "member":
                assert last is not None, f"{where}: ::{value} names no file"
                found.append(Ref(where, last, value))
                previous = value
            elif kind == "name":
                previous = value.replace("...", "*")
                found.append(Ref(where, None, previous))
            elif kind == "suffix":
                assert previous is not None, f"{where}: {value} continues no test name"
                found.append(Ref(where, None, value, after=previous))
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
    # the forms without backticks and the letters are read too
    assert any(ref.name == "test_airtime_model_250_kbit" and ref.path is None for ref in tables)
    assert any(ref.after and ref.name == "_after_the_permit_window" for ref in tables)
    assert any(ref.path == "test_messaging_board.py" and ref.name for ref in tables)


def test_a_cell_s_forms_are_read_and_a_helper_is_not_a_test(tmp_path: Path):
    page = tmp_path / "conformance.md"
    page.write_text(
        "## A section\n\nTests: `test_docs_references.py` (Q); the rest in\n"
        "`tests/docs/test_docs_snippets.py` unless named otherwise.\n\n"
        "| clause | what | status | test |\n|---|---|---|---|\n"
        "| X | y \\| z | done | Q `::names_in`, `::test_a_*`, ::test_b, "
        "test_cited_test_exists, _c, test_d_..._e, tests/docs/ |\n"
        "| X | y | done | `::test_default` |\n"
    )
    refs = {(r.path, r.name, r.after) for r in table_references(page)}
    assert refs == {
        ("test_docs_references.py", None, None),
        ("test_docs_references.py", "names_in", None),
        ("test_docs_references.py", "test_a_*", None),
        ("test_docs_references.py", "test_b", None),
        (None, "test_cited_test_exists", None),
        (None, "_c", "test_cited_test_exists"),
        (None, "test_d_*_e", None),
        ("tests/docs/", None, None),
        ("tests/docs/test_docs_snippets.py", "test_default", None),
    }
    assert "names_in" not in names_in(Path(__file__))
    assert "test_cited_test_exists" in names_in(Path(__file__))
    page.write_text(page.read_text().replace("| Q `", "| Z `"))
    with pytest.raises(AssertionError, match="letter Z is not defined"):
        table_references(page)


def _collected(name: str, files: list[Path] | tuple[Path, ...]) -> bool:
    return any(fnmatch.filter(names_in(f), name) for f in files)


def _continued(after: str, suffix: str, files: tuple[Path, ...]) -> bool:
    """``suffix`` ends a test whose name is ``after`` up to one of its underscores."""
    starts = [after[:i] for i in range(len(after)) if after[i] == "_"]
    return any(_collected(start + suffix, files) for start in starts if start)


@pytest.mark.parametrize("ref", REFS, ids=[ref.id for ref in REFS])
def test_cited_test_exists(ref: Ref):
    if ref.path is None:  # a bare test name: in some test file
        assert ref.name is not None
        if ref.after is not None:
            assert _continued(ref.after, ref.name, all_test_files()), (
                f"{ref.where}: no collected test continues {ref.after} with {ref.name}"
            )
        else:
            assert _collected(ref.name, all_test_files()), (
                f"{ref.where}: no test file has a collected test {ref.name}"
            )
        return
    files = files_of(ref.where, ref.path)
    if ref.name is None:  # a test file or directory holds a test; anything else exists
        files = [f for f in files if f.is_dir() or f.name.startswith("test_")]
        assert all(holds_a_test(f) for f in files), (
            f"{ref.where}: {ref.path} holds no test pytest collects"
        )
        return
    files = [f for f in files if f.is_file()]
    assert len(files) == 1, f"{ref.where}: {ref.path}::{ref.name} does not name one file"
    assert _collected(ref.name, files), f"{ref.where}: {ref.path} has no collected test {ref.name}"
