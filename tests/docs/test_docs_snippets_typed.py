"""Every fenced Python block of docs/*.md and README.md type-checks as a reader's own code.

zse ships ``py.typed``: a reader who runs ``mypy --strict`` on code copied from the docs must
hit no error that zse's types cause (a protocol that refuses zse's own endpoint, an ``Optional``
the page forgets). Each block is one module, checked by mypy with zse's sources imported, not
judged (``follow_imports = silent``: zse's own strictness is ``make types``'). Left out: the
reader's own annotations (``no-untyped-def``/``-call``: the pages keep ``async def main():``)
and libraries that ship no types (bellows).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.test_docs_snippets import BLOCKS, IDS

#: Its outcome cannot depend on the Python version: the main interpreter only (ADR 0025).
pytestmark = pytest.mark.main_interpreter

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
[mypy]
strict = True
python_version = 3.11
disable_error_code = no-untyped-def, no-untyped-call, import-untyped

[mypy-zse.*]
follow_imports = silent
"""
_ERROR = re.compile(r"^(\w+)\.py:(\d+): error: (.*)$", re.MULTILINE)


def module_name(block: str) -> str:
    """``quickstart.md#2`` -> ``quickstart_md_2``: one module per block."""
    return re.sub(r"\W", "_", block)


def mypy_errors(blocks: list[tuple[str, str]], where: Path) -> dict[str, list[str]]:
    """``{block: ["line: message", ...]}`` for every (name, code) block, by one mypy run."""
    names = {module_name(name): name for name, _ in blocks}
    for name, code in blocks:
        (where / f"{module_name(name)}.py").write_text(code + "\n")
    (where / "mypy.ini").write_text(CONFIG)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--no-incremental"]
        + [f"{module_name(name)}.py" for name, _ in blocks],
        cwd=where,
        env={"MYPYPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 2: mypy itself failed
    found: dict[str, list[str]] = {name: [] for _, name in names.items()}
    for module, line, message in _ERROR.findall(done.stdout):
        found[names[module]].append(f"{line}: {message}")
    return found


@pytest.fixture(scope="module")
def errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    return mypy_errors([(name, code) for name, _, code in BLOCKS], tmp_path_factory.mktemp("t"))


def test_the_check_catches_what_a_strict_reader_would_hit(tmp_path: Path) -> None:
    """The check itself: an Optional used as if set, a wrong argument type."""
    found = mypy_errors(
        [
            ("ok.md#1", "from zse.installcode import InstallCode\nInstallCode.parse('x').bits\n"),
            (
                "bad.md#1",
                "from zse.installcode import parse_label\nparse_label('x').install_code.bits\n",
            ),
            ("bad.md#2", "from zse.installcode import InstallCode\nInstallCode.parse(1)\n"),
        ],
        tmp_path,
    )
    assert found["ok.md#1"] == []
    assert ["union-attr" in e for e in found["bad.md#1"]] == [True]
    assert ["arg-type" in e for e in found["bad.md#2"]] == [True]


@pytest.mark.parametrize("name", IDS)
def test_snippet_type_checks_as_user_code(name: str, errors: dict[str, list[str]]) -> None:
    assert errors[name] == []
