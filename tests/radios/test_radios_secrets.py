"""A radio library's error on a call that carried a key does not pass the key on (#12.23).

zigpy-znp's ``CommandNotRecognized`` (Z-Stack's answer to a command its firmware lacks) repeats
the whole request, ``LinkKeyData=...`` included; bellows' errors name the command only. zse
raises its own :class:`~zse.radios.LinkKeyInstallError` naming the exception's type, ``from
None``, so neither the message nor a logged traceback shows the key. The radios are zigpy-znp's
and bellows' real protocol objects over a fake serial port."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Callable

import pytest
import zigpy_znp.commands as c
import zigpy_znp.config as znp_conf
import zigpy_znp.types as zt
import zigpy_znp.uart
from zigpy.types import EUI64
from zigpy_znp.api import ZNP
from zigpy_znp.exceptions import CommandNotRecognized

from tests.radios.test_radios_ezsp_link_key import (
    ADD_OR_UPDATE,
    IMPORT_LINK_KEY,
    KeyTableNcp,
    connect_ezsp,
)
from tests.radios.test_radios_znp_link_key import SET_LINK_KEY, ZDO, KeyZStack
from tests.security.test_security_secrets import assert_hidden
from zse.radios import LinkKeyInstallError
from zse.radios import ezsp as radio_ezsp
from zse.radios import znp as radio_znp

__all__ = ["connect_ezsp"]  # the fixture, imported for this module's tests

KEY = bytes.fromhex("5EC12E7000112233445566778899AABB")
PARTNER = EUI64.convert("00:0d:6f:00:01:02:03:04")
RPC_ERROR_SRSP, INVALID_COMMAND_ID = 0x60, 0x02
EZSP_INVALID_COMMAND = 0x58


class UnrecognizingZStack(KeyZStack):
    """Z-Stack firmware without ``ZDO.SetLinkKey``: it answers the RPC error
    CommandNotRecognized (MT ``RPC_Error`` SRSP: error code, then the request's header)."""

    def _command(self, cmd0: int, cmd1: int, data: bytes) -> None:
        if (cmd0 & 0x1F, cmd1) == (ZDO, SET_LINK_KEY):
            self._send(RPC_ERROR_SRSP, 0x00, bytes([INVALID_COMMAND_ID, cmd0, cmd1]))
            return
        super()._command(cmd0, cmd1, data)


@pytest.fixture
async def unrecognizing(serial_link: Callable[..., None]) -> AsyncIterator[ZNP]:
    serial_link(zigpy_znp.uart, "create_serial_connection", UnrecognizingZStack())
    config = znp_conf.CONFIG_SCHEMA(
        {"device": {"path": "/dev/fake-zstack"}, "znp_config": {"skip_bootloader": False}}
    )
    api = ZNP(config)
    await api.connect()
    yield api
    api.close()


def shown(exc: BaseException) -> str:
    """All a user could see of ``exc``: its text, its repr and its logged traceback."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


async def test_zigpy_znp_quotes_the_key_in_its_error(unrecognizing: ZNP) -> None:
    """What zse guards against: the library's own message holds the key."""
    with pytest.raises(CommandNotRecognized) as info:
        await unrecognizing.request(
            c.ZDO.SetLinkKey.Req(NWK=zt.NWK(0x1A2B), IEEE=PARTNER, LinkKeyData=zt.KeyData(KEY))
        )
    with pytest.raises(AssertionError, match="secret shown"):
        assert_hidden(KEY, str(info.value))


async def test_a_z_stack_error_is_a_link_key_install_error_without_the_key(
    unrecognizing: ZNP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises((LinkKeyInstallError, CommandNotRecognized)) as info:
        await radio_znp.install_link_key(unrecognizing, PARTNER, 0x1A2B, KEY)
    assert_hidden(KEY, shown(info.value))
    assert isinstance(info.value, LinkKeyInstallError)
    message = str(info.value)
    assert "ZDO.SetLinkKey" in message
    assert str(PARTNER) in message
    assert "CommandNotRecognized" in message
    assert info.value.command == "ZDO.SetLinkKey"
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    caplog.clear()  # zigpy-znp's own DEBUG frames hold the key: the CLI holds them back
    logging.getLogger("zse.test").exception("install failed", exc_info=info.value)
    assert_hidden(KEY, caplog.text)


class InvalidCommandNcp(KeyTableNcp):
    """An NCP answering the key-writing command ``invalidCommand`` (EZSP 0x58)."""

    def _ezsp(self, frame: bytes) -> None:
        seq, frame_id, _params = self._parse(frame)
        if frame_id in (ADD_OR_UPDATE, IMPORT_LINK_KEY) and self._supports(frame_id):
            self._respond(seq, EZSP_INVALID_COMMAND, self._status(0x34))  # as FakeNcp does
            return
        super()._ezsp(frame)


@pytest.mark.parametrize("version", [8, 13, 14])
async def test_an_ezsp_error_is_a_link_key_install_error_without_the_key(
    connect_ezsp: Callable[..., object], version: int
) -> None:
    ezsp = await connect_ezsp(InvalidCommandNcp(version))  # type: ignore[misc]
    with pytest.raises(LinkKeyInstallError) as info:
        await radio_ezsp.install_link_key(ezsp, PARTNER, KEY)
    await ezsp.disconnect()
    command = "addOrUpdateKeyTableEntry" if version < 13 else "importLinkKey(index=0)"
    assert info.value.command == command
    assert f"EZSP {command} for {PARTNER} failed: InvalidCommandError" in str(info.value)
    assert info.value.__suppress_context__
    assert_hidden(KEY, shown(info.value))
