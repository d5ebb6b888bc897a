"""``--app-factory tests.cli_sticks.click_factory:factory``: bellows' real application over
the fake serial link to a fresh fake coordinator NCP (for tests that go through click)."""

from __future__ import annotations

import dataclasses
from typing import Any

import zigpy.serial

from tests.cli_sticks.fake_stick import StickNcp
from tests.interpan.conftest import FakeSerial
from zse.cli._radio import RadioOptions, open_application


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
