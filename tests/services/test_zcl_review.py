"""The ZCL foundation behaviour of zse's endpoint (zse.zcl.endpoint) as a certification or
interop harness drives it: frames a firmware team's reference tests send to an SE endpoint,
answered by the rules of ZCL 07-5123 2.4.1 (frame header) and 2.5 (general commands), with
zigpy's own foundation types reading the octets zse sends.

Most tests drive :class:`~zse.zcl.endpoint.ZclEndpointBase` through its one radio hook
(``_transmit``, which the ESI's ``SeEndpoint`` and the simulator's endpoint implement to put
the frame on the air): ``Bench`` keeps the frames instead. The broadcast storm runs on the
simulator with the ESI's real :class:`~zse.zcl.se_endpoint.SeEndpoint`.

Sources for the expected behaviour: ZCL 07-5123 2.4.1.1 (frame control), 2.5.12.2 (when a
Default Response is sent: unicast only, never to a Default Response), ZCL r8 2.3.2.1 (no error
answer to a message for the broadcast endpoint or address); Silicon Labs' application
framework (an unknown manufacturer-specific one UNSUP_MANUF_CLUSTER_COMMAND, an unknown
manufacturer-specific general one UNSUP_MANUF_GENERAL_COMMAND, a response received with its
Disable Default Response bit clear gets a SUCCESS Default Response).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as t
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.clusters.se_frames import air_frame, dissect
from tests.services.test_delivery import REQUEST
from tests.services.test_se_endpoint import network, spy_sends
from zse.zcl.endpoint import ZclEndpointBase, simple_descriptor
from zse.zcl.frame import ZclMessage, decode_zcl_header

G = foundation.GeneralCommand
S = foundation.Status
PRICE = 0x0700
DRLC = 0x0701
METERING = 0x0702
CARRIER = 0xFC5E  # a manufacturer-specific cluster (the hand-held terminal's carrier)
PEER = 0x1234
MANUFACTURER = 0x1002


class Bench(ZclEndpointBase):
    """A ZCL endpoint whose radio keeps what it is given: (destination mode, address, bytes).
    Price and DRLC servers, Metering client, a manufacturer-specific cluster's server."""

    def __init__(self, *, first_tsn: int = 0) -> None:
        super().__init__(
            simple_descriptor(9, (), in_clusters=[PRICE, DRLC, CARRIER], out_clusters=[METERING]),
            first_tsn,
        )
        self.sent: list[tuple[t.AddrMode, int, int, bytes]] = []
        #: Exceptions that escaped the endpoint's background tasks.
        self.escaped: list[BaseException] = []

    def _track(self, task: asyncio.Task[Any]) -> None:
        def escaped(done: asyncio.Task[Any]) -> None:
            if not done.cancelled() and done.exception() is not None:
                self.escaped.append(done.exception())  # type: ignore[arg-type]

        task.add_done_callback(escaped)
        super()._track(task)

    async def _transmit(self, **kwargs: Any) -> None:
        self.sent.append((kwargs["dst_mode"], kwargs["dst"], kwargs["cluster_id"], kwargs["data"]))


def message(data: bytes, cluster: int = PRICE, *, src: int = PEER, **where: Any) -> ZclMessage:
    """``data`` (a whole ZCL frame) as received from ``src`` (``group=``, ``broadcast=``)."""
    frame_control, manufacturer, tsn, command_id, length = decode_zcl_header(data)
    header = {"frame_control": frame_control, "manufacturer": manufacturer, "tsn": tsn}
    return dataclasses.replace(
        REQUEST,
        src_nwk=src,
        src_ieee=None,
        cluster_id=cluster,
        command_id=command_id,
        payload=data[length:],
        **header,
        **where,
    )


async def settle() -> None:
    """Let the endpoint's background answers run (they need no time, only turns)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def answers(bench: Bench, data: bytes, cluster: int = PRICE, **where: Any) -> list[bytes]:
    """The frames ``bench`` sends on receiving ``data``."""
    bench.sent.clear()
    bench._accept(message(data, cluster, **where))
    await settle()
    return [sent for _, _, _, sent in bench.sent]


def parse(frame: bytes) -> tuple[foundation.ZCLHeader, bytes]:
    """zigpy's reading of a frame zse sent: its header and payload."""
    header, payload = foundation.ZCLHeader.deserialize(frame)
    return header, payload


