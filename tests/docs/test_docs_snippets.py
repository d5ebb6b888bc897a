"""Every fenced Python block in docs/*.md and README.md is a whole program that runs as shown.

Each block is checked before it runs: it must compile as a module (so no top-level ``await``
or ``async for``: a script awaits inside ``async def main()`` and calls ``asyncio.run``), and
every name it uses must be defined in it, imported by it or a builtin (so no missing import,
no ``app`` or ``clock`` that the reader is left to guess). Then it runs, as ``__main__``,
with its working directory in a temporary directory; a ``print(...)  # output`` comment is
output the page promises and is checked. Blocks that need a network use the simulator and
``zse.sim.run`` (virtual time), so nothing here waits in real time.

A block marked ``<!-- stick -->`` needs a USB stick: here it runs as an imported module
(its imports and definitions, not ``if __name__ == "__main__":``), and
tests/cli_sticks/test_cli_sticks_quickstart.py runs its ``main()`` against bellows and the fake
coordinator NCP. ``<!-- run -->`` (kept on older pages) marks a block that runs, as all do.

A block that defines a function runs it too, or is named in :data:`SKETCHES` with what it
leaves to the reader: there it runs only as far as its imports and definitions, so a new one is
a choice, not a block that seems checked and is not.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import re
import symtable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
MARKERS = ("run", "stick")
_BLOCK = re.compile(r"(?:<!-- (\w+) -->\s*\n)?```python\n(.*?)\n```", re.DOTALL)
#: ``print(...)  # what it prints``: the comment is the output the page promises ("..." elides).
_PROMISE = re.compile(r"^\s*print\(.*\)\s+#\s*(.+?)\s*$", re.MULTILINE)

#: Blocks that define a function they never call (a tour of an API on objects built elsewhere
#: on the page or by the reader), and what they need to run.
SKETCHES = {
    "concepts.md#2": "a running MessagingServer; its async for never ends",
    "drlc.md#1": "an ESI's SE endpoint and a joined device's endpoint, keys and an event",
    "interpan.md#2": "inter-PAN services on both sides and a price server",
    "messaging.md#1": "an ESI's SE endpoint, a store and three joined devices",
    "messaging.md#2": "a joined device's endpoint and a store",
    "simulator.md#2": "a pytest conftest hook: pytest-asyncio calls it",
    "simulator.md#4": "the air of a running simulation",
    "simulator.md#5": "a joined ESI and display",
    "simulator.md#6": "four devices joined near the ESI",
    "simulator.md#7": "the air with an ESI and two joined devices",
    "smart-energy.md#2": "a Load Control Event payload and fields",
    "smart-energy.md#5": "both sides' endpoints, credentials and stores",
    "smart-energy.md#7": "a zigpy application, an SE endpoint and the ESI's credentials",
    "smart-energy.md#8": "a USB stick (bellows)",
}


def python_blocks() -> list[tuple[str, str | None, str]]:
    """(page#n, marker, code) for every ```python block."""
    found = []
    for page in PAGES:
        text = page.read_text()
        blocks = _BLOCK.findall(text)
        # A marker must be followed by a python block: a typo would silently change a check.
        for marker in MARKERS:
            assert text.count(f"<!-- {marker} -->") == sum(m == marker for m, _ in blocks), (
                f"{page.name}: a <!-- {marker} --> without a python block"
            )
        for i, (marker, code) in enumerate(blocks):
            found.append((f"{page.name}#{i + 1}", marker or None, code))
    return found


BLOCKS = python_blocks()
IDS = [name for name, _, _ in BLOCKS]


def undefined_names(code: str, name: str) -> set[str]:
    """Names the block uses without defining, importing or getting them from builtins."""
    module = symtable.symtable(code, name, "exec")
    defined = {
        s.get_name()
        for s in module.get_symbols()
        if s.is_assigned() or s.is_imported() or s.is_namespace() or s.is_parameter()
    }
    known = defined | set(dir(builtins))
    missing: set[str] = set()

    def walk(table: symtable.SymbolTable) -> None:
        for symbol in table.get_symbols():
            at_module = table is module or symbol.is_global()
            if symbol.is_referenced() and at_module and symbol.get_name() not in known:
                missing.add(symbol.get_name())
        for child in table.get_children():
            walk(child)

    walk(module)
    return missing


def test_every_page_with_code_is_checked():
    pages = {name.split("#")[0] for name in IDS}
    assert {"quickstart.md", "concepts.md", "README.md", "smart-energy.md"} <= pages
    assert [name for name, marker, _ in BLOCKS if marker == "stick"] == ["quickstart.md#2"]


def test_the_checks_catch_what_a_reader_would_hit():
    """The checks themselves, on the faults the old stick snippet had (issue 12 item 9)."""
    with pytest.raises(SyntaxError, match="'await' outside function"):
        compile("app = await ControllerApplication.new({})\n", "t", "exec")
    assert undefined_names("app = ControllerApplication.new({})\n", "t") == {
        "ControllerApplication"
    }
    assert undefined_names(
        "import asyncio\nasync def main():\n    await esi.start()\n    print([x for x in y])\n"
        "asyncio.run(main())\n",
        "t",
    ) == {"esi", "y"}
    assert undefined_names("class A:\n    b = c\n", "t") == {"c"}
    assert (
        undefined_names(
            "from a import b\ndef f(x, *, k=1):\n    y = x + k\n    return lambda: y + b\n", "t"
        )
        == set()
    )


def uncalled_functions(code: str) -> list[str]:
    """The functions ``code`` defines at its top level and never calls by name."""
    tree = ast.parse(code)
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name not in called
    ]


def test_a_block_runs_the_functions_it_defines_or_is_a_named_sketch():
    assert uncalled_functions("async def main():\n    pass\nrun(main())\n") == []
    assert uncalled_functions("def f(x):\n    return x\nasync def g():\n    f(1)\n") == ["g"]
    sketches = {name for name, _, code in BLOCKS if uncalled_functions(code)}
    assert sketches == set(SKETCHES), "run what the block defines, or say in SKETCHES why not"


@pytest.mark.parametrize(("name", "marker", "code"), BLOCKS, ids=IDS)
def test_snippet_compiles_and_defines_every_name(name, marker, code):
    compile(code, name, "exec")  # SyntaxError on a top-level await
    assert undefined_names(code, name) == set(), f"{name} uses names it never defines"


@pytest.mark.parametrize(("name", "marker", "code"), BLOCKS, ids=IDS)
def test_snippet_runs(name, marker, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a snippet writes (han.pcap, a store) lands here
    out = io.StringIO()
    module = "snippet" if marker == "stick" else "__main__"
    with contextlib.redirect_stdout(out):
        exec(compile(code, name, "exec"), {"__name__": module})
    printed = out.getvalue()
    for promised in _PROMISE.findall(code):
        if marker == "stick":
            break  # its main() prints; it runs in tests/cli_sticks
        pattern = ".*".join(re.escape(part.strip()) for part in promised.split("..."))
        assert re.search(pattern, printed), f"{name}: the page says {promised!r}, not {printed!r}"
