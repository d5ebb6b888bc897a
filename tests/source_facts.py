"""What the structure tests read from a Python file's syntax tree, each file parsed once per
test process (a file whose text changed, as a test's own under ``tmp_path``, is parsed again).

Parsing all of zse takes about 3 s of CPU, and a dozen tests read it (the layers, the import
cycles, the radio libraries, each SE id, the SE vocabulary): each parsed it anew, 30 s in all.
The trees themselves are not kept (130 MB for zse), only the few facts the tests ask for."""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

#: How :mod:`ast` counts lines (``ast.get_source_segment``): only these end one.
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ImportFrom:
    """One ``from BASE import NAMES`` as written: ``level`` dots before ``base``."""

    level: int
    base: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Facts:
    """What one file says, whatever module it is taken to be.

    ``imported``: the names of its ``import`` statements and the first arguments written as
    strings of its ``import_module`` calls; ``froms``: its ``from`` statements; ``strings``:
    every string constant; ``hex_ints``: the integers it writes as hexadecimal literals;
    ``declared``: its module-level classes and names bound to a literal."""

    imported: frozenset[str]
    froms: tuple[ImportFrom, ...]
    strings: frozenset[str]
    hex_ints: frozenset[int]
    declared: frozenset[str]


def facts(path: Path) -> Facts:
    """``path``'s facts, parsed again only if its text changed since."""
    return _facts(str(path), path.read_text())


@functools.cache
def _facts(filename: str, source: str) -> Facts:
    tree = ast.parse(source, filename=filename)
    lines = _LINE_END.split(source)
    imported: set[str] = set()
    froms: list[ImportFrom] = []
    strings: set[str] = set()
    hex_ints: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            froms.append(ImportFrom(node.level, node.module or "", names))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.add(node.value)
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            # the literal as written (col_offset counts UTF-8 bytes, as ast's own reading)
            line = lines[node.lineno - 1].encode()
            if line[node.col_offset : node.col_offset + 2].lower() == b"0x":
                hex_ints.add(node.value)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            imported.add(node.args[0].value)
    return Facts(
        frozenset(imported), tuple(froms), frozenset(strings), frozenset(hex_ints), _declared(tree)
    )


def _declared(tree: ast.Module) -> frozenset[str]:
    """Classes and module-level names bound to a literal (number, string, set/tuple of them)."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            try:
                ast.literal_eval(node.value)
            except ValueError:
                continue  # bound to a name or a call: an alias or a derived value
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(names)
