"""Every test a page of docs/ cites exists: ``tests/...`` files and directories, and each
``::name`` (a continuation ``::name`` refers to the last file named before it on the line;
a bare ``test_x.py`` is looked up by file name under tests/; ``*`` globs must match)."""

from __future__ import annotations

import ast
import fnmatch
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TESTS = ROOT / "tests"
_SPAN = re.compile(r"`([^`]+)`")
_REF = re.compile(r"(?:(tests/[\w/.*-]*)|\b(test_[\w*]+\.py))?(?:::([\w*]+))?")


@cache
def names_in(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
    return frozenset(found)


@cache
def by_file_name(name: str) -> tuple[Path, ...]:
    return tuple(TESTS.rglob(name))


def references() -> list[tuple[str, str, str | None]]:
    """(page:line, path, test name or None) for every citation in the docs."""
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text()
        for span in _SPAN.finditer(text):
            content = re.sub(r"\s+", "", span.group(1))  # a span may wrap across lines
            if "tests/" not in content and "test_" not in content:
                continue
            line = text.count("\n", 0, span.start()) + 1
            where = f"{page.name}:{line}"
            last = None
            for match in _REF.finditer(content):
                path, bare, name = match.groups()
                if path or bare:
                    last = path or bare
                if (path or bare or name) and last is not None:
                    found.append((where, last, name))
    return found


REFS = references()


def test_the_conformance_inventory_cites_tests():
    assert sum(1 for where, _, name in REFS if where.startswith("conformance.md") and name) > 30


@pytest.mark.parametrize(("where", "path", "name"), REFS, ids=[f"{w}:{p}" for w, p, _ in REFS])
def test_cited_test_exists(where, path, name):
    if path.startswith("tests/"):
        files = sorted(ROOT.glob(path)) if "*" in path else [ROOT / path]
        assert files, f"{where}: {path} matches nothing"
        assert all(f.exists() for f in files), f"{where}: {path} does not exist"
        files = [f for f in files if f.is_file()]
    else:
        files = list(by_file_name(path))
        assert len(files) == 1, f"{where}: {path} matches {len(files)} files under tests/"
    if name is not None:
        assert len(files) == 1, f"{where}: {path}::{name} does not name one file"
        matches = fnmatch.filter(names_in(files[0]), name)
        assert matches, f"{where}: {path} has no test {name}"