def default_response(frame: bytes) -> tuple[int, S]:
    """(command id, status) of a Default Response, read by zigpy."""
    header, payload = parse(frame)
    assert header.command_id == G.Default_Response
    assert not header.frame_control.is_cluster
    rsp, _ = foundation.GENERAL_COMMANDS[G.Default_Response].schema.deserialize(payload)
    return int(rsp.command_id), S(rsp.status)


def bench_with_handlers() -> tuple[Bench, list[ZclMessage]]:
    """A bench whose Price, DRLC and carrier handlers record what reaches them."""
    bench = Bench()
    bench.set_attribute(PRICE, 0x0000, "BASE", type_id=0x42)  # a character string
    bench.set_attribute(PRICE, 0x0001, 5, type_id=0x20)
    reached: list[ZclMessage] = []

    def handler(msg: ZclMessage) -> S:
        reached.append(msg)
        return S.SUCCESS

    for cluster in (PRICE, DRLC, CARRIER):
        bench.add_handler(cluster, handler)
    return bench, reached


# -- ZCL 2.4.1.1.2: manufacturer-specific frames --------------------------------------------


async def test_a_manufacturer_specific_cluster_command_is_not_taken_for_the_standard_one() -> None:
    """Command 0x00 with a manufacturer code is the manufacturer's command, not Get Current
    Price: it never reaches the Price handler and is answered UNSUP_MANUF_CLUSTER_COMMAND,
    with the manufacturer code in the answer's header."""
    bench, reached = bench_with_handlers()
    sent = await answers(bench, b"\x05\x02\x10\x21\x00")
    assert reached == []
    assert len(sent) == 1
    assert default_response(sent[0]) == (0x00, S.UNSUP_MANUF_CLUSTER_COMMAND)
    header, _ = parse(sent[0])
    assert (header.tsn, header.manufacturer) == (0x21, MANUFACTURER)


async def test_a_manufacturer_specific_general_command_is_unsup_manuf_general_command() -> None:
    bench, _ = bench_with_handlers()
    sent = await answers(bench, b"\x04\x02\x10\x22\x11\x00\x10")  # Discover Commands Received
    assert [default_response(frame) for frame in sent] == [
        (G.Discover_Commands_Received, S.UNSUP_MANUF_GENERAL_COMMAND)
    ]


async def test_a_manufacturer_specific_read_names_no_standard_attribute() -> None:
    """Read Attributes with a manufacturer code reads that manufacturer's attributes (ZCL
    2.4.1.1.2); zse has none, so attribute 0x0000 is UNSUPPORTED_ATTRIBUTE, not Price's
    TierLabel value under someone else's code."""
    bench, _ = bench_with_handlers()
    sent = await answers(bench, b"\x04\x02\x10\x23\x00\x00\x00\x01\x00")
    assert len(sent) == 1
    header, payload = parse(sent[0])
    assert (header.command_id, header.manufacturer) == (G.Read_Attributes_rsp, MANUFACTURER)
    rsp, _ = foundation.GENERAL_COMMANDS[G.Read_Attributes_rsp].schema.deserialize(payload)
    assert [(r.attrid, r.status) for r in rsp.status_records] == [
        (0x0000, S.UNSUPPORTED_ATTRIBUTE),
        (0x0001, S.UNSUPPORTED_ATTRIBUTE),
    ]


async def test_a_manufacturer_specific_write_changes_no_standard_attribute() -> None:
    bench, _ = bench_with_handlers()
    bench.set_writable(PRICE, 0x0001)
    sent = await answers(bench, b"\x04\x02\x10\x24\x02\x01\x00\x20\x07")
    assert bench.attribute_value(PRICE, 0x0001) == foundation.TypeValue(
        type=foundation.DataTypeId.uint8, value=5
    )
    header, payload = parse(sent[0])
    assert header.command_id == G.Write_Attributes_rsp
    rsp, _ = foundation.GENERAL_COMMANDS[G.Write_Attributes_rsp].schema.deserialize(payload)
    assert [(r.status, r.attrid) for r in rsp.status_records] == [(S.UNSUPPORTED_ATTRIBUTE, 0x0001)]


async def test_a_manufacturer_specific_cluster_still_takes_its_manufacturer_commands() -> None:
    """A cluster in the manufacturer-specific range (0xFC00-0xFFFF) is the manufacturer's own:
    its commands carry the code and go to its handler (the HHT carrier over the network)."""
    bench, reached = bench_with_handlers()
    await answers(bench, b"\x05\x02\x10\x25\x01", CARRIER)
    assert [m.manufacturer for m in reached] == [MANUFACTURER]


# -- ZCL 2.4.1.1.1: reserved frame types, reserved bits ----------------------------------------


