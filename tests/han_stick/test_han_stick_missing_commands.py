"""An NCP whose firmware lacks an EZSP CBKE command answers it ``invalidCommand`` (EZSP 0x58,
reason ``EZSP_ERROR_INVALID_FRAME_ID``); bellows raises that as its ``InvalidCommandError``.
It escaped zse's CBKE calls (``generateCbkeKeys[283k1]``, ``calculateSmacs[283k1]``,
``clearTemporaryDataMaybeStoreLinkKey[283k1]``, ``dsaSign``) as a bellows exception: ``zse han``
died with its traceback. zse now raises :class:`zse.radios.ezsp.MissingCommand` (an
:class:`~zse.radios.ezsp.UnsupportedFirmware`), saying what the stick's firmware lacks.

The NCP is the HAN tests' fake (bellows' real EZSP and ASH code over the fake serial link),
its firmware built without the commands named (``HanNcp.lacks``)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bellows.types as bt
import pytest
from bellows.exception import InvalidCommandError

from tests.han_stick.stick_builder import STICK, close_stick, meter_and_stick, open_ihd
from tests.han_stick.test_han_stick_cli import options
from tests.roles.han_builder import CA
from tests.roles.test_roles_load_control_applied import lce
from zse.cbke import SUITE1, SUITE2
from zse.cbke.service import eui64_bytes
from zse.cli.han import run_han
from zse.radios.ezsp import CommandRefused, MissingCommand, UnsupportedFirmware


async def held_stick(
    tmp_path: Path, serial_link: Callable[..., None], suite: int, version: int
) -> Any:
    held = CA.issue(eui64_bytes(STICK), {1: SUITE1, 2: SUITE2}[suite], rng=random.Random(7))
    return await meter_and_stick(
        tmp_path, serial_link, tokens=[held], suites=(SUITE1, SUITE2), version=version
    )


@pytest.mark.parametrize(
    ("command", "suite", "version", "what"),
    [
        ("generateCbkeKeys283k1", 2, 8, "CBKE with suite 2 (sect283k1)"),
        ("calculateSmacs283k1", 2, 13, "CBKE with suite 2 (sect283k1)"),
        ("clearTemporaryDataMaybeStoreLinkKey283k1", 2, 18, "CBKE with suite 2 (sect283k1)"),
        ("generateCbkeKeys", 1, 18, "CBKE with suite 1 (sect163k1)"),
        ("calculateSmacs", 1, 8, "CBKE with suite 1 (sect163k1)"),
    ],
)
async def test_a_cbke_command_the_firmware_lacks_is_zse_s_error(
    tmp_path: Path,
    serial_link: Callable[..., None],
    command: str,
    suite: int,
    version: int,
    what: str,
) -> None:
    sh = await held_stick(tmp_path, serial_link, suite, version)
    sh.ncp.lacks = {command}
    ihd = await open_ihd(sh)
    try:
        with pytest.raises((MissingCommand, InvalidCommandError)) as info:
            await ihd.start()
        assert f"invalid {command}" in sh.ncp.cbke_log  # the firmware was asked, and refused
        assert isinstance(info.value, MissingCommand)
        assert isinstance(info.value, UnsupportedFirmware)
        assert info.value.command == command
        assert str(info.value) == (
            f"EZSP stick /dev/fake-ncp: its firmware does not have the EZSP command {command}, "
            f"which {what} needs (the stick answered invalidCommand)"
        )
    finally:
        await close_stick(sh)


async def test_zse_han_says_what_the_stick_lacks_in_one_line(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    """``zse han join``: one ``error:`` line naming the command, not bellows' traceback nor
    "check the USB link" (the link is fine: the firmware is not)."""
    sh = await held_stick(tmp_path, serial_link, 2, 13)
    sh.ncp.lacks = {"generateCbkeKeys283k1"}
    errors: list[str] = []
    try:
        status = await run_han(options(tmp_path, sh), watch=False, err=errors.append)
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close_stick(sh)
    assert (status, errors) == (
        1,
        [
            "error: EZSP stick /dev/fake-ncp: its firmware does not have the EZSP command "
            "generateCbkeKeys283k1, which CBKE with suite 2 (sect283k1) needs (the stick "
            "answered invalidCommand)"
        ],
    )


async def test_a_signing_command_the_firmware_lacks_is_logged_as_zse_s_error(
    tmp_path: Path, serial_link: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    """``dsaSign`` refused: the Report Event Status waits (as for any signing failure), and
    the warning says what the firmware lacks."""
    sh = await held_stick(tmp_path, serial_link, 1, 13)
    try:
        await (await open_ihd(sh)).start()
        await sh.han.esi.settle()
        sh.ncp.lacks = {"dsaSign"}
        await sh.han.esi.send_load_control(lce(80, 0x0FFF), device=str(STICK))
        await asyncio.sleep(5)
        assert "invalid dsaSign" in sh.ncp.cbke_log
        warned = [r.getMessage() for r in caplog.records if "Report Event Status" in r.msg]
        assert warned
        assert warned[0] == (
            "Report Event Status not sent (EZSP stick /dev/fake-ncp: its firmware does not have "
            "the EZSP command dsaSign, which signing with the stick's own suite-1 key needs (the "
            "stick answered invalidCommand)); will retry"
        )
    finally:
        await close_stick(sh)


@pytest.mark.parametrize(
    ("version", "reason", "name"),
    [
        (8, int(bt.EzspStatus.ERROR_INVALID_CALL), "ERROR_INVALID_CALL"),
        (18, int(bt.sl_Status.INVALID_STATE), "INVALID_STATE"),
    ],
)
async def test_an_invalid_command_for_another_reason_is_not_a_missing_command(
    tmp_path: Path, serial_link: Callable[..., None], version: int, reason: int, name: str
) -> None:
    """``invalidCommand`` also answers a frame the NCP read as truncated or too long, or a
    call out of place: the command exists, so zse does not say the firmware lacks it; it
    says the stick refused it, and why (:class:`CommandRefused`, not
    :class:`UnsupportedFirmware`)."""
    sh = await held_stick(tmp_path, serial_link, 1, version)
    sh.ncp.refuses = {"generateCbkeKeys": reason}
    ihd = await open_ihd(sh)
    try:
        with pytest.raises((CommandRefused, InvalidCommandError)) as info:
            await ihd.start()
        assert isinstance(info.value, CommandRefused)
        assert not isinstance(info.value, UnsupportedFirmware)
        assert (info.value.command, info.value.reason) == ("generateCbkeKeys", name)
        assert str(info.value) == (
            "EZSP stick /dev/fake-ncp: the stick refused the EZSP command generateCbkeKeys, "
            f"which CBKE with suite 1 (sect163k1) needs (invalidCommand: {name})"
        )
    finally:
        await close_stick(sh)
