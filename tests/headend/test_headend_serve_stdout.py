"""``zse headend serve`` with a standard output it cannot write (``/dev/full``) said
``error: OutputError: cannot write standard output: ...``, exit status 1: it took the failed
write of its own startup lines for a fault of the headend. It is now what every command says,
``error: cannot write standard output: ...``, exit status 2, in each way of serving meters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.headend.test_headend_port_in_use import EACH_WAY, _free_port
from tests.zse_cli import run_zse
from zse.headend.pki import init_directory


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@EACH_WAY
def test_a_full_standard_output_is_said_as_by_every_command(
    tmp_path: Path, meters: list[str]
) -> None:
    init_directory(tmp_path / "pki", port=0)
    (tmp_path / "esi.toml").write_text("[esi]\npermit_seconds = 60\n")
    config = str(tmp_path / "pki" / "headend.toml")
    argv = ["serve", "--config", config, "--port", str(_free_port())]
    argv += [a.replace("{tmp}", str(tmp_path)) for a in meters]
    with open("/dev/full", "w") as full:
        done = run_zse("headend", *argv, stdout=full.fileno())
    assert "Traceback" not in done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert said == ["error: cannot write standard output: No space left on device"], done.stderr
    assert done.returncode == 2, done.stderr