@pytest.mark.parametrize("frame_type", [0b10, 0b11])
async def test_a_reserved_frame_type_is_dropped_not_read_as_a_general_command(
    frame_type: int,
) -> None:
    """Frame type 0b10 / 0b11 is reserved: the frame is neither a general command (command 0x00
    is not Read Attributes) nor a cluster command; it is dropped, no handler sees it."""
    bench, reached = bench_with_handlers()
    assert await answers(bench, bytes((frame_type, 0x26, 0x00, 0x00, 0x00))) == []
    assert reached == []


async def test_reserved_frame_control_bits_are_ignored() -> None:
    """Bits 5-7 of the frame control are reserved: the frame is read as if they were clear,
    and the answer does not echo them."""
    bench, _ = bench_with_handlers()
    sent = await answers(bench, b"\xe0\x27\x00\x01\x00")
    header, _ = parse(sent[0])
    assert header.command_id == G.Read_Attributes_rsp
    assert sent[0][0] & 0xE0 == 0


# -- ZCL 2.4.1.1.3: the direction bit names the side that receives -----------------------------


async def test_a_cluster_command_for_a_side_not_hosted_never_reaches_a_handler() -> None:
    """A Price command sent by a server (direction bit set) is for a Price client; this
    endpoint hosts Price's server only, so the frame does not reach the Price server's handler
    (it would decode command 0x00 as Publish Price) and is answered UNSUP_CLUSTER_COMMAND: the
    side hosted has no such command (Silicon Labs answers UNSUPPORTED_CLUSTER; zse keeps that
    for a cluster it hosts neither side of)."""
    bench, reached = bench_with_handlers()
    sent = await answers(bench, b"\x09\x28\x00")
    assert reached == []
    assert [default_response(frame) for frame in sent] == [(0x00, S.UNSUP_CLUSTER_COMMAND)]
    assert await answers(bench, b"\x09\x28\x00", broadcast=True) == []


async def test_a_cluster_command_for_the_hosted_client_side_is_handled() -> None:
    bench, _ = bench_with_handlers()
    reached: list[ZclMessage] = []
    bench.add_handler(METERING, reached.append)
    await answers(bench, b"\x19\x29\x00", METERING)
    assert [m.tsn for m in reached] == [0x29]


# -- ZCL 2.5.12.2 and ZCL r8 2.3.2.1: no answer to a broadcast or group frame ------------------


@pytest.mark.parametrize("where", [{"broadcast": True}, {"group": 0x0E01}], ids=["bcast", "group"])
async def test_a_malformed_read_attributes_to_many_is_not_answered(where: dict[str, Any]) -> None:
    """An odd octet after the attribute ids is malformed; sent to a broadcast address or a
    group, it must not make every device answer MALFORMED_COMMAND."""
    bench, _ = bench_with_handlers()
    assert await answers(bench, b"\x00\x2a\x00\x00\x00\x01", **where) == []


async def test_a_malformed_read_attributes_unicast_is_malformed_command() -> None:
    bench, _ = bench_with_handlers()
    sent = await answers(bench, b"\x10\x2b\x00\x00\x00\x01")
    assert [default_response(frame) for frame in sent] == [(G.Read_Attributes, S.MALFORMED_COMMAND)]


async def test_one_broadcast_malformed_read_gets_no_answer_from_the_esi() -> None:
    """End to end on the simulator: a device broadcasts a malformed Read Attributes to every
    rx-on device's SE endpoints (0xFFFD, endpoint 0xFF); zigpy's ESI endpoint sends nothing
    back."""
    _, app, se, device = await network(41)
    sent = spy_sends(app)
    se.security.require_aps_encryption = False  # a broadcast carries no APS encryption
    await device.send_aps(
        dst_mode=t.AddrMode.Broadcast,
        dst_addr=0xFFFD,
        dst_ep=0xFF,
        src_ep=1,
        cluster_id=PRICE,
        profile_id=0x0109,
        payload=b"\x00\x2c\x00\x00\x00\x01",
        encrypt=False,
    )
    await asyncio.sleep(1)
    assert [p for p in sent if int(p.profile_id) == 0x0109] == []


# -- ZCL 2.5.12.2: a response received is owed SUCCESS when it asks for a Default Response -----


