"""The EZSP inter-PAN transport, driving bellows' real EZSP / ASH objects over a fake serial link.

The fake NCP below is written from the ASH (UG101) and EZSP (UG100, and UG600 for v14+)
documents: byte stuffing, CRC-CCITT, data randomisation, RST/RSTACK, DATA/ACK numbering, the
three EZSP frame formats (v4, v5-v7 extended legacy, v8+) and the per-version shapes of the
commands and callbacks the transport uses. bellows is not mocked: only the serial port is.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import zigpy.config
import zigpy.serial
from bellows.ezsp import EZSP
from zigpy.types import EUI64

from zse.interpan import BROADCAST_ADDRESS, DeliveryMode, InterPanFrame
from zse.interpan.transports import InterPanTransport
from zse.radios.ezsp import EzspError, EzspTransport

FLAG, ESC, XON, XOFF, SUB, CANCEL = 0x7E, 0x7D, 0x11, 0x13, 0x18, 0x1A
RESERVED = {FLAG, ESC, XON, XOFF, SUB, CANCEL}

# EZSP frame ids (UG100 / UG600)
VERSION, GET_VALUE, SET_VALUE = 0x00, 0xAA, 0xAB
SEND_RAW, SEND_RAW_EXT, CUSTOM_FRAME = 0x96, 0x51, 0x47
INVALID_COMMAND, MAC_PASSTHROUGH, MAC_FILTER_MATCH = 0x58, 0x97, 0x46
VALUE_MAC_PASSTHROUGH_FLAGS = 0x01


def crc_ccitt(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def randomise(data: bytes) -> bytes:
    out = bytearray()
    rand = 0x42
    for byte in data:
        out.append(byte ^ rand)
        rand = (rand >> 1) ^ 0xB8 if rand & 1 else rand >> 1
    return bytes(out)


def stuff(frame: bytes) -> bytes:
    out = bytearray()
    for byte in frame:
        if byte in RESERVED:
            out += bytes([ESC, byte ^ 0x20])
        else:
            out.append(byte)
    return bytes(out) + bytes([FLAG])


class FakeNcp:
    """An EmberZNet NCP on the far side of the serial port, speaking ASH and EZSP ``version``."""

    def __init__(self, version: int, *, passthrough_flags: int = 0x00) -> None:
        self.version = version
        self.host_format = 4  # the host starts with the v4 frame format
        self.values = {VALUE_MAC_PASSTHROUGH_FLAGS: passthrough_flags}
        self.sent_raw: list[tuple[int, bytes]] = []  # (frame id, MAC frame)
        self.raw_status = 0
        self.set_value_status = 0
        self.frames_seen: list[int] = []
        self._rx = bytearray()
        self._escaped = False
        self._tx_frm = 0
        self._ack = 0
        self._seq = 0
        self.host: Callable[[bytes], None] = lambda data: None

    # -- serial side
    def bytes_from_host(self, data: bytes) -> None:
        for byte in data:
            if byte == CANCEL:
                self._rx.clear()
            elif byte == FLAG:
                if self._rx:
                    self._frame(bytes(self._rx))
                self._rx.clear()
                self._escaped = False
            elif byte in (XON, XOFF):
                continue
            elif byte == ESC:
                self._escaped = True
            else:
                self._rx.append(byte ^ 0x20 if self._escaped else byte)
                self._escaped = False

    def _send_ash(self, control: int, data: bytes = b"") -> None:
        body = bytes([control]) + data
        self.host(stuff(body + crc_ccitt(body).to_bytes(2, "big")))

    def _frame(self, frame: bytes) -> None:
        body, crc = frame[:-2], frame[-2:]
        assert crc_ccitt(body) == int.from_bytes(crc, "big"), "host sent a bad ASH CRC"
        control = body[0]
        if control == 0xC0:  # RST -> RSTACK (version 2, reset cause software)
            self._tx_frm = self._ack = 0
            self._send_ash(0xC1, bytes([0x02, 0x0B]))
        elif control & 0x80 == 0:  # DATA
            frm = (control >> 4) & 0x7
            self._ack = (frm + 1) & 0x7
            self._send_ash(0x80 | self._ack)  # ACK
            self._ezsp(randomise(body[1:]))
        # ACK / NAK from the host: nothing to do, every frame is answered at once

    def _send_data(self, ezsp_frame: bytes) -> None:
        control = (self._tx_frm << 4) | self._ack
        self._tx_frm = (self._tx_frm + 1) & 0x7
        self._send_ash(control, randomise(ezsp_frame))

    # -- EZSP side
    def _parse(self, frame: bytes) -> tuple[int, int, bytes]:
        if self.host_format < 5:
            return frame[0], frame[2], frame[3:]
        if self.host_format < 8:
            assert frame[2] == 0xFF
            return frame[0], frame[4], frame[5:]
        return frame[0], int.from_bytes(frame[3:5], "little"), frame[5:]

    def _header(self, seq: int, frame_id: int, control: int) -> bytes:
        if self.host_format < 5:
            return bytes([seq, control, frame_id])
        if self.host_format < 8:
            return bytes([seq, control, 0xFF, 0x00, frame_id])
        return bytes([seq, control, 0x01]) + frame_id.to_bytes(2, "little")

    def _status(self, status: int) -> bytes:
        return status.to_bytes(4 if self.version >= 14 else 1, "little")

    def _respond(self, seq: int, frame_id: int, params: bytes) -> None:
        self._send_data(self._header(seq, frame_id, 0x80) + params)

    def callback(self, frame_id: int, params: bytes) -> None:
        """An asynchronous callback, sent with the last command's (answered) sequence."""
        self._send_data(self._header(self._seq, frame_id, 0x90) + params)

    def _ezsp(self, frame: bytes) -> None:
        seq, frame_id, params = self._parse(frame)
        self._seq = seq
        self.frames_seen.append(frame_id)
        if frame_id == VERSION:
            desired = params[0]
            self._respond(seq, VERSION, bytes([self.version, 0x02]) + struct.pack("<H", 0x7400))
            if desired != self.version:
                self.host_format = self.version
        elif frame_id == GET_VALUE:
            value = bytes([self.values[params[0]]])
            self._respond(seq, GET_VALUE, self._status(0) + bytes([len(value)]) + value)
        elif frame_id == SET_VALUE:
            value_id, length = params[0], params[1]
            assert len(params) == 2 + length
            if self.set_value_status == 0:
                self.values[value_id] = params[2]
            self._respond(seq, SET_VALUE, self._status(self.set_value_status))
        elif frame_id == SEND_RAW and self.version < 14:
            self.sent_raw.append((frame_id, params[1 : 1 + params[0]]))
            self._respond(seq, SEND_RAW, self._status(self.raw_status))
        elif frame_id == SEND_RAW_EXT and self.version >= 8:
            length = params[0]
            message, priority, use_cca = (
                params[1 : 1 + length],
                params[1 + length],
                params[2 + length],
            )
            assert (priority, use_cca) == (1, 1)
            self.sent_raw.append((frame_id, message))
            self._respond(seq, SEND_RAW_EXT, self._status(self.raw_status))
        else:  # e.g. the XNCP customFrame probe of v13+: not an XNCP firmware
            self._respond(seq, INVALID_COMMAND, self._status(0x34))

    # -- what the radio hears on the air
    def hear(self, mac_frame: bytes, *, filter_match: bool = False, message_type: int = 1) -> None:
        lqi_rssi = bytes([0xFF, 0xD0])  # LQI 255, RSSI -48
        packet_info = struct.pack("<H8sBBBbI", 0xFFFE, bytes(8), 0xFF, 0xFF, 0xFF, -48, 1234)
        contents = bytes([len(mac_frame)]) + mac_frame
        if not filter_match:
            if self.version < 14:
                self.callback(MAC_PASSTHROUGH, bytes([message_type]) + lqi_rssi + contents)
            else:
                self.callback(MAC_PASSTHROUGH, bytes([message_type]) + packet_info + contents)
        elif self.version < 14:
            self.callback(MAC_FILTER_MATCH, bytes([0, message_type]) + lqi_rssi + contents)
        elif self.version < 18:
            self.callback(MAC_FILTER_MATCH, bytes([0, message_type]) + packet_info + contents)
        else:
            filter_value = struct.pack("<H", 0x0C01)
            self.callback(
                MAC_FILTER_MATCH, filter_value + bytes([message_type]) + packet_info + contents
            )


