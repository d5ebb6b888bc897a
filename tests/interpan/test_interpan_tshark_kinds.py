"""Every kind of inter-PAN frame zse sends, as Wireshark reads it (issue #20, proof): Key
Establishment both ways, every Tunneling command, the installer's handover and its answer, all
APS-secured with the link key (tshark decrypts them given it), and fragment responses: no
malformed packet. Inter-PAN message fragments (IPMF) are the one exception, and why is pinned
here: they are Silicon Labs' format (``interpan.h``/``interpan.c``: control, index, count,
length right after the stub APS header, recognised by the receiver from those octets alone,
with no APS frame-control flag: Silicon Labs' receiver refuses any APS frame-control bit but the
delivery mode and security), and Wireshark (``packet-zbee-aps.c``, 4.0 and later) has no IPMF
dissector, so it hands a fragment to the ZCL dissector, which reads the control octet as a
profile-wide frame control, the index as the sequence number and the count as the command."""

from __future__ import annotations

from zigpy.types import EUI64

from tests.clusters.se_frames import dissect
from tests.oracles import zigbee_key_options
from tests.tunneling.test_tunneling_tshark import CASES as TUNNELING_CASES
from zse.cbke.messages import (
    ConfirmKeyDataRequest,
    ConfirmKeyDataResponse,
    EphemeralDataRequest,
    EphemeralDataResponse,
    InitiateKeyEstablishmentRequest,
    InitiateKeyEstablishmentResponse,
    TerminateKeyEstablishment,
    TerminateStatus,
)
from zse.installcode import InstallCode
from zse.installer.service import HANDOVER_CLUSTER, _encode_handover, _handover_frame
from zse.interpan._codec import DeliveryMode, InterPanFrame
from zse.interpan.fragment import fragment_response, split
from zse.interpan.ke import _zcl
from zse.interpan.secure import seal_frame
from zse.se.ids import KEY_ESTABLISHMENT, TUNNELING
from zse.zcl.codec import encode_command

TERMINAL = EUI64.convert("00:0d:6f:00:0f:00:00:42")
HUB = EUI64.convert("00:0d:6f:00:00:00:00:01")
KEY = bytes(range(0x40, 0x50))


def _frame(cluster: int, payload: bytes, *, from_hub: bool) -> InterPanFrame:
    src, dst = (HUB, TERMINAL) if from_hub else (TERMINAL, HUB)
    return InterPanFrame(
        src_pan_id=0x1A62 if from_hub else 0xFFFF,
        src_ieee=src,
        dst_pan_id=0xFFFF if from_hub else 0x1A62,
        dst_address=dst,
        delivery_mode=DeliveryMode.UNICAST,
        cluster_id=cluster,
        payload=payload,
    )


def _key_establishment() -> list[tuple[str, InterPanFrame]]:
    initiate = {
        "suite": 1,
        "ephemeral_data_generate_time": 5,
        "confirm_key_generate_time": 5,
        "identity": bytes(range(48)),
    }
    ends = [
        (InitiateKeyEstablishmentRequest(**initiate), False),
        (InitiateKeyEstablishmentResponse(**initiate), True),
        (EphemeralDataRequest(ephemeral_data=bytes(22)), False),
        (EphemeralDataResponse(ephemeral_data=bytes(22)), True),
        (ConfirmKeyDataRequest(mac=bytes(16)), False),
        (ConfirmKeyDataResponse(mac=bytes(16)), True),
        (
            TerminateKeyEstablishment(status=TerminateStatus.NO_RESOURCES, wait_time=10, suite=1),
            True,
        ),
        (
            TerminateKeyEstablishment(status=TerminateStatus.BAD_MESSAGE, wait_time=0, suite=1),
            False,
        ),
    ]
    return [
        (
            f"ke.{type(message).__name__}",
            _frame(KEY_ESTABLISHMENT, _zcl(message, i, from_server=hub), from_hub=hub),
        )
        for i, (message, hub) in enumerate(ends)
    ]


def _tunneling() -> list[tuple[str, InterPanFrame]]:
    out = []
    for i, (definition, from_server, fields, _) in enumerate(TUNNELING_CASES):
        control = 0x01 | 0x10 | (0x08 if from_server else 0)
        zcl = bytes((control, i, int(definition.id))) + encode_command(definition.schema(**fields))
        out.append((f"tunneling.{definition.name}", _frame(TUNNELING, zcl, from_hub=from_server)))
    return out


