"""``--app-factory tests.cli_sticks.click_factory:factory``: bellows' real application over
the fake serial link to a fresh fake coordinator NCP (for tests that go through click);
``...:record``: what the command would open, and the log level it set."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import zigpy.serial

from tests.cli_sticks.fake_stick import StickNcp
from tests.interpan.conftest import FakeSerial
from zse.cli._radio import RadioOptions, RadioStartError, open_application


async def factory(options: RadioOptions) -> Any:
    ncp = StickNcp(8)

    async def open_port(loop: Any, protocol_factory: Any, url: str, **kw: Any) -> Any:
        protocol = protocol_factory()
        transport = FakeSerial(ncp, protocol)
        protocol.connection_made(transport)
        return transport, protocol

    original = zigpy.serial.create_serial_connection
    zigpy.serial.create_serial_connection = open_port
    try:
        quiet = dataclasses.replace(options, library_config={"use_thread": False})
        return await open_application(quiet)
    finally:
        zigpy.serial.create_serial_connection = original


#: What :func:`record` was given: the options and the root logger's level at the time.
RECORDED: list[tuple[RadioOptions, int]] = []


async def record(options: RadioOptions) -> Any:
    """``--app-factory tests.cli_sticks.click_factory:record``: note what the command would
    open, then fail as a radio that does not start (status 1)."""
    RECORDED.append((options, logging.getLogger().getEffectiveLevel()))
    raise RadioStartError("recorded")