@pytest.fixture
def connect_ezsp(serial_link: Callable[..., None]) -> Callable[[FakeNcp], Any]:
    async def connect(ncp: FakeNcp) -> EZSP:
        serial_link(zigpy.serial, "create_serial_connection", ncp)
        config = zigpy.config.SCHEMA_DEVICE({zigpy.config.CONF_DEVICE_PATH: "/dev/fake-ncp"})
        ezsp = EZSP(config)
        await ezsp.connect(use_thread=False)
        assert ezsp.ezsp_version == ncp.version
        return ezsp

    return connect


SRC = EUI64.convert("00:0d:6f:00:0a:bc:de:f0")
METER = EUI64.convert("00:0d:6f:00:01:02:03:04")
VERSIONS = [4, 7, 8, 13, 14, 16, 18]


def sample(mode: DeliveryMode = DeliveryMode.BROADCAST, seq: int = 1) -> InterPanFrame:
    return InterPanFrame(
        src_pan_id=0x1234,
        src_ieee=SRC,
        dst_pan_id=0xFFFF,
        dst_address=METER if mode is DeliveryMode.UNICAST else BROADCAST_ADDRESS,
        delivery_mode=mode,
        group_id=7 if mode is DeliveryMode.GROUP else None,
        cluster_id=0x0700,
        payload=bytes([0x01, seq, 0x00, 0x00]),
        sequence=seq,
    )


