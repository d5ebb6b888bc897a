"""The Z-Stack inter-PAN transport, driving zigpy-znp's real ZNP / MT-UART objects over a fake
serial link to a scripted Z-Stack.

The fake Z-Stack is written from TI's Z-Stack Monitor and Test API document: MT frames
(SOF 0xFE, length, CMD0 = type << 5 | subsystem, CMD1, data, XOR FCS), the SYS / UTIL commands
zigpy-znp uses to connect, and AF.Register, AF.InterPanCtl, AF.DataRequestExt (answered by an
SRSP then an AF.DataConfirm) and AF.IncomingMsgExt. zigpy-znp is not mocked: only the port is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import zigpy_znp.config as znp_conf
import zigpy_znp.uart
from zigpy.types import EUI64
from zigpy_znp.api import ZNP

from zse.interpan import BROADCAST_ADDRESS, DeliveryMode, InterPanFrame
from zse.interpan.secure import InterPanSecurity
from zse.interpan.service import InterPanService
from zse.interpan.transports import InterPanTransport, SecuredInterPanUnsupported
from zse.radios.znp import ZnpError, ZnpTransport

SREQ, AREQ, SRSP = 0x20, 0x40, 0x60
RPC, SYS, AF, UTIL = 0x00, 0x01, 0x04, 0x07
MAC_NO_ACK = 0xE9


def mt_frame(cmd0: int, cmd1: int, data: bytes) -> bytes:
    body = bytes([len(data), cmd0, cmd1]) + data
    fcs = 0
    for byte in body:
        fcs ^= byte
    return b"\xfe" + body + bytes([fcs])


class FakeZStack:
    """A Z-Stack 3.x coprocessor on the far side of the serial port."""

    def __init__(self) -> None:
        self.registered: dict[int, int] = {}  # endpoint -> profile
        self.inter_pan_endpoints: set[int] = set()
        self.channel: int | None = None
        self.data_requests: list[dict[str, Any]] = []
        self.request_status = 0x00
        self.confirm_status = 0x00
        self.host: Callable[[bytes], None] = lambda data: None
        self._rx = bytearray()

    def bytes_from_host(self, data: bytes) -> None:
        self._rx += data
        while True:
            start = self._rx.find(0xFE)
            if start < 0 or len(self._rx) < start + 5:
                return
            length = self._rx[start + 1]
            end = start + 5 + length
            if len(self._rx) < end:
                return
            frame = bytes(self._rx[start:end])
            del self._rx[:end]
            fcs = 0
            for byte in frame[1:-1]:
                fcs ^= byte
            assert fcs == frame[-1], "host sent a bad MT FCS"
            self._command(frame[2], frame[3], frame[4:-1])

    def _send(self, cmd0: int, cmd1: int, data: bytes) -> None:
        self.host(mt_frame(cmd0, cmd1, data))

    def _command(self, cmd0: int, cmd1: int, data: bytes) -> None:
        assert cmd0 & 0xE0 == SREQ, f"unexpected frame type 0x{cmd0:02X}"
        subsystem = cmd0 & 0x1F
        key = (subsystem, cmd1)
        if key == (SYS, 0x01):  # SYS.Ping: capabilities SYS|MAC|NWK|AF|ZDO|SAPI|UTIL|APP_CNF
            self._send(SRSP | SYS, 0x01, struct.pack("<H", 0x047F))
        elif key == (UTIL, 0x49):  # UTIL.AssocFindDevice: unaligned associated_devices_t
            self._send(SRSP | UTIL, 0x49, bytes(28))
        elif key == (SYS, 0x32):  # SYS.NVLength of an item that does not exist
            self._send(SRSP | SYS, 0x32, struct.pack("<I", 0))
        elif key == (AF, 0x00):  # AF.Register
            endpoint, profile = struct.unpack_from("<BH", data)
            self.registered[endpoint] = profile
            self._send(SRSP | AF, 0x00, b"\x00")
        elif key == (AF, 0x10):  # AF.InterPanCtl
            self._inter_pan_ctl(data[0], data[1:])
        elif key == (AF, 0x02):  # AF.DataRequestExt
            self._data_request_ext(data)
        else:
            self._send(SRSP | RPC, 0x00, bytes([0x02, cmd0, cmd1]))  # invalid command id

    def _inter_pan_ctl(self, command: int, data: bytes) -> None:
        status = 0x00
        if command == 0x00:  # Clr
            self.channel = None
        elif command == 0x01:  # Set
            self.channel = data[0]
        elif command == 0x02 and data[0] in self.registered:  # Reg
            self.inter_pan_endpoints.add(data[0])
        else:
            status = 0x02  # INVALID_PARAMETER (unknown endpoint)
        self._send(SRSP | AF, 0x10, bytes([status]))

    def _data_request_ext(self, data: bytes) -> None:
        mode = data[0]
        address = data[1:9]
        dst_ep, dst_pan, src_ep, cluster, tsn, options, _radius, length = struct.unpack_from(
            "<BHBHBBBH", data, 9
        )
        payload = data[20 : 20 + length]
        assert len(payload) == length
        self.data_requests.append(
            {
                "mode": mode,
                "address": address if mode == 0x03 else int.from_bytes(address[:2], "little"),
                "dst_ep": dst_ep,
                "dst_pan": dst_pan,
                "src_ep": src_ep,
                "cluster": cluster,
                "tsn": tsn,
                "options": options,
                "payload": payload,
            }
        )
        ok = src_ep in self.inter_pan_endpoints and dst_ep == 0xFE
        status = self.request_status if ok else 0x02
        self._send(SRSP | AF, 0x02, bytes([status]))
        if status == 0:
            self._send(AREQ | AF, 0x80, bytes([self.confirm_status, src_ep, tsn]))

    def hear(
        self,
        *,
        src: EUI64,
        src_pan: int,
        cluster: int,
        payload: bytes,
        group: int = 0,
        broadcast: bool = False,
        dst_ep: int = 9,
        src_ep: int = 0xFE,
        src_mode: int = 0x03,
    ) -> None:
        """AF.IncomingMsgExt, as Z-Stack's stub APS delivers an inter-PAN frame."""
        data = (
            struct.pack("<HH", group, cluster)
            + bytes([src_mode])
            + src.serialize()
            + struct.pack("<BHBBBBIB", src_ep, src_pan, dst_ep, int(broadcast), 200, 0, 99, 1)
            + struct.pack("<H", len(payload))
            + payload
            + struct.pack("<HB", 0xFFFE, 0)
        )
        self._send(AREQ | AF, 0x82, data)


