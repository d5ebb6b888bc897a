"""Ctrl-C (SIGINT) during ``zse han join`` ended it with status 0 and nothing said, as if the
stick had joined: an interrupted join now exits 130 (128 + SIGINT, as ``zse capture`` does)
with one line. ``zse han watch`` keeps status 0: Ctrl-C is how a watch ends
(tests/cli_sim/test_cli_walk2.py). The signal comes while the command opens a stick that
never answers (:func:`tests.cli_sticks.sticks_helpers.han_signalled`)."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.cli_sticks.sticks_helpers import han_signalled


def test_ctrl_c_while_joining_exits_130_with_one_line(tmp_path: Path) -> None:
    status, stdout, stderr = han_signalled(
        "join", signal.SIGINT, tmp_path, "--state", str(tmp_path / "han.db")
    )
    assert (status, stdout) == (130, ""), stderr
    assert stderr.splitlines() == ["error: interrupted: the join was not finished"]
