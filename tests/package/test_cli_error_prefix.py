"""Every command says its errors as ``error: ...`` (one line, non-zero status): ``zse capture``
and ``zse installcode`` said theirs as ``zse capture: ...`` and ``zse installcode: ...``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from zse.cli import main


def _said(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return result.exit_code, lines[0]


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        (["capture", "{missing}"], 2, "error: cannot read {missing}: No such file or directory"),
        (["capture", "{missing}", "--network-key", "zz"], 2, "error: --network-key #1: "),
        (["installcode", "1234"], 2, "error: CODE #1: "),
        (["installcode", "--csv", "{missing}"], 2, "error: cannot read {missing}: "),
    ],
)
def test_capture_and_installcode_say_error_as_the_others(
    tmp_path: Path, args: list[str], status: int, said: str
) -> None:
    missing = str(tmp_path / "missing")
    code, line = _said([arg.format(missing=missing) for arg in args])
    assert code == status
    assert line.startswith(said.format(missing=missing)), line


def test_the_other_commands_say_error_too(tmp_path: Path) -> None:
    """The prefix the two now share (``zse cert`` here)."""
    code, line = _said(["cert", "show", str(tmp_path / "missing")])
    assert code != 0
    assert line.startswith("error: "), line
