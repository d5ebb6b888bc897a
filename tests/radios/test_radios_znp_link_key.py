"""Installing the CBKE key on a Z-Stack coprocessor: zigpy-znp's real ZNP / MT-UART objects over
a fake serial link to a scripted Z-Stack that answers ``ZDO.SetLinkKey``.

The fake is written from TI's Z-Stack Monitor and Test API (MT_ZDO_SET_LINK_KEY: SREQ
CMD0 0x25 CMD1 0x23, ShortAddr (2, little-endian), IEEE (8), 16-byte key; SRSP one status
byte) and from what ``ZDSecMgrAddLinkKey`` returns: ZSuccess, ZFailure when the address manager
refuses, ZBufferFull when the security manager has no free entry. Only the port is fake.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable

import pytest
import zigpy.config
import zigpy_znp.config as znp_conf
import zigpy_znp.uart
from zigpy.types import EUI64
from zigpy_znp.api import ZNP
from zigpy_znp.zigbee.application import ControllerApplication

from tests.interpan.test_interpan_znp_transport import SREQ, SRSP, FakeZStack
from zse.radios import (
    KeyTableFull,
    LinkKeyInstallError,
    install_link_key,
    link_key_installer,
    remove_link_key,
)
from zse.radios import znp as radio_znp

ZDO, SET_LINK_KEY, REMOVE_LINK_KEY = 0x05, 0x23, 0x24
Z_SUCCESS, Z_FAILURE, Z_BUFFER_FULL, Z_NWK_UNKNOWN_DEVICE = 0x00, 0x01, 0x11, 0xC8

PARTNER = EUI64.convert("00:0d:6f:00:01:02:03:04")
OTHER = EUI64.convert("00:0d:6f:00:0a:00:00:01")
KEY_DATA = bytes(range(0x10, 0x20))


class KeyZStack(FakeZStack):
    """The fake Z-Stack, plus a security manager of ``capacity`` link-key entries."""

    def __init__(self, capacity: int = 2) -> None:
        super().__init__()
        self.capacity = capacity
        self.link_keys: dict[bytes, tuple[int, bytes]] = {}  # IEEE (wire) -> (NWK, key)
        self.set_link_key_requests: list[bytes] = []
        self.address_manager_refuses = False
        self.remove_link_key_requests: list[bytes] = []
        self.remove_status = Z_SUCCESS

    def _command(self, cmd0: int, cmd1: int, data: bytes) -> None:
        if (cmd0, cmd1) == (SREQ | ZDO, REMOVE_LINK_KEY):  # IEEE (8); ZDSecMgrDeviceRemove...
            assert len(data) == 8
            self.remove_link_key_requests.append(data)
            held = self.link_keys.pop(data, None) is not None
            status = self.remove_status if held else Z_NWK_UNKNOWN_DEVICE
            self._send(SRSP | ZDO, REMOVE_LINK_KEY, bytes([status]))
            return
        if (cmd0, cmd1) != (SREQ | ZDO, SET_LINK_KEY):
            super()._command(cmd0, cmd1, data)
            return
        self.set_link_key_requests.append(data)
        assert len(data) == 2 + 8 + 16
        (nwk,), ieee, key = struct.unpack_from("<H", data), data[2:10], data[10:]
        if self.address_manager_refuses:
            status = Z_FAILURE
        elif ieee not in self.link_keys and len(self.link_keys) >= self.capacity:
            status = Z_BUFFER_FULL
        else:
            self.link_keys[ieee] = (nwk, key)
            status = Z_SUCCESS
        self._send(SRSP | ZDO, SET_LINK_KEY, bytes([status]))


async def connect_znp(serial_link: Callable[..., None], radio: FakeZStack) -> ZNP:
    """zigpy-znp's real ZNP, connected over the fake serial link to ``radio``."""
    serial_link(zigpy_znp.uart, "create_serial_connection", radio)
    config = znp_conf.CONFIG_SCHEMA(
        {"device": {"path": "/dev/fake-zstack"}, "znp_config": {"skip_bootloader": False}}
    )
    api = ZNP(config)
    await api.connect()
    return api


@pytest.fixture
async def zstack(serial_link: Callable[..., None]) -> AsyncIterator[tuple[ZNP, KeyZStack]]:
    radio = KeyZStack()
    api = await connect_znp(serial_link, radio)
    yield api, radio
    api.close()


