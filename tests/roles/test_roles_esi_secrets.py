"""Opening joining with a device's install-code key: a radio error does not pass the key on
(#12.23). zigpy-znp's ``permit_with_link_key`` sends ``AppConfig.BDBAddInstallCode`` with the
key; a Z-Stack without the BDB commands (a Z-Stack 1.2 build) answers CommandNotRecognized, and
zigpy-znp's message repeats the request. The ESI raises (or, for a failure after it returned,
logs) a :class:`~zse.radios.LinkKeyInstallError` naming the exception's type only."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import zigpy.config
import zigpy.types as t
import zigpy_znp.config as znp_conf
import zigpy_znp.uart
from zigpy_znp.api import ZNP
from zigpy_znp.exceptions import CommandNotRecognized
from zigpy_znp.zigbee.application import ControllerApplication as ZnpApplication

from tests.interpan.conftest import serial_link
from tests.radios.test_radios_znp_link_key import KeyZStack
from tests.roles.han_builder import EUIS, build, close
from tests.security.test_security_secrets import assert_hidden
from zse.radios import LinkKeyInstallError

__all__ = ["serial_link"]  # the fixture, imported for this module's tests

APP_CNF, RPC_ERROR_SRSP, INVALID_SUBSYSTEM = 0x0F, 0x60, 0x01


class NoBdbZStack(KeyZStack):
    """Z-Stack firmware without the APP_CNF (BDB) commands: RPC error CommandNotRecognized."""

    def _command(self, cmd0: int, cmd1: int, data: bytes) -> None:
        if cmd0 & 0x1F == APP_CNF:
            self._send(RPC_ERROR_SRSP, 0x00, bytes([INVALID_SUBSYSTEM, cmd0, cmd1]))
            return
        super()._command(cmd0, cmd1, data)


@pytest.fixture
async def znp_permit(serial_link: Callable[..., None]) -> AsyncIterator[Any]:
    """zigpy-znp's own ``permit_with_link_key``, on a fake Z-Stack without BDB commands."""
    serial_link(zigpy_znp.uart, "create_serial_connection", NoBdbZStack())
    config = znp_conf.CONFIG_SCHEMA(
        {"device": {"path": "/dev/fake-zstack"}, "znp_config": {"skip_bootloader": False}}
    )
    api = ZNP(config)
    await api.connect()
    app = ZnpApplication({zigpy.config.CONF_DEVICE: {zigpy.config.CONF_DEVICE_PATH: "/dev/x"}})
    app._znp = api  # what zigpy-znp's connect() sets on a running application
    yield app.permit_with_link_key
    api.close()


def shown(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


async def test_a_refused_permit_names_the_failure_not_the_key(tmp_path, znp_permit, caplog):
    caplog.set_level(logging.DEBUG, logger="zse")
    han = await build(tmp_path)
    try:
        key = han.codes["ihd"].link_key
        with pytest.raises(CommandNotRecognized) as raw:  # the library's message quotes the key
            await znp_permit(han.app.state.node_info.ieee, t.KeyData(key), 60)
        with pytest.raises(AssertionError, match="secret shown"):
            assert_hidden(key, str(raw.value))

        han.esi.app.permit_with_link_key = znp_permit
        with pytest.raises((LinkKeyInstallError, CommandNotRecognized)) as info:
            await han.esi.provision(EUIS["ihd"])
        assert_hidden(key, shown(info.value))
        assert isinstance(info.value, LinkKeyInstallError)
        message = str(info.value)
        assert f"opening joining for {EUIS['ihd']} with its install-code key failed" in message
        assert "CommandNotRecognized" in message
        assert info.value.command == "permit_with_link_key"
        assert info.value.__suppress_context__
        assert_hidden(key, caplog.text)
    finally:
        await close(han)


async def test_a_late_permit_failure_is_logged_without_the_key(tmp_path, znp_permit, caplog):
    """A radio that holds the call while joining is open fails after provision() returned:
    the ESI logs the failure."""
    caplog.set_level(logging.DEBUG, logger="zse")
    han = await build(tmp_path)
    try:
        key = han.codes["ihd"].link_key

        async def late(ieee: Any, link_key: Any, time_s: int) -> None:
            await asyncio.sleep(30)  # the virtual clock: past the ESI's wait for the call
            await znp_permit(ieee, link_key, time_s)

        han.esi.app.permit_with_link_key = late
        await han.esi.provision(EUIS["ihd"])
        await asyncio.sleep(60)
        failures = [r for r in caplog.records if r.getMessage().startswith("opening joining")]
        assert failures, caplog.text
        assert "CommandNotRecognized" in failures[0].getMessage()
        assert_hidden(key, caplog.text)
    finally:
        await close(han)