@pytest.mark.parametrize(
    ("command", "payload"),
    [
        (G.Read_Attributes_rsp, b"\x00\x00\x86"),
        (G.Write_Attributes_rsp, b"\x00"),
        (G.Configure_Reporting_rsp, b"\x00"),
        (G.Report_Attributes, b"\x00\x00\x20\x05"),
    ],
    ids=["read_rsp", "write_rsp", "configure_rsp", "report"],
)
async def test_a_stray_response_is_acknowledged_not_called_unsupported(
    command: int, payload: bytes
) -> None:
    """A response that answers nothing pending (late, after its request timed out), or a
    report nobody listens to, is a command this endpoint understands: with its Disable
    Default Response bit clear it gets SUCCESS (not UNSUP_GENERAL_COMMAND), with it set
    nothing."""
    bench, _ = bench_with_handlers()
    sent = await answers(bench, bytes((0x00, 0x2D, command)) + payload)
    assert [default_response(frame) for frame in sent] == [(command, S.SUCCESS)]
    assert await answers(bench, bytes((0x10, 0x2E, command)) + payload) == []


# -- TSN: the answer to one of zse's requests --------------------------------------------------


async def test_a_default_response_for_another_command_is_not_the_answer() -> None:
    """A Default Response carries the id of the command it answers (ZCL 2.5.12.1): one from
    the peer with the request's TSN but naming another command (the answer to an earlier
    frame of zse with the same TSN, 256 frames ago) does not end the request."""
    bench = Bench(first_tsn=0x40)
    request = asyncio.create_task(bench.request(PEER, 1, PRICE, 0x00, b"", timeout=5.0))
    await settle()
    # a Default Response to command 0x01 with TSN 0x40: not the answer to command 0x00
    bench._accept(message(b"\x10\x40\x0b\x01\x00"))
    await settle()
    assert not request.done()
    bench._accept(message(b"\x10\x40\x0b\x00\x81"))
    reply = await request
    assert reply.payload == b"\x00\x81"


async def test_a_request_tsn_wraps_at_0xff() -> None:
    bench = Bench(first_tsn=0xFE)
    assert [bench.next_tsn() for _ in range(3)] == [0xFE, 0xFF, 0x00]


async def test_two_requests_with_one_tsn_to_two_peers_each_get_their_own_answer() -> None:
    bench = Bench()
    first = asyncio.create_task(bench.request(0x1111, 1, PRICE, 0x00, tsn=0x50, timeout=5.0))
    second = asyncio.create_task(bench.request(0x2222, 1, PRICE, 0x00, tsn=0x50, timeout=5.0))
    await settle()
    bench._accept(message(b"\x11\x50\x00\x02", src=0x2222))
    bench._accept(message(b"\x11\x50\x00\x01", src=0x1111))
    assert (await first).payload == b"\x01"
    assert (await second).payload == b"\x02"


async def test_an_answer_on_another_cluster_is_not_the_answer() -> None:
    bench = Bench()
    request = asyncio.create_task(bench.request(PEER, 1, PRICE, 0x00, tsn=0x51, timeout=5.0))
    await settle()
    bench._accept(message(b"\x11\x51\x00\x02", DRLC))
    await settle()
    assert not request.done()
    bench._accept(message(b"\x11\x51\x00\x03"))
    assert (await request).payload == b"\x03"


async def test_the_answer_carries_the_request_tsn() -> None:
    bench, _ = bench_with_handlers()
    sent = await answers(bench, b"\x00\xc3\x00\x01\x00")
    assert parse(sent[0])[0].tsn == 0xC3


# -- ZCL 2.5.13-2.5.14: Discover Attributes ------------------------------------------------------


def discovered(frame: bytes) -> tuple[bool, list[tuple[int, int]]]:
    """(discovery complete, [(attribute id, data type)]) of a Discover Attributes Response."""
    header, payload = parse(frame)
    assert header.command_id == G.Discover_Attributes_rsp
    rsp, rest = foundation.GENERAL_COMMANDS[G.Discover_Attributes_rsp].schema.deserialize(payload)
    assert rest == b""
    return bool(rsp.discovery_complete), [(r.attrid, r.datatype) for r in rsp.attribute_info]


@pytest.mark.parametrize(
    ("start", "count", "complete", "listed"),
    [
        (0x0000, 0x10, True, [(0x0000, 0x42), (0x0001, 0x20), (0x0200, 0x23)]),
        (0x0000, 2, False, [(0x0000, 0x42), (0x0001, 0x20)]),
        (0x0001, 2, True, [(0x0001, 0x20), (0x0200, 0x23)]),
        (0x0002, 1, True, [(0x0200, 0x23)]),
        (0x0201, 5, True, []),
        (0x0000, 0, False, []),
    ],
)
async def test_discover_attributes_lists_from_the_start_id_up_to_the_count(
    start: int, count: int, complete: bool, listed: list[tuple[int, int]]
) -> None:
    """ZCL 2.5.13: the attributes from the start id on, in id order, at most the maximum
    count; ZCL 2.5.14: discovery complete when no attribute is left after the last listed.
    A computed attribute (a source) counts."""
    bench, _ = bench_with_handlers()
    bench.set_attribute_source(PRICE, 0x0200, 0x23, lambda: 7)
    payload = start.to_bytes(2, "little") + bytes((count,))
    sent = await answers(bench, b"\x00\x30\x0c" + payload)
    assert [discovered(frame) for frame in sent] == [(complete, listed)]