@pytest.fixture
async def znp(serial_link: Callable[..., None]) -> AsyncIterator[tuple[ZNP, FakeZStack]]:
    radio = FakeZStack()
    api = await _connected(serial_link, radio)
    assert api.version == 3.30
    yield api, radio
    api.close()


async def _connected(serial_link: Callable[..., None], radio: FakeZStack) -> ZNP:
    """zigpy-znp's ZNP connected to ``radio`` (a fake Z-Stack on a serial link)."""
    serial_link(zigpy_znp.uart, "create_serial_connection", radio)
    config = znp_conf.CONFIG_SCHEMA(
        {
            "device": {"path": "/dev/fake-zstack"},
            "znp_config": {"skip_bootloader": False, "prefer_endpoint_1": False},
        }
    )
    api = ZNP(config)
    await api.connect()
    return api


LOCAL = EUI64.convert("00:12:4b:00:00:00:00:01")
HHT = EUI64.convert("00:0d:6f:00:0a:bc:de:f0")
METER = EUI64.convert("00:0d:6f:00:01:02:03:04")


def transport_for(api: ZNP, confirm_timeout: float = 60) -> ZnpTransport:
    """The transport under test. The fake Z-Stack confirms at once, on the loop's next turns:
    a test that is not about the timeout gives it a minute of real time, so that a machine
    starved of CPU (the suite beside other work) does not fail it (2 s did, at load 10)."""
    return ZnpTransport(api, endpoint=9, ieee=LOCAL, pan_id=0x1A2B, confirm_timeout=confirm_timeout)


