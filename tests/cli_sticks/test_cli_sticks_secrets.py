"""The ``zse esi`` shell keeps install codes out of its log and its usage errors (#12.23).

- A command that fails with an error the shell does not expect is logged at DEBUG; it logged
  the whole command line, install code and all (an audit saw it re-provisioning a device that
  is already METER_READY: ``IllegalTransition``). docs/sticks.md asks for ``-vv`` logs with a
  problem report. The log now names the command only.
- An install code typed with its spaces but without quotes spills into click's "Got unexpected
  extra arguments (...)", which repeated 32 of its 36 digits (the CRC gives the rest). That
  message is now said without the values, and any run of 8+ hex digits click repeats is hidden.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.roles.han_builder import EUIS, build, close
from tests.security.test_security_secrets import assert_hidden
from zse.cli.esi import Session
from zse.config import EsiConfig


async def session_over(tmp_path, out: list[str]):
    han = await build(tmp_path)
    clock = han.clock
    return han, Session(han.esi, EsiConfig(), out.append, clock)


async def test_a_failed_command_is_logged_without_its_install_code(tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="zse")
    out: list[str] = []
    han, session = await session_over(tmp_path, out)
    try:
        code = han.codes["ihd"]
        line = f'provision {EUIS["ihd"]} "{code.grouped()}" --label ihd'
        assert await session.execute(line)
        await han.add("ihd").start()
        await asyncio.sleep(30)  # the virtual clock: the display joins and runs CBKE
        await han.esi.settle()
        assert han.registry.get(EUIS["ihd"]).state.value == "meter ready"
        caplog.clear()
        assert not await session.execute(line)  # provision is allowed only from 'new'
        assert out[-1].startswith("error: IllegalTransition: ")
        assert_hidden(bytes(code), caplog.text)
        assert_hidden(bytes(code), "\n".join(out))
        failed = [r for r in caplog.records if "failed" in r.getMessage()]
        assert [r.getMessage() for r in failed] == ["command provision failed"]
        assert failed[0].exc_info is not None  # the error itself, for the report
    finally:
        await close(han)


@pytest.mark.parametrize(
    "spelling", ["grouped", "grouped colons", "plain", "as a command", "option value"]
)
async def test_click_usage_errors_do_not_repeat_an_install_code(tmp_path, spelling) -> None:
    out: list[str] = []
    han, session = await session_over(tmp_path, out)
    try:
        code = han.codes["ihd"]
        eui = EUIS["ihd"]
        line = {
            "grouped": f"provision {eui} {code.grouped()}",  # the quotes forgotten
            "grouped colons": f"provision {eui} {code.grouped(2, ':')} x",
            "plain": f"provision {eui} {code} --label x extra",
            "as a command": f"{code}",
            "option value": f"load-control --id {code} --device {eui}",
        }[spelling]
        assert not await session.execute(line)
        (said,) = out
        assert said.startswith("error: ")
        assert_hidden(bytes(code), said)
        if spelling != "as a command" and spelling != "option value":
            assert said == (
                "error: provision: too many arguments (a value with spaces, such as an "
                "install code, goes in quotes)"
            )
        assert await session.execute(f"provision {eui} '{code.grouped()}'")  # quoted: taken
    finally:
        await close(han)