async def test_discover_attributes_server_to_client_lists_client_attributes() -> None:
    """The direction bit names the side whose attributes are discovered (ZCL 2.4.1.1.3)."""
    bench, _ = bench_with_handlers()
    bench.set_attribute(METERING, 0x0000, 3, type_id=0x20, client=True)
    sent = await answers(bench, b"\x08\x31\x0c\x00\x00\x10", METERING)
    assert [discovered(frame) for frame in sent] == [(True, [(0x0000, 0x20)])]


async def test_discover_attributes_malformed_and_broadcast() -> None:
    bench, _ = bench_with_handlers()
    sent = await answers(bench, b"\x00\x32\x0c\x00\x00")
    assert [default_response(frame) for frame in sent] == [
        (G.Discover_Attributes, S.MALFORMED_COMMAND)
    ]
    assert await answers(bench, b"\x00\x33\x0c\x00\x00\x10", broadcast=True) == []


# -- ZCL 2.5.7-2.5.10: reporting on a cluster that reports nothing -------------------------------


async def test_configure_reporting_where_nothing_is_reportable() -> None:
    """A cluster with no reporting (no general handler takes Configure Reporting: Price,
    DRLC...) answers each record: UNREPORTABLE_ATTRIBUTE for an attribute it has,
    UNSUPPORTED_ATTRIBUTE for one it has not, and a direction 0x01 (timeout) record
    UNREPORTABLE_ATTRIBUTE (zse expects no report there); not UNSUP_GENERAL_COMMAND."""
    records = (
        b"\x00\x01\x00\x20\x01\x00\x10\x00\x01"  # uint8 0x0001: analog, reportable change 1
        + b"\x00\x09\x00\x10\x01\x00\x10\x00"  # bool 0x0009: discrete, no reportable change
        + b"\x01\x00\x00\x3c\x00"  # direction 0x01, timeout 60 s
    )
    bench, _ = bench_with_handlers()
    sent = await answers(bench, b"\x00\x34\x06" + records)
    header, payload = parse(sent[0])
    assert (header.command_id, header.tsn) == (G.Configure_Reporting_rsp, 0x34)
    rsp, rest = foundation.GENERAL_COMMANDS[G.Configure_Reporting_rsp].schema.deserialize(payload)
    assert rest == b""
    assert [(r.status, r.direction, r.attrid) for r in rsp.status_records] == [
        (S.UNREPORTABLE_ATTRIBUTE, 0x00, 0x0001),
        (S.UNSUPPORTED_ATTRIBUTE, 0x00, 0x0009),
        (S.UNREPORTABLE_ATTRIBUTE, 0x01, 0x0000),
    ]


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\x01\x00\x20\x01\x00\x10\x00",  # reportable change missing
        b"\x00\x01\x00\xfe\x01\x00\x10\x00",  # unknown data type: the next record is lost
        b"\x02\x01\x00\x3c\x00",  # reserved direction
        b"",
    ],
    ids=["cut", "unknown_type", "direction", "empty"],
)
async def test_configure_reporting_malformed(payload: bytes) -> None:
    bench, _ = bench_with_handlers()
    sent = await answers(bench, b"\x00\x35\x06" + payload)
    assert [default_response(frame) for frame in sent] == [
        (G.Configure_Reporting, S.MALFORMED_COMMAND)
    ]


async def test_read_reporting_configuration_where_nothing_is_reportable() -> None:
    bench, _ = bench_with_handlers()
    sent = await answers(bench, b"\x00\x36\x08" + b"\x00\x01\x00" + b"\x00\x09\x00")
    header, payload = parse(sent[0])
    assert header.command_id == G.Read_Reporting_Configuration_rsp
    rsp, rest = foundation.GENERAL_COMMANDS[G.Read_Reporting_Configuration_rsp].schema.deserialize(
        payload
    )
    assert rest == b""
    assert [(r.status, r.config.direction, r.config.attrid) for r in rsp.attribute_configs] == [
        (S.UNREPORTABLE_ATTRIBUTE, 0x00, 0x0001),
        (S.UNSUPPORTED_ATTRIBUTE, 0x00, 0x0009),
    ]


