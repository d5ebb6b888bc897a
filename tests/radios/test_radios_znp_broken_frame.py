"""zigpy-znp logs a frame it cannot parse whole, at ERROR (``zigpy_znp.uart``: "Received an
exception while passing frame to API: TransportFrame(...)", with the parser's exception, which
quotes the frame again), and a frame it does not know (``zigpy_znp.api``: "Received an unknown
frame"). Holding its logger at INFO (``zse.cli._logging.quiet_secret_loggers``) lets those
through, and zse's :class:`~zse.cli._logging.KeyRedactor` only knew the keys of zigpy objects
among a record's arguments: a frame's raw bytes (a ``bytes`` repr, ``b'\\x5E\\xC1...'``) went
out as they were. A Z-Stack answering the host's read of the network key with one byte more
than zigpy-znp expects put the key in zse's log.

The radio library's frames are now printed without their bytes (``<N bytes hidden>``) on zse's
handlers. zigpy-znp's real ZNP / MT-UART objects, over the fake serial link to a scripted
Z-Stack (and bellows' EZSP over a scripted NCP); each test first shows the leak with the
CLI's redaction off."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import bellows.types as bt
import pytest
import zigpy_znp.commands as c
from zigpy_znp.api import ZNP
from zigpy_znp.types.nvids import OsalNvIds

from tests.interpan.test_interpan_ezsp_transport import FakeNcp, connect_ezsp
from tests.interpan.test_interpan_znp_transport import AREQ, SREQ, SRSP, SYS, FakeZStack
from tests.radios.test_radios_znp_link_key import connect_znp
from tests.security.test_security_secrets import assert_hidden, leaks
from zse.cli._logging import SECRET_LOGGERS, quiet_secret_loggers, redact_handlers

NETWORK_KEY = bytes.fromhex("5EC12E7000112233445566778899AABB")
OSAL_NV_READ = 0x08
#: ``nwkActiveKeyItems`` (Z-Stack ``nwkKeyDesc``): key sequence number, then the key.
ACTIVE_KEY = bytes([0x00]) + NETWORK_KEY
#: An AREQ no zigpy-znp command table has (ZDO subsystem, command 0xFE); an EZSP frame id no
#: bellows table has.
UNKNOWN_ZDO, UNKNOWN_EZSP = 0xFE, 0x7FFE

PASSTHROUGH = bt.EzspValueId.VALUE_MAC_PASSTHROUGH_FLAGS  # a value the fake NCP answers

__all__ = ["connect_ezsp"]  # the fixture, imported for this module's tests


class BrokenZStack(FakeZStack):
    """Z-Stack answering ``SYS.OSALNVRead`` with the active network key and one byte more
    than the item (status, length, value, then the extra byte): zigpy-znp's parser refuses
    the frame for its trailing data, and the answer never reaches the request."""

    def _command(self, cmd0: int, cmd1: int, data: bytes) -> None:
        if (cmd0, cmd1) == (SREQ | SYS, OSAL_NV_READ):
            value = b"\x00" + bytes([len(ACTIVE_KEY)]) + ACTIVE_KEY + b"\x00"
            self._send(SRSP | SYS, OSAL_NV_READ, value)
            return
        super()._command(cmd0, cmd1, data)

    def unknown(self) -> None:
        """A callback zigpy-znp has no command for, carrying the key."""
        self._send(AREQ | 0x05, UNKNOWN_ZDO, NETWORK_KEY)


@pytest.fixture
async def zstack(serial_link: Callable[..., None]) -> AsyncIterator[tuple[ZNP, BrokenZStack]]:
    radio = BrokenZStack()
    api = await connect_znp(serial_link, radio)
    yield api, radio
    api.close()


@pytest.fixture
def printed() -> Iterator[Callable[..., io.StringIO]]:
    """``printed(redact, library)``: what a handler on the ``library`` logger (``zigpy_znp``)
    prints from now on, set
    up as the command line sets its handlers (the secret loggers held at INFO; the handler's
    formatter a KeyRedactor unless ``redact`` is False, as with ZSE_LOG_SECRETS=1)."""
    saved = {name: logging.getLogger(name).level for name in SECRET_LOGGERS}
    attached: list[tuple[logging.Logger, logging.Handler]] = []

    def attach(redact: bool, library: str = "zigpy_znp") -> io.StringIO:
        for logger, handler in attached:
            logger.removeHandler(handler)
        logger = logging.getLogger(library)
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        redact_handlers([handler], reveal=not redact)
        quiet_secret_loggers(reveal=False)
        logger.addHandler(handler)
        attached.append((logger, handler))
        return stream

    yield attach
    for logger, handler in attached:
        logger.removeHandler(handler)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


async def read_network_key(api: ZNP) -> None:
    """The host reads the active network key; the broken answer never comes."""
    with pytest.raises(TimeoutError):
        await api.request(
            c.SYS.OSALNVRead.Req(Id=OsalNvIds.NWK_ACTIVE_KEY_INFO, Offset=0), timeout=1
        )


async def test_a_broken_frame_holding_the_network_key_is_logged_without_it(
    zstack: tuple[ZNP, BrokenZStack], printed: Callable[..., io.StringIO]
) -> None:
    api, _radio = zstack
    shown = printed(False)
    await read_network_key(api)
    assert "ERROR zigpy_znp.uart: Received an exception while passing frame" in shown.getvalue()
    assert leaks(NETWORK_KEY, shown.getvalue())  # the leak, when the redaction is off

    text = printed(True)
    await read_network_key(api)
    out = text.getvalue()
    assert_hidden(NETWORK_KEY, out)
    assert "ERROR zigpy_znp.uart: Received an exception while passing frame to API: " in out
    assert "data=<20 bytes hidden>" in out  # status, length, key sequence, key, the extra byte
    assert "Traceback" in out  # the parser's error is still told, its bytes hidden too
    assert "contains trailing data after parsing: <1 bytes hidden>" in out


async def test_an_unknown_frame_is_logged_without_its_bytes(
    zstack: tuple[ZNP, BrokenZStack], printed: Callable[..., io.StringIO]
) -> None:
    api, radio = zstack
    shown = printed(False)
    radio.unknown()
    await api.request(c.SYS.Ping.Req())  # the frame before it has been read by then
    assert "ERROR zigpy_znp.api: Received an unknown frame" in shown.getvalue()
    assert leaks(NETWORK_KEY, shown.getvalue())

    text = printed(True)
    radio.unknown()
    await api.request(c.SYS.Ping.Req())
    out = text.getvalue()
    assert_hidden(NETWORK_KEY, out)
    assert "ERROR zigpy_znp.api: Received an unknown frame: " in out
    assert "data=<16 bytes hidden>" in out


async def test_bellows_frames_are_printed_without_their_bytes_too(
    connect_ezsp: Callable[[FakeNcp], Any], printed: Callable[..., io.StringIO]
) -> None:
    """bellows warns of a frame id it has no command for with the frame's bytes
    (``binascii.hexlify``): "Unknown application frame 0x.... received: b'...' (b'...')"."""
    ncp = FakeNcp(8)
    ezsp = await connect_ezsp(ncp)
    try:
        shown = printed(False, "bellows")
        ncp.callback(UNKNOWN_EZSP, NETWORK_KEY)
        await ezsp.getValue(valueId=PASSTHROUGH)  # the frame before it has been read by then
        assert "WARNING bellows.ezsp.protocol: Unknown application frame" in shown.getvalue()
        assert leaks(NETWORK_KEY, shown.getvalue())

        text = printed(True, "bellows")
        ncp.callback(UNKNOWN_EZSP, NETWORK_KEY)
        await ezsp.getValue(valueId=PASSTHROUGH)
    finally:
        await ezsp.disconnect()
    out = text.getvalue()
    assert_hidden(NETWORK_KEY, out)
    assert (
        f"Unknown application frame 0x{UNKNOWN_EZSP:04X} received: <32 bytes hidden> "
        "(<42 bytes hidden>)" in out
    )