async def next_frame(transport: AsyncIterator[InterPanFrame]) -> InterPanFrame:
    return await asyncio.wait_for(anext(transport), 5)


@pytest.mark.parametrize("version", VERSIONS)
async def test_start_enables_se_interpan_passthrough_keeping_other_flags(
    connect_ezsp: Callable[[FakeNcp], Any], version: int
) -> None:
    ncp = FakeNcp(version, passthrough_flags=0x08)  # APPLICATION passthrough already on
    ezsp = await connect_ezsp(ncp)
    transport = EzspTransport(ezsp)
    assert isinstance(transport, InterPanTransport)
    await transport.start()
    assert ncp.values[VALUE_MAC_PASSTHROUGH_FLAGS] == 0x09
    await transport.close()
    await ezsp.disconnect()


@pytest.mark.parametrize("version", VERSIONS)
async def test_send_uses_the_right_command_per_version(
    connect_ezsp: Callable[[FakeNcp], Any], version: int
) -> None:
    ncp = FakeNcp(version)
    ezsp = await connect_ezsp(ncp)
    transport = EzspTransport(ezsp)
    await transport.start()
    frames = [sample(mode, i) for i, mode in enumerate(DeliveryMode)]
    for f in frames:
        await transport.send(f)
    expected_id = SEND_RAW_EXT if version >= 14 else SEND_RAW
    assert ncp.sent_raw == [(expected_id, f.to_bytes()) for f in frames]
    ncp.raw_status = 0x66  # e.g. EMBER_NETWORK_BUSY / an sl_Status error
    with pytest.raises(EzspError, match="failed with status 0x66") as info:
        await transport.send(frames[0])
    assert info.value.status == 0x66
    await transport.close()
    await ezsp.disconnect()


@pytest.mark.parametrize("version", VERSIONS)
async def test_receive_passthrough_and_filter_match_shapes(
    connect_ezsp: Callable[[FakeNcp], Any], version: int
) -> None:
    ncp = FakeNcp(version)
    ezsp = await connect_ezsp(ncp)
    transport = EzspTransport(ezsp)
    await transport.start()
    it = aiter(transport)
    unicast, group = sample(DeliveryMode.UNICAST, 3), sample(DeliveryMode.GROUP, 4)
    ncp.hear(unicast.to_bytes())
    assert await next_frame(it) == unicast
    ncp.hear(group.to_bytes(), filter_match=True)
    assert await next_frame(it) == group
    # an EmberNet passthrough message and a non-inter-PAN filter match are not delivered
    ncp.hear(unicast.to_bytes(), message_type=0x02)
    ncp.hear(b"\x41\x88\x01\x34\x12\xff\xff\x00\x00", filter_match=True)
    last = sample(DeliveryMode.BROADCAST, 5)
    ncp.hear(last.to_bytes())
    assert await next_frame(it) == last
    assert transport.invalid == 1
    await transport.close()
    with pytest.raises(StopAsyncIteration):
        await next_frame(it)
    await ezsp.disconnect()


async def test_start_reports_a_refusal(connect_ezsp: Callable[[FakeNcp], Any]) -> None:
    ncp = FakeNcp(8)
    ncp.set_value_status = 0x35  # EZSP_ERROR_INVALID_VALUE
    ezsp = await connect_ezsp(ncp)
    transport = EzspTransport(ezsp)
    with pytest.raises(EzspError, match="VALUE_MAC_PASSTHROUGH_FLAGS"):
        await transport.start()
    assert ncp.values[VALUE_MAC_PASSTHROUGH_FLAGS] == 0
    await transport.close()
    await ezsp.disconnect()


async def test_full_queue_drops_and_counts(connect_ezsp: Callable[[FakeNcp], Any]) -> None:
    ncp = FakeNcp(14)
    ezsp = await connect_ezsp(ncp)
    transport = EzspTransport(ezsp, maxsize=2)
    await transport.start()
    for seq in range(5):
        ncp.hear(sample(seq=seq).to_bytes())
    await ezsp.getValue(valueId=VALUE_MAC_PASSTHROUGH_FLAGS)  # a round trip: callbacks are in
    assert transport.dropped == 3
    it = aiter(transport)
    assert [(await next_frame(it)).sequence for _ in range(2)] == [0, 1]
    await transport.close()
    await ezsp.disconnect()