async def test_reporting_commands_to_many_are_not_answered() -> None:
    bench, _ = bench_with_handlers()
    assert await answers(bench, b"\x00\x37\x08\x00\x01\x00", group=0x0E01) == []
    assert await answers(bench, b"\x00\x38\x06\x01\x00\x00\x3c\x00", broadcast=True) == []


async def test_a_request_ending_leaves_a_newer_request_with_its_tsn_waiting() -> None:
    """Two requests to one peer and cluster with one TSN (a caller's own TSN, or 256 frames
    later): when the older one times out it must not take the newer one's place in the table
    with it, so the newer one still gets its answer."""
    bench = Bench()
    older = asyncio.create_task(bench.request(PEER, 1, PRICE, 0x00, tsn=0x60, timeout=1.0))
    await settle()
    newer = asyncio.create_task(bench.request(PEER, 1, PRICE, 0x01, tsn=0x60, timeout=3.0))
    await asyncio.sleep(1.5)
    with pytest.raises(TimeoutError):
        await older
    bench._accept(message(b"\x11\x60\x01\x02"))
    assert (await newer).payload == b"\x02"


# -- Robustness: any frame from the air ---------------------------------------------------------

_HEADERS = st.sampled_from(
    [
        b"\x00",  # general, client to server
        b"\x08",  # general, server to client
        b"\x01",  # cluster, client to server
        b"\x09",  # cluster, server to client
        b"\x04\x02\x10",  # manufacturer-specific general
        b"\x05\x02\x10",  # manufacturer-specific cluster
        b"\x02",  # reserved frame type
        b"\xf0",  # reserved bits, disable default response
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    header=_HEADERS,
    command=st.integers(0, 0xFF),
    payload=st.binary(max_size=24),
    cluster=st.sampled_from([PRICE, DRLC, METERING, CARRIER, 0x0000]),
)
def test_any_frame_gets_a_clear_outcome_and_a_broadcast_gets_none(
    header: bytes, command: int, payload: bytes, cluster: int
) -> None:
    """Whatever arrives: no exception escapes into a background task (each would be logged
    as "reply not sent"), at most one answer to a unicast, none to a broadcast or group."""
    data = header + b"\x5a" + bytes((command,)) + payload

    async def run() -> tuple[list[bytes], list[bytes], list[bytes], list[BaseException]]:
        bench, _ = bench_with_handlers()
        bench.set_writable(PRICE, 0x0001)
        unicast = await answers(bench, data, cluster)
        bcast = await answers(bench, data, cluster, broadcast=True)
        group = await answers(bench, data, cluster, group=0x0E01)
        return unicast, bcast, group, bench.escaped

    unicast, bcast, group, escaped = asyncio.run(run())
    assert (bcast, group, escaped) == ([], [], [])
    assert len(unicast) <= 1
    for frame in unicast:
        header_out, _ = parse(frame)
        assert header_out.tsn == 0x5A


# -- ZCL 2.5.1-2.5.6: Read and Write Attributes as a harness sends them -------------------------


def read_records(frame: bytes) -> list[tuple[int, S, Any]]:
    header, payload = parse(frame)
    assert header.command_id == G.Read_Attributes_rsp
    rsp, rest = foundation.GENERAL_COMMANDS[G.Read_Attributes_rsp].schema.deserialize(payload)
    assert rest == b""
    return [
        (r.attrid, r.status, None if r.value is None else r.value.value) for r in rsp.status_records
    ]


@pytest.mark.parametrize(
    ("ids", "records"),
    [
        ([0x0001, 0x0009, 0x0000], [(1, S.SUCCESS, 5), (9, S.UNSUPPORTED_ATTRIBUTE, None)]),
        ([0x0001, 0x0001], [(1, S.SUCCESS, 5), (1, S.SUCCESS, 5)]),
        ([], []),
    ],
    ids=["one_unsupported", "twice", "empty"],
)
async def test_read_attributes_records(ids: list[int], records: list[Any]) -> None:
    """ZCL 2.5.2: one record per id asked, in order; an unsupported one is a status alone
    (no type, no value), the others are unaffected; an empty request, an empty response."""
    bench, _ = bench_with_handlers()
    payload = b"".join(i.to_bytes(2, "little") for i in ids)
    sent = await answers(bench, b"\x00\x70\x00" + payload)
    expected = records + ([(0, S.SUCCESS, "BASE")] if ids[-1:] == [0x0000] else [])
    assert [read_records(frame) for frame in sent] == [expected]


async def test_read_attributes_of_a_client_attribute_asked_of_the_server() -> None:
    """A client attribute is not the server's: client to server it is UNSUPPORTED_ATTRIBUTE."""
    bench, _ = bench_with_handlers()
    bench.set_attribute(PRICE, 0x0020, 3, type_id=0x20, client=True)
    sent = await answers(bench, b"\x00\x71\x00\x20\x00")
    assert [read_records(frame) for frame in sent] == [[(0x20, S.UNSUPPORTED_ATTRIBUTE, None)]]


def write_statuses(frame: bytes) -> list[tuple[S, int | None]]:
    header, payload = parse(frame)
    assert header.command_id == G.Write_Attributes_rsp
    rsp, _ = foundation.GENERAL_COMMANDS[G.Write_Attributes_rsp].schema.deserialize(payload)
    return [(r.status, r.attrid) for r in rsp.status_records]


@pytest.mark.parametrize(
    ("command", "records", "statuses", "stored"),
    [
        (G.Write_Attributes, b"\x00\x00\x42\x02ab", [(S.READ_ONLY, 0x0000)], 5),
        (G.Write_Attributes, b"\x01\x00\x21\x07\x00", [(S.INVALID_DATA_TYPE, 0x0001)], 5),
        (G.Write_Attributes, b"\x01\x00\x20\xc8", [(S.INVALID_VALUE, 0x0001)], 5),
        (G.Write_Attributes, b"\x01\x00\x20\x07", [(S.SUCCESS, None)], 7),
        (
            G.Write_Attributes,
            b"\x01\x00\x20\x07\x00\x00\x42\x02ab",
            [(S.READ_ONLY, 0x0000)],
            7,
        ),
        (
            G.Write_Attributes_Undivided,
            b"\x01\x00\x20\x07\x00\x00\x42\x02ab",
            [(S.READ_ONLY, 0x0000)],
            5,
        ),
        (G.Write_Attributes_No_Response, b"\x01\x00\x20\x07", None, 7),
    ],
    ids=["read_only", "wrong_type", "out_of_range", "ok", "partial", "undivided", "no_response"],
)
async def test_write_attributes_statuses(
    command: int, records: bytes, statuses: list[Any] | None, stored: int
) -> None:
    """ZCL 2.5.3-2.5.6: READ_ONLY, INVALID_DATA_TYPE, INVALID_VALUE per record, SUCCESS alone
    when all are written; Undivided writes none when one is refused; No Response answers
    nothing."""
    bench, _ = bench_with_handlers()
    bench.set_writable(PRICE, 0x0001, check=lambda value: S.INVALID_VALUE if value > 100 else None)
    sent = await answers(bench, bytes((0x00, 0x72, command)) + records)
    if statuses is None:
        assert sent == []
    else:
        assert [write_statuses(frame) for frame in sent] == [statuses]
    value = bench.attribute_value(PRICE, 0x0001)
    assert value is not None
    assert value.value == stored


async def test_no_default_response_to_a_default_response() -> None:
    """ZCL 2.5.12.2: never a Default Response to a Default Response, even one asking for it."""
    bench, _ = bench_with_handlers()
    assert await answers(bench, b"\x00\x73\x0b\x00\x81") == []


async def test_an_unknown_general_command_is_unsup_general_command() -> None:
    bench, _ = bench_with_handlers()
    sent = await answers(bench, b"\x10\x74\xff")
    assert [default_response(frame) for frame in sent] == [(0xFF, S.UNSUP_GENERAL_COMMAND)]


@pytest.mark.parametrize(
    ("value", "type_id"), [(b"BASE", 0x42), ("BASE", 0x41)], ids=["bytes_as_text", "text_as_octets"]
)
def test_a_string_attribute_of_the_wrong_kind_is_refused_when_set(value: Any, type_id: int) -> None:
    """A character string (0x42) holds text, an octet string (0x41) octets (ZCL 2.6.2.11-12):
    bytes set as a character string would be served as their Python spelling ("b'BASE'",
    eight octets on the air), so the mix-up is a TypeError naming the attribute, at once."""
    bench = Bench()
    with pytest.raises(TypeError, match="0x0700/0x0000"):
        bench.set_attribute(PRICE, 0x0000, value, type_id=type_id)
    assert bench.attribute_value(PRICE, 0x0000) is None


async def test_tshark_reads_the_new_answers(tmp_path: Path) -> None:
    """Wireshark's ZCL dissector (the oracle of tests/oracles.py) reads the answers this
    review added: Discover Attributes Response, Configure Reporting Response, Read Reporting
    Configuration Response and a manufacturer-specific Default Response, none malformed."""
    bench, _ = bench_with_handlers()
    frames = await answers(bench, b"\x00\x30\x0c\x00\x00\x10")
    configure = b"\x00\x01\x00\x20\x01\x00\x10\x00\x01" + b"\x00\x09\x00\x10\x01\x00\x10\x00"
    frames += await answers(bench, b"\x00\x34\x06" + configure)
    frames += await answers(bench, b"\x00\x36\x08" + b"\x00\x01\x00" + b"\x00\x09\x00")
    frames += await answers(bench, b"\x05\x02\x10\x21\x00")
    discover, configured, read_config, refused = dissect(
        [air_frame(PRICE, frame, n + 1) for n, frame in enumerate(frames)], tmp_path
    )
    assert not any(p.malformed for p in (discover, configured, read_config, refused))
    assert discover.show("zbee_zcl.cmd.id") == ["0x0d"]
    assert discover.show("zbee_zcl_se.price.attr_id") == ["0x0000", "0x0001"]
    assert discover.show("zbee_zcl.attr.data.type") == ["0x42", "0x20"]
    for packet, command in ((configured, "0x07"), (read_config, "0x09")):
        assert packet.show("zbee_zcl.cmd.id") == [command]
        assert packet.show("zbee_zcl.attr.status") == ["0x8c", "0x86"]
        assert packet.show("zbee_zcl_se.price.attr_id") == ["0x0001", "0x0009"]
    assert refused.show("zbee_zcl.cmd.mc") == ["0x1002"]
    assert refused.show("zbee_zcl.cmd.id.rsp") == ["0x00"]
    assert refused.show("zbee_zcl.attr.status") == ["0x83"]


async def test_device_endpoints_without_the_side_ignore_the_broadcast_endpoint() -> None:
    """ZCL r8 2.3.2.1 on the simulated device: a unicast for its endpoint 0xFF reaches only the
    endpoints hosting the side of the cluster the frame is for; endpoint 2, with no Price
    client, answered UNSUPPORTED_CLUSTER."""
    _, _, se, device = await network(12)
    device.add_endpoint(2, device_type=0x0502, in_clusters=[], out_clusters=[0x0703])
    se.security.require_aps_encryption = False
    se.add_handler(0x0700, lambda m: None, general=True)  # the answers reach `seen`, not a reply
    seen: list[ZclMessage] = []

    async def listen() -> None:
        async for m in se.messages():
            seen.append(m)

    task = asyncio.get_running_loop().create_task(listen())
    assert device.nwk is not None
    try:
        # Read Attributes from the Price server (server to client): for the Price clients
        await se.send(device.nwk, 0xFF, 0x0700, 0x00, b"\x00\x00", cluster_specific=False)
        await asyncio.sleep(1)
    finally:
        task.cancel()
    assert {m.src_ep for m in seen} == {1}
    assert [m.command_id for m in seen] == [foundation.GeneralCommand.Read_Attributes_rsp]


def test_stick_endpoints_without_the_side_ignore_the_broadcast_endpoint() -> None:
    """The same rule on the HAN device on a stick (`zse.roles.han_stick`)."""
    from tests.han_stick.test_han_stick_garbage import Silent  # noqa: PLC0415
    from zse.radios.han import Incoming  # noqa: PLC0415
    from zse.roles.han_stick import StickDevice  # noqa: PLC0415

    async def run() -> list[int]:
        device = StickDevice(Silent(), link_key=bytes(16))  # type: ignore[arg-type]
        got: list[int] = []
        for endpoint_id, outs in ((1, [0x0700]), (2, [0x0703]), (3, [])):
            endpoint = device.add_endpoint(endpoint_id, out_clusters=outs, in_clusters=[0x0700])
            endpoint._receive = lambda _, e=endpoint_id: got.append(e)  # type: ignore[method-assign]
        for frame_control in (0x08, 0x00):  # server to client (the clients), then the servers
            device._incoming(
                Incoming(
                    src_nwk=0,
                    src_ep=1,
                    dst_ep=0xFF,
                    cluster_id=0x0700,
                    profile_id=0x0109,
                    payload=bytes((frame_control, 0x01, 0x00, 0x00, 0x00)),
                    aps_encrypted=True,
                    broadcast=False,
                    group=None,
                    lqi=255,
                    rssi=-40,
                )
            )
        return got

    assert asyncio.run(run()) == [1, 1, 2, 3]