async def test_set_link_key_carries_nwk_ieee_and_key(zstack: tuple[ZNP, KeyZStack]) -> None:
    api, radio = zstack
    await radio_znp.install_link_key(api, PARTNER, 0x1A2B, KEY_DATA)
    assert radio.set_link_key_requests == [b"\x2b\x1a" + PARTNER.serialize() + KEY_DATA]
    assert radio.link_keys == {PARTNER.serialize(): (0x1A2B, KEY_DATA)}
    # a second exchange with the same partner replaces its key (no new entry needed)
    radio.capacity = 1
    await radio_znp.install_link_key(api, PARTNER, 0x1A2B, bytes(16))
    assert radio.link_keys == {PARTNER.serialize(): (0x1A2B, bytes(16))}


async def test_security_manager_full(zstack: tuple[ZNP, KeyZStack]) -> None:
    api, radio = zstack
    radio.capacity = 1
    await radio_znp.install_link_key(api, OTHER, 0x0001, KEY_DATA)
    with pytest.raises(KeyTableFull, match=r"ZDO.SetLinkKey .* failed with status 0x11") as info:
        await radio_znp.install_link_key(api, PARTNER, 0x1A2B, KEY_DATA)
    assert info.value.status == Z_BUFFER_FULL
    assert info.value.command == "ZDO.SetLinkKey"
    assert PARTNER.serialize() not in radio.link_keys


async def test_a_failure_status_is_an_error(zstack: tuple[ZNP, KeyZStack]) -> None:
    api, radio = zstack
    radio.address_manager_refuses = True
    with pytest.raises(LinkKeyInstallError, match=r"\(0x1A2B\) failed with status 0x01") as info:
        await radio_znp.install_link_key(api, PARTNER, 0x1A2B, KEY_DATA)
    assert type(info.value) is LinkKeyInstallError
    assert info.value.status == Z_FAILURE
    assert radio.link_keys == {}


async def test_dispatch_from_a_znp_application(zstack: tuple[ZNP, KeyZStack]) -> None:
    api, radio = zstack
    app = ControllerApplication(
        {zigpy.config.CONF_DEVICE: {zigpy.config.CONF_DEVICE_PATH: "/dev/fake-zstack"}}
    )
    app._znp = api  # what zigpy-znp's connect() sets on a running application
    app.add_device(PARTNER, 0x4C21)
    await install_link_key(app, PARTNER, KEY_DATA)
    assert radio.link_keys == {PARTNER.serialize(): (0x4C21, KEY_DATA)}
    # a device zigpy does not know: Z-Stack needs its NWK address, so nothing is sent
    with pytest.raises(LinkKeyInstallError, match="not a device of this network"):
        await link_key_installer(app)(OTHER, KEY_DATA)
    assert len(radio.set_link_key_requests) == 1


async def test_removal_erases_the_partner_s_link_key(zstack: tuple[ZNP, KeyZStack]) -> None:
    """No code path erased a removed device's CBKE key from Z-Stack (it could come back, and
    every removal used up an entry): ZDO.RemoveLinkKey with its IEEE address."""
    api, radio = zstack
    await radio_znp.install_link_key(api, PARTNER, 0x1A2B, KEY_DATA)
    await radio_znp.install_link_key(api, OTHER, 0x3C4D, KEY_DATA)
    assert await radio_znp.remove_link_key(api, PARTNER) is True
    assert radio.remove_link_key_requests == [PARTNER.serialize()]
    assert list(radio.link_keys) == [OTHER.serialize()]
    # nothing held any more: ZNwkUnknownDevice, not an error
    assert await radio_znp.remove_link_key(api, PARTNER) is False


async def test_a_refused_removal_carries_the_status(zstack: tuple[ZNP, KeyZStack]) -> None:
    api, radio = zstack
    await radio_znp.install_link_key(api, PARTNER, 0x1A2B, KEY_DATA)
    radio.remove_status = Z_FAILURE
    with pytest.raises(LinkKeyInstallError, match="RemoveLinkKey") as info:
        await radio_znp.remove_link_key(api, PARTNER)
    assert info.value.status == Z_FAILURE


async def test_removal_dispatches_from_a_znp_application(zstack: tuple[ZNP, KeyZStack]) -> None:
    api, radio = zstack
    await radio_znp.install_link_key(api, PARTNER, 0x1A2B, KEY_DATA)
    app = ControllerApplication(
        {zigpy.config.CONF_DEVICE: {zigpy.config.CONF_DEVICE_PATH: "/dev/fake-zstack"}}
    )
    app._znp = api
    assert await remove_link_key(app, PARTNER) is True
    assert radio.link_keys == {}
