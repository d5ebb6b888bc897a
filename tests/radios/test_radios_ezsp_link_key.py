"""Installing the CBKE key on an EmberZNet NCP: bellows' real EZSP / ASH objects over a fake
serial link to a fake NCP with a key table.

The key-table commands below are written from Silicon Labs' EZSP references (UG100 for
EZSP < 14, the Simplicity SDK EZSP reference from 14) and cross-checked with bellows' own
per-version command tables: ``addOrUpdateKeyTableEntry`` 0x66 (EZSP < 13), ``findKeyTableEntry``
0x75, ``getConfigurationValue`` 0x52, ``exportLinkKeyByIndex`` 0x010F (status last in 12/13,
first with a security-manager context from 14) and ``importLinkKey`` 0x010E. Only the serial
port is fake: zse drives bellows, bellows speaks ASH/EZSP to the fake NCP.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
import zigpy.config
from bellows.zigbee.application import ControllerApplication
from zigpy.types import EUI64

from tests.interpan.test_interpan_ezsp_transport import FakeNcp, connect_ezsp
from zse.errors import DecodeError
from zse.radios import (
    KeyTableFull,
    LinkKeyInstallError,
    install_link_key,
    link_key_installer,
    remove_link_key,
)
from zse.radios import ezsp as radio_ezsp

__all__ = ["connect_ezsp"]  # the fixture, imported for this module's tests

FIND_KEY, ADD_OR_UPDATE, GET_CONFIG, ERASE_KEY = 0x75, 0x66, 0x52, 0x76
EXPORT_BY_INDEX, IMPORT_LINK_KEY = 0x010F, 0x010E
CONFIG_KEY_TABLE_SIZE = 0x1E
EMBER_SUCCESS, EMBER_TABLE_FULL, EMBER_KEY_TABLE_INVALID_ADDRESS = 0x00, 0xB4, 0xB3
SL_OK, SL_FULL, SL_INVALID_INDEX, SL_NOT_FOUND = 0x0000, 0x001C, 0x0027, 0x002D
SL_INVALID_PARAMETER = 0x0021
APP_LINK = 4  # SL_ZB_SEC_MAN_KEY_TYPE_APP_LINK
KEY_HAS_PARTNER_EUI64, KEY_HAS_KEY_DATA = 0x0008, 0x0100

PARTNER = EUI64.convert("00:0d:6f:00:01:02:03:04")
OTHERS = [EUI64.convert(f"00:0d:6f:00:0a:00:00:{i:02x}") for i in range(1, 9)]
KEY_DATA = bytes(range(0x10, 0x20))
OLD_KEY = bytes(16)

VERSIONS = [4, 7, 8, 12, 13, 14, 16, 18]


class KeyTableNcp(FakeNcp):
    """The fake NCP with an APS key table of ``size`` entries (None: empty)."""

    def __init__(self, version: int, *, size: int = 4) -> None:
        super().__init__(version)
        self.table: list[tuple[bytes, bytes] | None] = [None] * size
        self.key_frames: list[tuple[int, bytes]] = []  # (frame id, parameters)
        self.forced_status: dict[int, int] = {}  # frame id -> status to answer

    def put(self, index: int, eui64: EUI64, key: bytes) -> None:
        self.table[index] = (eui64.serialize(), key)

    def key_of(self, eui64: EUI64) -> tuple[int, bytes] | None:
        for index, entry in enumerate(self.table):
            if entry is not None and entry[0] == eui64.serialize():
                return index, entry[1]
        return None

    def _supports(self, frame_id: int) -> bool:
        if frame_id == ADD_OR_UPDATE:
            return self.version < 13
        if frame_id in (EXPORT_BY_INDEX, IMPORT_LINK_KEY):
            return self.version >= 12
        return frame_id in (FIND_KEY, GET_CONFIG, ERASE_KEY)

    def _ezsp(self, frame: bytes) -> None:
        seq, frame_id, params = self._parse(frame)
        if not self._supports(frame_id):
            super()._ezsp(frame)
            return
        self._seq = seq
        self.frames_seen.append(frame_id)
        self.key_frames.append((frame_id, params))
        answer = {
            FIND_KEY: self._find,
            ADD_OR_UPDATE: self._add_or_update,
            GET_CONFIG: self._get_config,
            EXPORT_BY_INDEX: self._export_by_index,
            IMPORT_LINK_KEY: self._import,
            ERASE_KEY: self._erase,
        }[frame_id](params)
        self._respond(seq, frame_id, answer)

    def _sl(self, status: int) -> bytes:
        return struct.pack("<I", status)  # sl_status_t, also in EZSP 12/13 security commands

    def _find(self, params: bytes) -> bytes:
        assert len(params) == 9
        assert params[8] == 1, "linkKey must be true"
        for index, entry in enumerate(self.table):
            if entry is not None and entry[0] == params[:8]:
                return bytes([index])
        return b"\xff"

    def _add_or_update(self, params: bytes) -> bytes:
        assert len(params) == 8 + 1 + 16
        eui, link_key, key = params[:8], params[8], params[9:]
        assert link_key == 1
        status = self.forced_status.get(ADD_OR_UPDATE)
        if status is None:
            free = [i for i, e in enumerate(self.table) if e is None]
            own = [i for i, e in enumerate(self.table) if e is not None and e[0] == eui]
            slots = own or free
            status = EMBER_TABLE_FULL if not slots else EMBER_SUCCESS
            if slots:
                self.table[slots[0]] = (eui, key)
        return bytes([status])

    def _get_config(self, params: bytes) -> bytes:
        assert params == bytes([CONFIG_KEY_TABLE_SIZE])
        status = self.forced_status.get(GET_CONFIG, 0)
        return self._status(status) + struct.pack("<H", len(self.table))

    def _export_by_index(self, params: bytes) -> bytes:
        (index,) = params
        entry = self.table[index] if index < len(self.table) else None
        if index >= len(self.table):
            status = SL_INVALID_INDEX
        else:
            status = SL_NOT_FOUND if entry is None else SL_OK
        eui, key = entry if entry is not None else (bytes(8), bytes(16))
        metadata = struct.pack("<HIIH", KEY_HAS_PARTNER_EUI64 | KEY_HAS_KEY_DATA, 7, 9, 0)
        if self.version < 14:
            return eui + key + metadata + self._sl(status)
        context = struct.pack("<BBH", APP_LINK, index, 0) + eui + struct.pack("<BBI", 0, 3, 0)
        assert len(context) == 18
        return self._sl(status) + context + key + metadata

    def _erase(self, params: bytes) -> bytes:
        (index,) = params  # eraseKeyTableEntry: index; an EmberStatus, sl_status_t from 14
        status = self.forced_status.get(ERASE_KEY)
        if status is None:
            status = EMBER_KEY_TABLE_INVALID_ADDRESS if index >= len(self.table) else SL_OK
            if status == SL_OK:
                self.table[index] = None
        return self._status(status)

    def _import(self, params: bytes) -> bytes:
        assert len(params) == 1 + 8 + 16
        index, eui, key = params[0], params[1:9], params[9:]
        status = self.forced_status.get(IMPORT_LINK_KEY)
        if status is None:
            status = SL_INVALID_INDEX if index >= len(self.table) else SL_OK
            if status == SL_OK:
                self.table[index] = (eui, key)
        return self._sl(status)


def key_commands(ncp: KeyTableNcp) -> list[int]:
    return [frame_id for frame_id, _ in ncp.key_frames]


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_new_partner_takes_a_free_entry(
    connect_ezsp: Callable[[FakeNcp], Any], version: int
) -> None:
    ncp = KeyTableNcp(version, size=4)
    ncp.put(0, OTHERS[0], OLD_KEY)
    ezsp = await connect_ezsp(ncp)
    index = await radio_ezsp.install_link_key(ezsp, PARTNER, KEY_DATA)
    assert ncp.key_of(PARTNER) == (1, KEY_DATA)
    assert ncp.key_of(OTHERS[0]) == (0, OLD_KEY)
    if version < 13:
        assert index is None
        assert key_commands(ncp) == [ADD_OR_UPDATE]
        assert ncp.key_frames[0][1] == PARTNER.serialize() + b"\x01" + KEY_DATA
    else:
        assert index == 1
        assert key_commands(ncp) == [
            FIND_KEY,
            GET_CONFIG,
            EXPORT_BY_INDEX,
            EXPORT_BY_INDEX,
            IMPORT_LINK_KEY,
        ]
        assert [p for f, p in ncp.key_frames if f == EXPORT_BY_INDEX] == [b"\x00", b"\x01"]
        assert ncp.key_frames[-1][1] == b"\x01" + PARTNER.serialize() + KEY_DATA
    await ezsp.disconnect()


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_existing_entry_is_replaced_in_place(
    connect_ezsp: Callable[[FakeNcp], Any], version: int
) -> None:
    ncp = KeyTableNcp(version, size=4)
    ncp.put(0, OTHERS[0], OLD_KEY)
    ncp.put(2, PARTNER, OLD_KEY)  # e.g. the install-code key, or an earlier CBKE
    ezsp = await connect_ezsp(ncp)
    index = await radio_ezsp.install_link_key(ezsp, PARTNER, KEY_DATA)
    assert ncp.key_of(PARTNER) == (2, KEY_DATA)
    assert ncp.table[1] is None
    assert ncp.table[3] is None
    if version < 13:
        assert key_commands(ncp) == [ADD_OR_UPDATE]
    else:
        assert index == 2
        assert key_commands(ncp) == [FIND_KEY, IMPORT_LINK_KEY]
    await ezsp.disconnect()


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_full_table_is_reported_and_nothing_is_overwritten(
    connect_ezsp: Callable[[FakeNcp], Any], version: int
) -> None:
    ncp = KeyTableNcp(version, size=3)
    for i in range(3):
        ncp.put(i, OTHERS[i], OLD_KEY)
    ezsp = await connect_ezsp(ncp)
    with pytest.raises(KeyTableFull) as info:
        await radio_ezsp.install_link_key(ezsp, PARTNER, KEY_DATA)
    assert ncp.key_of(PARTNER) is None
    assert [e[0] for e in ncp.table if e] == [o.serialize() for o in OTHERS[:3]]
    if version < 13:
        assert info.value.status == EMBER_TABLE_FULL
        assert "addOrUpdateKeyTableEntry" in str(info.value)
        assert "0xB4" in str(info.value)
    else:
        assert info.value.status is None
        assert "CONFIG_KEY_TABLE_SIZE = 3" in str(info.value)
        assert IMPORT_LINK_KEY not in key_commands(ncp)
        assert key_commands(ncp).count(EXPORT_BY_INDEX) == 3
    await ezsp.disconnect()


async def test_a_stick_s_word_on_its_table_size_is_bounded(
    connect_ezsp: Callable[[FakeNcp], Any],
) -> None:
    """A stick answering CONFIG_KEY_TABLE_SIZE 65,535 with every entry taken made 65,535
    exportLinkKeyByIndex round trips (minutes on a serial link) before the table was full."""
    size = radio_ezsp.MAX_KEY_TABLE_PROBES + 44
    ncp = KeyTableNcp(14, size=size)
    for i in range(size):
        ncp.put(i, EUI64(i.to_bytes(8, "little")), OLD_KEY)
    ezsp = await connect_ezsp(ncp)
    with pytest.raises(KeyTableFull):
        await radio_ezsp.install_link_key(ezsp, PARTNER, KEY_DATA)
    assert key_commands(ncp).count(EXPORT_BY_INDEX) == radio_ezsp.MAX_KEY_TABLE_PROBES
    await ezsp.disconnect()


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_refusal_carries_the_ncp_status(
    connect_ezsp: Callable[[FakeNcp], Any], version: int
) -> None:
    ncp = KeyTableNcp(version)
    if version < 13:
        command, status = ADD_OR_UPDATE, EMBER_KEY_TABLE_INVALID_ADDRESS
        expected = r"addOrUpdateKeyTableEntry for 00:0d:6f:00:01:02:03:04 failed .* 0xB3"
    else:
        command, status = IMPORT_LINK_KEY, SL_INVALID_PARAMETER
        expected = r"importLinkKey\(index=0\) for 00:0d:6f:00:01:02:03:04 failed .* 0x21"
    ncp.forced_status[command] = status
    ezsp = await connect_ezsp(ncp)
    with pytest.raises(LinkKeyInstallError, match=expected) as info:
        await radio_ezsp.install_link_key(ezsp, PARTNER, KEY_DATA)
    assert type(info.value) is LinkKeyInstallError  # not "table full"
    assert info.value.status == status
    assert ncp.key_of(PARTNER) is None
    await ezsp.disconnect()


@pytest.mark.parametrize("version", [13, 14, 18])
async def test_import_answering_full_and_a_failed_size_read(
    connect_ezsp: Callable[[FakeNcp], Any], version: int
) -> None:
    ncp = KeyTableNcp(version)
    ncp.forced_status[IMPORT_LINK_KEY] = SL_FULL
    ezsp = await connect_ezsp(ncp)
    with pytest.raises(KeyTableFull, match="0x1C") as info:
        await radio_ezsp.install_link_key(ezsp, PARTNER, KEY_DATA)
    assert info.value.status == SL_FULL
    ncp.forced_status = {GET_CONFIG: 0x35 if version < 14 else 0x0021}
    with pytest.raises(LinkKeyInstallError, match="CONFIG_KEY_TABLE_SIZE") as info:
        await radio_ezsp.install_link_key(ezsp, PARTNER, KEY_DATA)
    assert type(info.value) is LinkKeyInstallError
    assert info.value.status == ncp.forced_status[GET_CONFIG]
    await ezsp.disconnect()


@pytest.mark.parametrize("version", [8, 14])
async def test_dispatch_from_a_bellows_application(
    connect_ezsp: Callable[[FakeNcp], Any], version: int
) -> None:
    ncp = KeyTableNcp(version)
    ezsp = await connect_ezsp(ncp)
    app = ControllerApplication(
        {zigpy.config.CONF_DEVICE: {zigpy.config.CONF_DEVICE_PATH: "/dev/fake-ncp"}}
    )
    app._ezsp = ezsp  # what bellows' connect() sets on a running application
    await install_link_key(app, PARTNER, KEY_DATA)
    assert ncp.key_of(PARTNER) == (0, KEY_DATA)
    install = link_key_installer(app)
    await install(OTHERS[0], OLD_KEY)
    await install(PARTNER, bytes(reversed(KEY_DATA)))
    assert ncp.key_of(OTHERS[0]) == (1, OLD_KEY)
    assert ncp.key_of(PARTNER) == (0, bytes(reversed(KEY_DATA)))
    with pytest.raises(DecodeError, match="16 bytes, got 15"):
        await install(PARTNER, KEY_DATA[:15])
    assert ncp.key_of(PARTNER) == (0, bytes(reversed(KEY_DATA)))
    await ezsp.disconnect()


@pytest.mark.parametrize("version", VERSIONS)
async def test_removal_erases_the_partner_s_entry_and_no_other(
    connect_ezsp: Callable[[FakeNcp], Any], version: int
) -> None:
    """No code path erased a removed device's CBKE key from the NCP's key table (the device
    could Trust-Center-rejoin, and every removal used up an entry): findKeyTableEntry, then
    eraseKeyTableEntry of that index."""
    ncp = KeyTableNcp(version, size=4)
    ncp.put(0, OTHERS[0], OLD_KEY)
    ncp.put(2, PARTNER, KEY_DATA)
    ezsp = await connect_ezsp(ncp)
    assert await radio_ezsp.remove_link_key(ezsp, PARTNER) is True
    assert ncp.key_of(PARTNER) is None
    assert ncp.key_of(OTHERS[0]) == (0, OLD_KEY)
    assert ncp.key_frames == [(FIND_KEY, PARTNER.serialize() + b"\x01"), (ERASE_KEY, b"\x02")]
    # nothing held any more: found no entry, nothing erased
    assert await radio_ezsp.remove_link_key(ezsp, PARTNER) is False
    assert key_commands(ncp)[2:] == [FIND_KEY]
    await ezsp.disconnect()


@pytest.mark.parametrize("version", [8, 14])
async def test_a_refused_erase_carries_the_ncp_status(
    connect_ezsp: Callable[[FakeNcp], Any], version: int
) -> None:
    ncp = KeyTableNcp(version, size=4)
    ncp.put(1, PARTNER, KEY_DATA)
    ncp.forced_status[ERASE_KEY] = SL_INVALID_PARAMETER
    ezsp = await connect_ezsp(ncp)
    with pytest.raises(LinkKeyInstallError, match="eraseKeyTableEntry") as info:
        await radio_ezsp.remove_link_key(ezsp, PARTNER)
    assert info.value.status == SL_INVALID_PARAMETER
    assert KEY_DATA.hex() not in str(info.value)
    await ezsp.disconnect()


async def test_removal_dispatches_from_a_bellows_application(
    connect_ezsp: Callable[[FakeNcp], Any],
) -> None:
    ncp = KeyTableNcp(14)
    ncp.put(3, PARTNER, KEY_DATA)
    ezsp = await connect_ezsp(ncp)
    app = ControllerApplication(
        {zigpy.config.CONF_DEVICE: {zigpy.config.CONF_DEVICE_PATH: "/dev/fake-ncp"}}
    )
    app._ezsp = ezsp
    assert await remove_link_key(app, PARTNER) is True
    assert ncp.table == [None] * 4
    await ezsp.disconnect()
