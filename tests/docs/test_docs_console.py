"""A ```console block marked ``<!-- shell -->`` in docs/*.md or README.md runs as shown.

Each ``$ `` line is a command, run by ``bash -c`` in a temporary directory with ``zse`` the
repository's (``python -m zse``); the lines after it, up to the next ``$ ``, are what it prints
(standard output and standard error together), line for line. ``...`` in a line stands for
any text (``(...)``: a message shortened on the page). ``$ echo $?`` prints the status of the
command before it. A block not marked is not run: it needs a stick, a network, a file the
page does not show, or a Ctrl-C; :data:`NOT_RUN` lists each, so a new block is a choice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.zse_cli import TIMEOUT

#: Its outcome cannot depend on the Python version: the main interpreter only (ADR 0025).
pytestmark = pytest.mark.main_interpreter

ROOT = Path(__file__).resolve().parents[2]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
_BLOCK = re.compile(r"(<!-- shell -->\s*\n)?```console\n(.*?)\n```", re.DOTALL)

#: The console blocks not run (page#n among the page's console blocks), and why.
NOT_RUN = {
    "README.md#1": "its second command reads a devices.csv the page does not show",
    "cbke.md#1": "a certificate in hex shortened to 0302...",
    "han-device.md#1": "a USB stick",
    "headend.md#1": "a server that runs until stopped",
    "headend.md#2": "curl against a running server",
    "headend.md#3": "Mosquitto and PostgreSQL",
    "headend.md#4": "curl against a running server",
    "installcode.md#2": "a devices.csv the page does not show, and zse esi on a stick",
    "installcode.md#4": "Ctrl-C",
    "installcode.md#5": "Ctrl-C",
    "installcode.md#6": "a worker killed",
}


def console_blocks() -> list[tuple[str, bool, str]]:
    """(page#n, marked, text) for every ```console block."""
    found = []
    for page in PAGES:
        text = page.read_text()
        blocks = _BLOCK.findall(text)
        assert text.count("<!-- shell -->") == sum(bool(m) for m, _ in blocks), (
            f"{page.name}: a <!-- shell --> without a console block"
        )
        found += [(f"{page.name}#{i}", bool(m), b) for i, (m, b) in enumerate(blocks, 1)]
    return found


BLOCKS = console_blocks()
RUN = [(name, text) for name, marked, text in BLOCKS if marked]


def steps(text: str) -> list[tuple[str, list[str]]]:
    """(command, the lines it prints) for each ``$ `` line of a block."""
    found: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            assert found, f"output before any command: {line!r}"
            found[-1][1].append(line)
    return found


def matches(promised: str, printed: str) -> bool:
    """Whether ``printed`` is the line ``promised`` ("..." any text)."""
    pattern = ".*".join(re.escape(part) for part in promised.split("..."))
    return re.fullmatch(pattern, printed) is not None


def run_block(text: str, where: Path) -> list[str]:
    """Run the block's commands in ``where``; what each printed that the page does not say."""
    shim = where / "bin"
    shim.mkdir()
    (shim / "zse").write_text(f'#!/bin/sh\nexec {sys.executable} -m zse "$@"\n')
    (shim / "zse").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    wrong, status = [], 0
    for command, promised in steps(text):
        if command.split("#")[0].strip() == "echo $?":
            printed = [str(status)]
        else:
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=where,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
            printed, status = done.stdout.splitlines(), done.returncode
        if len(printed) != len(promised) or not all(map(matches, promised, printed)):
            wrong.append(f"$ {command}: the page says {promised!r}, it printed {printed!r}")
    return wrong


def test_every_console_block_is_run_or_says_why_not() -> None:
    names = {name for name, _, _ in BLOCKS}
    assert set(NOT_RUN) <= names, f"NOT_RUN names no block: {sorted(set(NOT_RUN) - names)}"
    unmarked = {name for name, marked, _ in BLOCKS if not marked}
    assert unmarked == set(NOT_RUN), "mark it <!-- shell --> or say in NOT_RUN why it is not run"
    assert {name for name, _ in RUN} >= {"installcode.md#1", "installcode.md#8"}


def test_the_check_catches_a_page_that_is_wrong(tmp_path: Path) -> None:
    """The check itself: a wrong line, a missing one and a wrong status are each reported."""
    page = (
        "$ zse installcode 83FED3407A932B71\n"
        "error: CODE #1: install code CRC mismatch: the last 4 digits ... (...)\n"
        "$ echo $?\n"
        "2\n"
        "$ zse installcode 83FED3407A932B70\n"
        "install code ...\n"
        "83FED3407A932B70   48  2B70  CD4FA064773F46941EC986C09963D1A8\n"
        "$ echo $?\n"
        "1\n"
    )
    wrong = run_block(page, tmp_path)
    assert [w.split(":")[0] for w in wrong] == ["$ zse installcode 83FED3407A932B70", "$ echo $?"]


@pytest.mark.parametrize(("name", "text"), RUN, ids=[name for name, _ in RUN])
def test_console_block_prints_what_the_page_says(name: str, text: str, tmp_path: Path) -> None:
    assert run_block(text, tmp_path) == []