def frame(mode: DeliveryMode, tsn: int = 5) -> InterPanFrame:
    return InterPanFrame(
        src_pan_id=0x1A2B,
        src_ieee=LOCAL,
        dst_pan_id=0xFFFF if mode is not DeliveryMode.UNICAST else 0x2222,
        dst_address=METER if mode is DeliveryMode.UNICAST else BROADCAST_ADDRESS,
        delivery_mode=mode,
        group_id=0x0042 if mode is DeliveryMode.GROUP else None,
        cluster_id=0x0703,
        payload=bytes([0x09, tsn, 0x01, 0x77, 0, 0, 0, 0]),
    )


async def test_start_registers_the_endpoint_and_channel_control(
    znp: tuple[ZNP, FakeZStack],
) -> None:
    api, radio = znp
    transport = transport_for(api)
    assert isinstance(transport, InterPanTransport)
    await transport.start(register=True)
    assert radio.registered == {9: 0x0109}
    assert radio.inter_pan_endpoints == {9}
    await transport.set_channel(20)
    assert radio.channel == 20
    await transport.restore_channel()
    assert radio.channel is None
    with pytest.raises(ValueError, match=r"11\.\.26"):
        await transport.set_channel(27)
    await transport.close()


async def test_reg_without_af_registration_is_refused(znp: tuple[ZNP, FakeZStack]) -> None:
    api, _radio = znp
    transport = transport_for(api)
    with pytest.raises(ZnpError, match=r"AF.InterPanCtl Reg failed with status 0x02"):
        await transport.start()
    await transport.close()


async def test_send_maps_each_delivery_mode(znp: tuple[ZNP, FakeZStack]) -> None:
    api, radio = znp
    transport = transport_for(api)
    await transport.start(register=True)
    for mode in DeliveryMode:
        await transport.send(frame(mode, tsn=0xF1))
    unicast, broadcast, group = radio.data_requests
    assert (unicast["mode"], unicast["address"]) == (0x03, METER.serialize())
    assert (broadcast["mode"], broadcast["address"]) == (0x0F, 0xFFFF)
    assert (group["mode"], group["address"]) == (0x01, 0x0042)
    assert [r["dst_pan"] for r in radio.data_requests] == [0x2222, 0xFFFF, 0xFFFF]
    for i, request in enumerate(radio.data_requests):
        assert request["dst_ep"] == 0xFE
        assert request["src_ep"] == 9
        assert request["cluster"] == 0x0703
        assert request["tsn"] == i  # the transport's own numbering, not the ZCL TSN
        assert request["options"] == 0  # no APS ack, no APS security on inter-PAN
        assert request["payload"] == frame(DeliveryMode.UNICAST, tsn=0xF1).payload
    await transport.close()


async def test_send_failures(znp: tuple[ZNP, FakeZStack]) -> None:
    api, radio = znp
    transport = transport_for(api)
    await transport.start(register=True)
    radio.confirm_status = MAC_NO_ACK
    with pytest.raises(ZnpError, match=r"AF.DataConfirm\) failed with status 0xE9"):
        await transport.send(frame(DeliveryMode.UNICAST))
    radio.confirm_status = 0
    radio.request_status = 0x10  # ZMemError
    with pytest.raises(ZnpError, match=r"AF.DataRequestExt failed with status 0x10"):
        await transport.send(frame(DeliveryMode.BROADCAST))
    other_profile = dataclasses.replace(frame(DeliveryMode.BROADCAST), profile_id=0x0104)
    with pytest.raises(ValueError, match=r"endpoint's profile 0x0109, not 0x0104"):
        await transport.send(other_profile)
    with pytest.raises(ValueError, match=r"0x0000 as intra-PAN"):
        await transport.send(dataclasses.replace(frame(DeliveryMode.UNICAST), dst_pan_id=0))
    assert len(radio.data_requests) == 2
    await transport.close()


