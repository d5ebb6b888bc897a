"""A fake serial link for the radio transport tests: the far end is a scripted radio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import pytest


class FakeRadio(Protocol):
    host: Callable[[bytes], None]

    def bytes_from_host(self, data: bytes) -> None: ...


class FakeSerial(asyncio.Transport):
    """The serial port: bytes the host writes go to the radio; the radio's come back."""

    def __init__(self, radio: FakeRadio, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self._radio = radio
        self._protocol = protocol
        self._closing = False
        loop = asyncio.get_running_loop()
        radio.host = lambda data: loop.call_soon(protocol.data_received, data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        asyncio.get_running_loop().call_soon(self._radio.bytes_from_host, bytes(data))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)


@pytest.fixture
def serial_link(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, str, FakeRadio], None]:
    """``serial_link(module, "create_serial_connection", radio)``: opening any port through
    ``module.create_serial_connection`` connects to ``radio`` instead."""

    def attach(module: Any, name: str, radio: FakeRadio) -> None:
        async def open_port(
            loop: asyncio.AbstractEventLoop,
            protocol_factory: Callable[[], asyncio.Protocol],
            url: str,
            **kw: Any,
        ) -> tuple[asyncio.Transport, asyncio.Protocol]:
            protocol = protocol_factory()
            transport = FakeSerial(radio, protocol)
            protocol.connection_made(transport)
            return transport, protocol

        monkeypatch.setattr(module, name, open_port)

    return attach
