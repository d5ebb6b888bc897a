"""A secured SE conversation built by another tool: scapy's 802.15.4, ZigBee and ZCL layers,
encrypted here with ``cryptography``'s AES-CCM (nonce and MIC input laid out by hand from
ZB 4.5.2.2 and 4.3.1.1, not with zse.security), written as pcapng by scapy's writer.

The story: the Trust Center sends the network key in an APS Transport Key secured with the
key-transport key of the device's install-code link key (NWK in the clear); then, NWK-secured
with that network key: Publish Price to the device, Get Current Price APS-secured with the link
key as well, a Read Attributes of Time, a ZDO Active Endpoints request; last, a Publish Price
whose MIC is broken.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from scapy.config import conf
from scapy.layers.dot15d4 import Dot15d4Data, Dot15d4FCS
from scapy.layers.zigbee import (
    ZCLGeneralReadAttributes,
    ZCLPriceGetCurrentPrice,
    ZCLPricePublishPrice,
    ZDPActiveEPReq,
    ZigbeeAppCommandPayload,
    ZigbeeAppDataPayload,
    ZigbeeClusterLibrary,
    ZigbeeDeviceProfile,
    ZigbeeNWK,
    ZigbeeSecurityHeader,
)
from scapy.packet import Packet, raw
from scapy.utils import PcapNgWriter

from zse.installcode import InstallCode, hmac_mmo

conf.dot15d4_protocol = "zigbee"

#: An install code of tests/vectors/installcode.json's kind (128-bit data + CRC)
INSTALL_CODE = "83FED3407A939723A5C639B26916D505C3B5"
LINK_KEY = InstallCode.parse(INSTALL_CODE).link_key
NETWORK_KEY = bytes.fromhex("0F0E0D0C0B0A09080706050403020100")
TC = 0x00124B0001020304
DEVICE = 0x000D6F000A000001
DEVICE_SHORT = 0x3C1D
PAN = 0x1A62
FIRST_COUNTER = 0x1000
START = 1_700_000_000.25


def _ccm(key: bytes, source: int, counter: int, control: int, a: bytes, m: bytes) -> bytes:
    nonce = source.to_bytes(8, "little") + counter.to_bytes(4, "little") + bytes((control,))
    return AESCCM(key, tag_length=4).encrypt(nonce, m, a)


def _secured(header: Packet, aux: dict[str, int], key: bytes, inner: bytes) -> Packet:
    """``header`` / a ZigBee security header (level 0 on the air) / ``inner`` encrypted."""
    real = ZigbeeSecurityHeader(nwk_seclevel=5, **aux)
    sealed = _ccm(key, aux["source"], aux["fc"], raw(real)[0], raw(header) + raw(real), inner)
    return header / ZigbeeSecurityHeader(nwk_seclevel=0, data=sealed[:-4], mic=sealed[-4:], **aux)


def _mac(seq: int, dst: int, src: int) -> Packet:
    return Dot15d4FCS(
        fcf_frametype=1, fcf_panidcompress=1, fcf_destaddrmode=2, fcf_srcaddrmode=2, seqnum=seq
    ) / Dot15d4Data(dest_panid=PAN, dest_addr=dst, src_addr=src)


def _nwk(seq: int, dst: int, src: int, *, secure: bool) -> Packet:
    flags = "security+extended_src" if secure else "extended_src"
    ext = TC if src == 0 else DEVICE
    return ZigbeeNWK(
        frametype=0, proto_version=2, flags=flags, destination=dst, source=src, radius=30,
        seqnum=seq, ext_src=ext,
    )  # fmt: skip


def _nwk_secured(seq: int, dst: int, src: int, counter: int, aps: bytes) -> Packet:
    source = TC if src == 0 else DEVICE
    aux = {"key_type": 1, "extended_nonce": 1, "fc": counter, "source": source, "key_seqnum": 0}
    return _mac(seq, dst, src) / _secured(_nwk(seq, dst, src, secure=True), aux, NETWORK_KEY, aps)


def _aps_data(cluster: int, profile: int, counter: int, *, secure: bool = False) -> Packet:
    flags = "security" if secure else 0
    return ZigbeeAppDataPayload(
        frame_control=flags, delivery_mode=0, aps_frametype=0, dst_endpoint=1 if profile else 0,
        cluster=cluster, profile=profile, src_endpoint=1 if profile else 0, counter=counter,
    )  # fmt: skip


def _zcl(command: int, tsn: int, *, from_server: bool, general: bool = False) -> Packet:
    return ZigbeeClusterLibrary(
        zcl_frametype=0 if general else 1, command_direction=int(from_server),
        disable_default_response=1, transaction_sequence=tsn, command_identifier=command,
    )  # fmt: skip


PUBLISH_PRICE = _zcl(0x00, 5, from_server=True) / ZCLPricePublishPrice(
    provider_id=0x0A2B, rate_label=b"\x04PEAK", issuer_event_id=1001, current_time=800_000_000,
    unit_of_measure=0, currency=826, price_trailing_digit=0x40, number_of_price_tiers=0x21,
    start_time=0, duration_in_minutes=0xFFFF, price=2450,
)  # fmt: skip


def transport_key() -> Packet:
    """The network key to the device, APS-secured with the key-transport key."""
    command = raw(ZigbeeAppCommandPayload(cmd_identifier=5, key_type=1))[:2] + (
        NETWORK_KEY + bytes((0,)) + DEVICE.to_bytes(8, "little") + TC.to_bytes(8, "little")
    )  # Transport Key, standard network key, sequence number 0 (ZB 4.4.9.2.3)
    header = ZigbeeAppDataPayload(frame_control="security", aps_frametype=1, counter=40)
    aux = {"key_type": 2, "extended_nonce": 1, "fc": 86022, "source": TC}
    key_transport_key = hmac_mmo(LINK_KEY, b"\x00")  # ZB 4.5.3
    aps = _secured(header, aux, key_transport_key, command)
    return _mac(1, DEVICE_SHORT, 0) / _nwk(1, DEVICE_SHORT, 0, secure=False) / aps


def frames() -> list[Packet]:
    """The conversation, in order (see the module)."""
    counter = FIRST_COUNTER
    out = [transport_key()]
    publish = _aps_data(0x0700, 0x0109, 41) / PUBLISH_PRICE
    out.append(_nwk_secured(2, DEVICE_SHORT, 0, counter, raw(publish)))
    get_price = raw(_zcl(0x00, 9, from_server=False) / ZCLPriceGetCurrentPrice(
        Requestor_Rx_On_When_Idle=1
    ))  # fmt: skip
    aps_header = _aps_data(0x0700, 0x0109, 7, secure=True)
    aps_aux = {"key_type": 0, "extended_nonce": 1, "fc": 77, "source": DEVICE}
    aps = _secured(aps_header, aps_aux, LINK_KEY, get_price)
    out.append(_nwk_secured(3, 0, DEVICE_SHORT, 500, raw(aps)))
    read_time = _aps_data(0x000A, 0x0109, 8) / _zcl(0x00, 10, from_server=False, general=True)
    read_time /= ZCLGeneralReadAttributes(attribute_identifiers=[0x0000, 0x0007])
    out.append(_nwk_secured(4, 0, DEVICE_SHORT, 501, raw(read_time)))
    zdo = _aps_data(0x0005, 0x0000, 42) / ZigbeeDeviceProfile(trans_seqnum=3)
    zdo /= ZDPActiveEPReq(nwk_addr=DEVICE_SHORT)
    out.append(_nwk_secured(5, DEVICE_SHORT, 0, counter + 1, raw(zdo)))
    broken = bytearray(raw(_nwk_secured(6, DEVICE_SHORT, 0, counter + 2, raw(publish))))
    broken[-4] ^= 0x01  # the last byte before the FCS: the MIC
    frame = bytes(broken[:-2])
    out.append(Dot15d4FCS(frame + Dot15d4FCS().compute_fcs(frame)))
    return out


def write_pcapng(path: Path) -> list[bytes]:
    """Write the conversation as pcapng (link type 195) with scapy; the frames' bytes."""
    written = []
    with PcapNgWriter(str(path)) as writer:
        for index, frame in enumerate(frames()):
            frame.time = START + index * 0.5
            writer.write(frame)
            written.append(raw(frame))
    return written