async def test_receive_incoming_msg_ext(znp: tuple[ZNP, FakeZStack]) -> None:
    api, radio = znp
    transport = transport_for(api)
    await transport.start(register=True)
    it = aiter(transport)
    get_price = bytes([0x01, 0x21, 0x00, 0x00])
    radio.hear(src=HHT, src_pan=0x3333, cluster=0x0700, payload=get_price)
    radio.hear(src=HHT, src_pan=0x3333, cluster=0x0700, payload=get_price, broadcast=True)
    radio.hear(src=HHT, src_pan=0x3333, cluster=0x0700, payload=get_price, group=0x0042)
    # not inter-PAN: a normal message from the network, and one for another endpoint
    radio.hear(src=HHT, src_pan=0x1A2B, cluster=0x0700, payload=get_price, src_ep=1)
    radio.hear(src=HHT, src_pan=0x3333, cluster=0x0700, payload=get_price, dst_ep=1)
    radio.hear(src=HHT, src_pan=0x3333, cluster=0x0700, payload=bytes(96))  # too long
    last = bytes([0x01, 0x22, 0x00, 0x00])
    radio.hear(src=HHT, src_pan=0x3333, cluster=0x0700, payload=last)
    got = [await asyncio.wait_for(anext(it), 5) for _ in range(4)]
    assert [f.delivery_mode for f in got] == [
        DeliveryMode.UNICAST,
        DeliveryMode.BROADCAST,
        DeliveryMode.GROUP,
        DeliveryMode.UNICAST,
    ]
    first = got[0]
    assert first.src_ieee == HHT
    assert first.src_pan_id == 0x3333
    assert first.dst_address == LOCAL
    assert first.dst_pan_id == 0x1A2B
    assert first.cluster_id == 0x0700
    assert first.profile_id == 0x0109
    assert first.payload == get_price
    assert got[2].group_id == 0x0042
    assert got[3].payload == last
    assert transport.invalid == 1
    await transport.close()


async def test_from_application_requires_prefer_endpoint_1_off() -> None:
    class App:
        def __init__(self, prefer: bool) -> None:
            self.config = znp_conf.CONFIG_SCHEMA(
                {"device": {"path": "/dev/x"}, "znp_config": {"prefer_endpoint_1": prefer}}
            )

    with pytest.raises(ValueError, match="prefer_endpoint_1 must be false"):
        ZnpTransport.from_application(App(prefer=True), endpoint=9)
    defaults = znp_conf.CONFIG_SCHEMA({"device": {"path": "/dev/x"}})
    assert defaults["znp_config"]["prefer_endpoint_1"] is True  # zigpy-znp's default is on


async def test_secured_frames_are_refused_before_anything_is_sent(
    znp: tuple[ZNP, FakeZStack],
) -> None:
    """Audit finding 2: Z-Stack's stub APS cannot send APS-secured inter-PAN (TI stub_aps.c:
    security gives ZApsNotSupported) and drops the secured frames it hears, so a secured send
    is refused by name, before any request, and so is a secured service on this transport."""
    api, radio = znp
    transport = transport_for(api)
    await transport.start(register=True)
    security = InterPanSecurity()
    security.add_key(METER, bytes(16))
    sealed = security.seal(frame(DeliveryMode.UNICAST))
    with pytest.raises(SecuredInterPanUnsupported, match=r"EZSP radio \(EzspTransport\)"):
        await transport.send(sealed)
    assert radio.data_requests == []
    assert isinstance(SecuredInterPanUnsupported("x"), ValueError)  # not an OSError: not retried
    with pytest.raises(SecuredInterPanUnsupported, match="ZnpTransport cannot carry"):
        InterPanService(transport, ieee=LOCAL, pan_id=0x1A2B, security=InterPanSecurity())
    InterPanService(transport, ieee=LOCAL, pan_id=0x1A2B)  # unsecured is fine
    await transport.close()