def _handover() -> list[tuple[str, InterPanFrame]]:
    code = InstallCode.from_bytes(bytes.fromhex("83FED3407A939723A5C639B26916D505C3B5"))
    request = _handover_frame(1, _encode_handover(TERMINAL, code), from_server=False)
    return [
        ("handover", _frame(HANDOVER_CLUSTER, request, from_hub=False)),
        (
            "handover.answer",
            _frame(HANDOVER_CLUSTER, _handover_frame(1, b"\x00", from_server=True), from_hub=True),
        ),
        (
            "handover.busy",
            _frame(
                HANDOVER_CLUSTER,
                _handover_frame(2, b"\x02\x1e\x00", from_server=True),
                from_hub=True,
            ),
        ),
    ]


def test_every_interpan_frame_kind_dissects_with_no_malformed_packet(tmp_path):
    kinds = _key_establishment()  # unsecured: there is no key yet
    secured = (
        _tunneling()
        + _handover()
        + [
            ("fragment.response", _frame(TUNNELING, fragment_response(3, True), from_hub=True)),
            ("fragment.failure", _frame(TUNNELING, fragment_response(1, False), from_hub=False)),
        ]
    )
    kinds += [(name, seal_frame(f, link_key=KEY, counter=i)) for i, (name, f) in enumerate(secured)]
    kinds += [("plain." + name, f) for name, f in secured if name.startswith("fragment.")]
    packets = dissect(
        [f.to_bytes() for _, f in kinds],
        tmp_path,
        zigbee_key_options([f'"{KEY.hex()}","Normal","inter-PAN"']),
    )
    assert len(packets) == len(kinds)
    bad = [name for (name, _), p in zip(kinds, packets, strict=True) if p.malformed]
    assert bad == []
    for (name, frame), packet in zip(kinds, packets, strict=True):
        assert packet.show("zbee_aps.cluster") == [f"0x{frame.cluster_id:04x}"], name
        if frame.aps_security:
            assert packet.show("zbee.sec.decryption_key") == ["inter-PAN"], name
    shown = [name for p in packets for name, _, _ in p.fields]
    assert shown.count("zbee_zcl_se.ke.cmd.srv_rx.id") == 4
    assert shown.count("zbee_zcl_se.ke.cmd.srv_tx.id") == 4
    tunneling = sum(
        n in ("zbee_zcl_se.tun.cmd.srv_rx.id", "zbee_zcl_se.tun.cmd.srv_tx.id") for n in shown
    )
    assert tunneling == len(TUNNELING_CASES)


def test_wireshark_reads_an_interpan_fragment_as_a_zcl_frame(tmp_path):
    """Why fragments are the exception: Wireshark shows the IPMF header as ZCL (profile-wide,
    sequence = fragment index, command = fragment count), decrypted with the key."""
    message = bytes((0x11, 0x05, 0x02, 0x07, 0x00)) + bytes(range(200))
    fragments = split(message, 60)
    frames = [
        seal_frame(_frame(TUNNELING, f, from_hub=False), link_key=KEY, counter=i)
        for i, f in enumerate(fragments)
    ]
    packets = dissect(
        [f.to_bytes() for f in frames],
        tmp_path,
        zigbee_key_options([f'"{KEY.hex()}","Normal","inter-PAN"']),
    )
    for index, packet in enumerate(packets):
        assert packet.show("zbee.sec.decryption_key") == ["inter-PAN"]
        assert packet.show("zbee_zcl.type") == ["0x00"]  # the IPMF control octet, 0x00
        assert packet.show("zbee_zcl.cmd.tsn") == [str(index)]
        assert packet.raw("zbee_zcl.cmd.id") == [f"{len(fragments):02x}"]


def test_wireshark_decrypts_the_extended_nonce_form_only(tmp_path):
    """Why zse sends the sender's EUI-64 in the auxiliary header by default: Wireshark finds no
    nonce source for Silicon Labs' 5-octet header on an inter-PAN frame ('Extended Source:
    Unknown') and leaves it encrypted; the 13-octet form it decrypts."""
    zcl = bytes((0x19, 1, 0x00, 7, 0, 0x00, 0x50, 0))  # Request Tunnel Response
    frame = _frame(TUNNELING, zcl, from_hub=True)
    short = seal_frame(frame, link_key=KEY, counter=1, extended_nonce=False)
    long = seal_frame(frame, link_key=KEY, counter=2)
    short_packet, long_packet = dissect(
        [short.to_bytes(), long.to_bytes()],
        tmp_path,
        zigbee_key_options([f'"{KEY.hex()}","Normal","inter-PAN"']),
    )
    assert short_packet.show("zbee.sec.decryption_key") == []
    assert short_packet.show("zbee_zcl_se.tun.cmd.srv_tx.id") == []
    assert long_packet.show("zbee.sec.decryption_key") == ["inter-PAN"]
    assert long_packet.show("zbee_zcl_se.tun.cmd.srv_tx.id") == ["0x00"]
