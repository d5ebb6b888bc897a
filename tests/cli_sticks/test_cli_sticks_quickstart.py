"""The quickstart's "same on a stick" script (docs/quickstart.md, the block marked
``<!-- stick -->``) runs as shown on bellows' real application, over the fake serial link to
the fake coordinator NCP, with credentials written by ``zse cert issue`` (issue 12 item 9: it
used top-level ``await``, lacked an import, never loaded credentials, and built a plain
bellows application, which opens joining with the well-known key)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bellows.uart
import pytest
import zigpy.serial
import zigpy.types as zt
from click.testing import CliRunner

from tests.cli_sticks.fake_stick import NCP_EUI64, StickNcp
from tests.cli_sticks.sticks_helpers import IHD, IHD_CODE
from tests.docs.test_docs_snippets import BLOCKS
from zse.cli import main as zse_cli
from zse.installcode import InstallCode
from zse.roles.esi import EnergyServiceInterface


@pytest.fixture
def no_serial_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """bellows runs its serial protocol on a thread of its own by default (``use_thread``);
    the fake serial link and the virtual clock live on the test's loop."""
    connect = bellows.uart.connect

    async def on_this_loop(config: Any, api: Any, use_thread: bool = True) -> Any:
        return await connect(config, api, use_thread=False)

    monkeypatch.setattr(bellows.uart, "connect", on_this_loop)


async def test_the_quickstart_stick_script_runs_on_bellows(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serial_link: Callable[..., None],
    no_serial_thread: None,
) -> None:
    (code,) = [code for name, marker, code in BLOCKS if marker == "stick"]
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args in (
        ["cert", "ca-new", "-o", "ca.json"],
        ["cert", "issue", "--ca", "ca.json", "--eui64", str(NCP_EUI64), "-o", "esi.json"],
    ):
        done = runner.invoke(zse_cli, args)
        assert done.exit_code == 0, done.output
    ncp = StickNcp(8)
    serial_link(zigpy.serial, "create_serial_connection", ncp)
    script: dict[str, Any] = {"__name__": "quickstart"}
    exec(compile(code, "quickstart.md (stick)", "exec"), script)
    assert (script["DISPLAY"], script["INSTALL_CODE"]) == (IHD, IHD_CODE)

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        await script["main"]()  # the admission window passes in virtual time

    # the SE endpoint was registered as the stick started, before its network was up
    descriptor = EnergyServiceInterface.descriptor()
    assert ncp.endpoints[9] == {
        "profile": 0x0109,
        "device": 0x0500,
        "in": descriptor.input_clusters,
        "out": descriptor.output_clusters,
    }
    # joining opened with the display's install-code key only: a plain bellows application
    # would have added the well-known key ZigBeeAlliance09 for every device
    assert set(ncp.transient_keys) == {
        (zt.EUI64.convert(IHD), InstallCode.parse(IHD_CODE).link_key)
    }
    assert ncp.permit_joining[-1] == 254
    assert "power the display on now" in printed.getvalue()