async def test_full_size_frames_are_received_and_sends_keep_to_the_mtu(
    znp: tuple[ZNP, FakeZStack],
) -> None:
    """Audit finding 1: a unicast frame carries up to 95 octets (a 127-octet PHY frame; Silicon
    Labs sends that many), a broadcast one 101; Z-Stack itself sends at most 93
    (INTERP_DataReqMTU), refused before the request."""
    api, radio = znp
    transport = transport_for(api)
    await transport.start(register=True)
    it = aiter(transport)
    radio.hear(src=HHT, src_pan=0x3333, cluster=0x0700, payload=bytes(95))
    radio.hear(src=HHT, src_pan=0x3333, cluster=0x0700, payload=bytes(96))
    radio.hear(src=HHT, src_pan=0x3333, cluster=0x0700, payload=bytes(101), broadcast=True)
    radio.hear(src=HHT, src_pan=0x3333, cluster=0x0700, payload=bytes(102), broadcast=True)
    radio.hear(src=HHT, src_pan=0x3333, cluster=0x0700, payload=bytes(99), group=5)
    got = [await asyncio.wait_for(anext(it), 5) for _ in range(3)]
    assert [(f.delivery_mode, len(f.payload)) for f in got] == [
        (DeliveryMode.UNICAST, 95),
        (DeliveryMode.BROADCAST, 101),
        (DeliveryMode.GROUP, 99),
    ]
    assert transport.invalid == 2
    with pytest.raises(ValueError, match=r"at most 93 octets .*INTERP_DataReqMTU"):
        await transport.send(dataclasses.replace(frame(DeliveryMode.UNICAST), payload=bytes(94)))
    assert radio.data_requests == []
    await transport.close()


class HeldConfirms(FakeZStack):
    """Z-Stack whose AF.DataConfirms wait until :meth:`confirm` sends them, in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[int, int]] = []  # (src_ep, tsn) of each request not confirmed

    def _send(self, cmd0: int, cmd1: int, data: bytes) -> None:
        if (cmd0, cmd1) == (AREQ | AF, 0x80):
            self.held.append((data[1], data[2]))
            return
        super()._send(cmd0, cmd1, data)

    def confirm(self, index: int, status: int) -> None:
        endpoint, tsn = self.held[index]
        super()._send(AREQ | AF, 0x80, bytes([status, endpoint, tsn]))


async def test_each_confirmation_reaches_its_own_send(serial_link: Callable[..., None]) -> None:
    """Audit finding 4: two sends in flight whose payloads share their second octet (every
    manufacturer-specific frame: the manufacturer code's low byte) get distinct transaction
    ids, so "no acknowledgement" for the first is reported to the first, not the second."""
    radio = HeldConfirms()
    api = await _connected(serial_link, radio)
    transport = transport_for(api)
    await transport.start(register=True)
    carrier = bytes([0x15, 0xF1, 0xFF, 0x07, 0x01, 0x00, 0x00])  # manufacturer 0xFFF1
    first = dataclasses.replace(frame(DeliveryMode.UNICAST), payload=carrier)
    second = dataclasses.replace(first, payload=carrier[:3] + b"\x08" + carrier[4:])
    sends = [asyncio.ensure_future(transport.send(f)) for f in (first, second)]
    for _ in range(1000):  # the two requests reach the fake Z-Stack
        if len(radio.held) == 2:
            break
        await asyncio.sleep(0)
    assert radio.held[0][1] != radio.held[1][1]
    radio.confirm(1, 0x00)  # the second goes out first
    radio.confirm(0, MAC_NO_ACK)
    results = await asyncio.gather(*sends, return_exceptions=True)
    assert isinstance(results[0], ZnpError)
    assert results[0].status == MAC_NO_ACK
    assert results[1] is None
    await transport.close()
    api.close()
