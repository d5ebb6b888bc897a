"""HAN-stick tests: bellows over the fake serial link to a fake NCP on the simulated air, all
on the virtual-time loop. ``serial_link`` here also gives the NCP its end of the port, so a
test can pull the stick out (``ncp.unplug()``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.interpan.conftest import FakeRadio, FakeSerial
from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories", "serial_link"]


@pytest.fixture
def serial_link(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, str, FakeRadio], None]:
    """As tests/interpan/conftest.py's, and the radio learns its port (``radio.port``)."""

    def attach(module: Any, name: str, radio: Any) -> None:
        async def open_port(
            loop: asyncio.AbstractEventLoop,
            protocol_factory: Callable[[], asyncio.Protocol],
            url: str,
            **kw: Any,
        ) -> tuple[asyncio.Transport, asyncio.Protocol]:
            protocol = protocol_factory()
            transport = FakeSerial(radio, protocol)
            radio.port = transport
            protocol.connection_made(transport)
            return transport, protocol

        monkeypatch.setattr(module, name, open_port)

    return attach
