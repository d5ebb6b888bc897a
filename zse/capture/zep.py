"""ZigBee Encapsulation Protocol (ZEP) and the network headers it travels in.

Sniffers that feed Wireshark over the network (TI's SmartRF Packet Sniffer 2, Silicon Labs'
tools, ZBOSS and killerbee set-ups) send each 802.15.4 frame in a UDP datagram to port 17754
with a ZEP header before it; a capture of that feed holds Ethernet (or Linux cooked, raw IP,
BSD loopback) records. Layouts as Wireshark 4.0 dissects them (packet-zep.c, packet-eth.c,
packet-sll.c, packet-null.c, packet-ip.c, packet-ipv6.c, packet-udp.c), each checked against
tshark in tests/capture/test_capture_zep.py; where the header is not one of these layouts zse
is stricter than tshark, which reads any version from 2 up, any type but an ack, as version 2
data and a length past the bytes present as far as they go: zse calls such a packet one
malformed frame rather than guess (docs/capture.md). ZEP is big-endian:

* version 1 (16 bytes): "EX", version (1), channel, device id (16 bits), LQI/CRC mode,
  LQI, 7 reserved bytes, length;
* version 2 data (32 bytes): "EX", version (2), type (1), channel, device id, LQI/CRC mode,
  LQI, NTP timestamp (64 bits: seconds since 1900, fraction), sequence number (32 bits),
  10 reserved bytes, length;
* version 2 ack (8 bytes): "EX", version (2), type (2), sequence number; no frame;

then the PSDU, ``length`` bytes (the byte's low 7 bits). A mode byte other than 0 is CRC
mode: the PSDU ends with the 2-byte FCS. Mode 0 (LQI mode) ends it with TI CC24xx metadata
instead: RSSI (signed, dB), then FCS-OK (bit 7) and correlation (bits 0-6). The timestamp
is read as RFC 4330 section 3 (and Wireshark's ``ENC_TIME_NTP``) reads it: seconds with the
top bit clear are of the era that starts in 2036, and a timestamp of zero is "not known"
(RFC 5905 section 6); the fraction is rounded down to the nanosecond.

The same Linux cooked and Ethernet records also carry raw IEEE 802.15.4 frames, as Wireshark's
packet-ieee802154.c registers them: a Linux cooked record of protocol ``ETH_P_IEEE802154``
(0x00F6, linux/if_ether.h: what ``tcpdump -i any`` writes for a wpan or monitor interface)
and a record of ethertype 0x809A (Wireshark's ``wpan.802154_ethertype``, behind any 802.1Q
tags, in Ethernet and Linux cooked records) hold the MAC frame and its 2-byte FCS, all the
bytes to the record's end (an Ethernet frame's padding too, as tshark reads them). A Linux
cooked record is read as packet-sll.c reads it (:func:`_linux`): by its ARPHRD type first
(netlink; radiotap and Frame Relay for a Linux protocol number; a GRE tunnel's protocols), and
Linux protocol ETH_P_ALL (3) holds a whole Ethernet frame.

:func:`carried` finds the ZEP datagram or the raw frame in a record, :func:`udp_payload` the
datagram alone; :func:`decode_zep` reads ZEP. They raise :class:`~zse.errors.InvalidFrame`
for a header they cannot read (one malformed frame) and :class:`SkippedRecord` for a record
that carries no 802.15.4 frame (ARP, TCP, other UDP ports, IP fragments, ZEP acks, netlink,
radiotap). :func:`carried` also gives a datagram's source (IP source address and UDP source
port), which keeps apart the sniffers that share a device id (:class:`Zep`).
Checksums (IPv4 header, UDP) are not checked, as in Wireshark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from zse.capture.reader import CaptureError
from zse.errors import InvalidFrame

__all__ = [
    "CARRIERS",
    "ZEP_PORT",
    "SkippedRecord",
    "Zep",
    "carried",
    "decode_zep",
    "udp_payload",
]

#: The UDP port of ZEP (Wireshark's default, packet-zep.c ZEP_DEFAULT_PORT).
ZEP_PORT = 17754

_PREAMBLE = b"EX"
_V1_HEADER, _V2_HEADER, _V2_ACK = 16, 32, 8
_DATA, _ACK = 1, 2
_LENGTH_MASK = 0x7F
_NTP_TO_UNIX = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
_NTP_ERA = 1 << 32  # seconds in an NTP era (1900-01-01 to 2036-02-07)
_NTP_ERA_0 = 1 << 31  # the seconds' top bit: set in 1968-2036, clear from 2036 (RFC 4330)

#: ethertypes: IPv4 (bytes 08 00, in decimal: the project's checks keep that hex spelling for
#: the Key Establishment cluster id alone), IPv6, and the 802.1Q and 802.1ad tags
_IPV4, _IPV6, _VLAN = 2048, 0x86DD, (0x8100, 0x88A8)
#: IEEE 802.15.4 frames: the ethertype Wireshark gives them (wpan.802154_ethertype, 0x809A),
#: and Linux's protocol number ETH_P_IEEE802154 in a cooked record (sll.ltype 0x00F6)
_ETHERTYPE_802154, _ETH_P_IEEE802154 = 0x809A, 0x00F6
#: a Linux cooked protocol up to 1536 (0x0600) is a Linux protocol number, not an ethertype
#: (packet-sll.c; ``ETH_P_802_3_MIN`` in linux/if_ether.h)
_LINUX_PROTOCOL_MAX = 0x0600
#: Linux protocol ETH_P_ALL in a cooked record: a whole Ethernet frame follows (packet-sll.c
#: hands it to its eth dissector, sll.ltype 3)
_ETH_P_ALL = 0x0003
#: ARPHRD types (linux/if_arp.h) a cooked record of a Linux protocol number is dissected by
#: before its protocol (packet-sll.c, sll.hatype): not 802.15.4 frames
_ARPHRD_NOT_OURS = {770: "Frame Relay", 803: "802.11 radiotap"}
#: Linux cooked records of a netlink (nlmon) interface: netlink messages whatever the
#: protocol (ARPHRD_NETLINK)
_ARPHRD_NETLINK = 824
#: Linux cooked records of a GRE tunnel: the protocol is GRE's (ARPHRD_IPGRE)
_ARPHRD_IPGRE = 778
#: GRE protocols (gre.proto) read: IP (IPv4, WCCP's), Ethernet (0x6558 and 0x6400)
_GRE_IP, _GRE_ETHERNET = (2048, 0x883E), (0x6558, 0x6400)
_UDP = 17
#: IPv6 extension headers walked to reach UDP: hop-by-hop, routing, fragment, destination
_HOP_BY_HOP, _ROUTING, _FRAGMENT, _DESTINATION = 0, 43, 44, 60
#: BSD loopback address families: AF_INET, and AF_INET6 of NetBSD/OpenBSD, FreeBSD, Darwin
_AF_INET, _AF_INET6 = 2, (24, 28, 30)


class SkippedRecord(CaptureError):
    """A record of a carrier link type (Ethernet, Linux cooked, raw IP, loopback) that holds
    no IEEE 802.15.4 frame: ARP, TCP, UDP to other ports, an IP fragment, a ZEP ack. It is
    not an error of the capture: ``zse capture`` and :func:`~zse.capture.decode_capture`
    skip it (tshark shows it as a frame with no 802.15.4 layer), keeping the numbers of the
    records after it."""


@dataclass(frozen=True, slots=True)
class Zep:
    """A ZEP data packet: version, channel, device id, whether the PSDU ends with its FCS
    (CRC mode) or with TI CC24xx metadata (LQI mode), LQI, and for version 2 the sequence
    number and the sniffer's time of reception (ns since the Unix epoch; None when the
    timestamp is zero, NTP's "not known"); the PSDU; the datagram's source (IP source address
    and UDP source port as :func:`carried` gives it; None when not known)."""

    version: int
    channel: int
    device: int
    crc: bool
    lqi: int
    sequence: int | None
    time_ns: int | None
    psdu: bytes = b""
    source: bytes | None = None

    def __repr__(self) -> str:
        return f"Zep(v{self.version}, channel={self.channel}, {len(self.psdu)} bytes)"


def decode_zep(data: bytes, source: bytes | None = None) -> Zep:
    """The ZEP packet ``data`` (a UDP payload from ``source``, as :func:`carried` gives it);
    :class:`SkippedRecord` for a version 2 ack,
    :class:`~zse.errors.InvalidFrame` for anything else that is not ZEP version 1 or 2 data
    with a length that matches the bytes after its header."""
    if len(data) < _V2_ACK:
        raise InvalidFrame(f"ZEP header truncated: {len(data)} bytes")
    if data[:2] != _PREAMBLE:
        raise InvalidFrame(f'ZEP preamble 0x{data[:2].hex()}, not "EX"')
    version = data[2]
    if version == 1:
        header, kind = _V1_HEADER, _DATA
    elif version == 2:
        header, kind = _V2_HEADER, data[3]
    else:
        raise InvalidFrame(f"ZEP version {version}, not 1 or 2")
    if kind == _ACK:
        if len(data) != _V2_ACK:
            raise InvalidFrame(f"ZEP ack of {len(data)} bytes, not {_V2_ACK}")
        raise SkippedRecord(f"ZEP ack, sequence number {int.from_bytes(data[4:8], 'big')}")
    if kind != _DATA:
        raise InvalidFrame(f"ZEP type {kind}, neither data (1) nor ack (2)")
    if len(data) < header:
        raise InvalidFrame(f"ZEP version {version} header truncated: {len(data)} of {header} bytes")
    length = data[header - 1] & _LENGTH_MASK
    if length != len(data) - header:
        raise InvalidFrame(
            f"ZEP length {length}, but {len(data) - header} bytes follow the {header}-byte header"
        )
    psdu = data[header:]
    if version == 1:
        return Zep(
            1,
            data[3],
            int.from_bytes(data[4:6], "big"),
            data[6] != 0,
            data[7],
            None,
            None,
            psdu,
            source,
        )
    return Zep(
        2, data[4], int.from_bytes(data[5:7], "big"), data[7] != 0, data[8],
        int.from_bytes(data[17:21], "big"), _ntp_time_ns(data[9:17]), psdu, source,
    )  # fmt: skip


def _ntp_time_ns(stamp: bytes) -> int | None:
    """The 64-bit NTP timestamp ``stamp`` (seconds, fraction) in ns since the Unix epoch,
    the fraction rounded down, as Wireshark reads it: seconds with the top bit clear are of
    era 1, from 2036-02-07 (RFC 4330 section 3); all zeros, "not known" (RFC 5905 section
    6), is None."""
    seconds, fraction = int.from_bytes(stamp[:4], "big"), int.from_bytes(stamp[4:], "big")
    if not seconds and not fraction:
        return None
    if not seconds & _NTP_ERA_0:
        seconds += _NTP_ERA
    return (seconds - _NTP_TO_UNIX) * 1_000_000_000 + (fraction * 1_000_000_000 >> 32)


def carried(linktype: int, data: bytes, port: int = ZEP_PORT) -> tuple[bytes, bytes | None]:
    """What the record ``data`` of a :data:`CARRIERS` link type carries: the payload of its
    UDP datagram from or to ``port`` (a ZEP packet) and the datagram's source (its IP source
    address, 4 or 16 bytes, then its UDP source port, 2 bytes, as sent), or a raw IEEE
    802.15.4 frame with its FCS and None; :class:`SkippedRecord` if it holds neither,
    :class:`~zse.errors.InvalidFrame` for a header that cannot be read."""
    payload, cut, address = CARRIERS[linktype][1](data)
    if address is None:
        return payload, None
    return _udp(payload, cut, port), address + payload[:2]


def udp_payload(linktype: int, data: bytes, port: int = ZEP_PORT) -> bytes:
    """The payload of the UDP datagram from or to ``port`` that the record ``data`` of a
    :data:`CARRIERS` link type holds; :class:`SkippedRecord` if it holds none (a raw
    802.15.4 frame too), :class:`~zse.errors.InvalidFrame` for a header that cannot be
    read."""
    payload, source = carried(linktype, data, port)
    if source is None:
        raise SkippedRecord("a raw IEEE 802.15.4 frame, not a UDP datagram")
    return payload


def _u16(data: bytes, offset: int) -> int:
    return data[offset] << 8 | data[offset + 1]


def _short(what: str, data: bytes, size: int) -> None:
    if len(data) < size:
        raise InvalidFrame(f"{what} truncated: {len(data)} of {size} bytes")


# -- link layers: each returns the IP packet's payload, why it is cut short (or None) and its
# IP source address, or a raw IEEE 802.15.4 frame (with its FCS), None and None --------------

#: what a carrier's record holds: (payload, why it is cut short or None, IP source address or
#: None for a raw 802.15.4 frame)
_Carried = tuple[bytes, str | None, bytes | None]


def _ethernet(data: bytes) -> _Carried:
    """Ethernet II (IEEE 802.3 clause 3.1.1): destination, source, ethertype, behind any
    802.1Q / 802.1ad tags (4 bytes each: tag protocol id, then tag control)."""
    _short("Ethernet header", data, 14)
    return _ethertype(_u16(data, 12), data, 14)


def _sll(data: bytes) -> _Carried:
    """Linux cooked capture v1 (``LINKTYPE_LINUX_SLL``): packet type, ARPHRD type, address
    length, address (8 bytes), protocol (see :func:`_linux`), all big-endian."""
    _short("Linux cooked header", data, 16)
    return _linux(_u16(data, 2), _u16(data, 14), data, 16)


def _sll2(data: bytes) -> _Carried:
    """Linux cooked capture v2 (``LINKTYPE_LINUX_SLL2``): protocol (:func:`_linux`), reserved,
    interface index, ARPHRD type, packet type, address length, address (8 bytes)."""
    _short("Linux cooked v2 header", data, 20)
    return _linux(_u16(data, 8), _u16(data, 0), data, 20)


def _linux(hatype: int, protocol: int, data: bytes, offset: int) -> _Carried:
    """A Linux cooked record's payload, as Wireshark 4.0's packet-sll.c reads it (checked
    against tshark in tests/capture/test_capture_linux_wpan.py):

    * ARPHRD type 824 (netlink): netlink messages, skipped, whatever the protocol;
    * a protocol up to 0x0600 is a Linux protocol number: under ARPHRD type 770 (Frame
      Relay) or 803 (802.11 radiotap) the record is that link's frame, skipped; else
      ETH_P_IEEE802154 (0x00F6) is a raw 802.15.4 frame and its FCS, ETH_P_ALL (3) a whole
      Ethernet frame (read as in :func:`_ethernet`), any other skipped;
    * a protocol above 0x0600 under ARPHRD type 778 (IP GRE) is GRE's (:func:`_gre`);
    * any other is an ethertype (behind any 802.1Q tags), whatever the ARPHRD type.
    """
    if hatype == _ARPHRD_NETLINK:
        raise SkippedRecord("a Linux netlink message")
    if protocol <= _LINUX_PROTOCOL_MAX:
        if hatype in _ARPHRD_NOT_OURS:
            raise SkippedRecord(f"ARPHRD type {hatype} ({_ARPHRD_NOT_OURS[hatype]})")
        if protocol == _ETH_P_IEEE802154:
            return data[offset:], None, None
        if protocol == _ETH_P_ALL:
            return _ethernet(data[offset:])
        raise SkippedRecord(
            f"Linux protocol 0x{protocol:04x}, neither Ethernet, IP nor IEEE 802.15.4"
        )
    if hatype == _ARPHRD_IPGRE:
        return _gre(protocol, data[offset:])
    return _ethertype(protocol, data, offset)


def _gre(protocol: int, data: bytes) -> _Carried:
    """The payload of a GRE tunnel's record by its protocol, as Wireshark 4.0's gre.proto
    table has it: IP (the IPv4 ethertype, and 0x883E: WCCP), IPv6, Ethernet (0x6558:
    transparent Ethernet bridging, and 0x6400); no 802.1Q tag nor 0x809A is read there."""
    if protocol in _GRE_IP:
        return _ip(data)
    if protocol == _IPV6:
        return _ipv6(data)
    if protocol in _GRE_ETHERNET:
        return _ethernet(data)
    raise SkippedRecord(f"GRE protocol 0x{protocol:04x}, neither Ethernet nor IP")


def _ethertype(ethertype: int, data: bytes, offset: int) -> _Carried:
    while ethertype in _VLAN:
        _short(f"802.1Q tag at offset {offset}", data[offset:], 4)
        ethertype = _u16(data, offset + 2)
        offset += 4
    if ethertype == _IPV4:
        return _ip(data[offset:])
    if ethertype == _IPV6:
        return _ipv6(data[offset:])
    if ethertype == _ETHERTYPE_802154:
        return data[offset:], None, None
    raise SkippedRecord(f"ethertype 0x{ethertype:04x}, neither IP nor IEEE 802.15.4")


def _null(data: bytes) -> _Carried:
    """BSD loopback (``LINKTYPE_NULL``): the address family, 32 bits in the byte order of the
    machine that captured (read little-endian, swapped when the upper half is set)."""
    _short("loopback header", data, 4)
    family = int.from_bytes(data[:4], "little")
    if family & 0xFFFF0000:
        family = int.from_bytes(data[:4], "big")
    return _family(family, data)


def _loop(data: bytes) -> _Carried:
    """OpenBSD loopback (``LINKTYPE_LOOP``): the address family, 32 bits big-endian."""
    _short("loopback header", data, 4)
    return _family(int.from_bytes(data[:4], "big"), data)


def _family(family: int, data: bytes) -> _Carried:
    if family == _AF_INET:
        return _ip(data[4:])
    if family in _AF_INET6:
        return _ipv6(data[4:])
    raise SkippedRecord(f"address family {family}, not IP")


# -- IP and UDP --------------------------------------------------------------------------------


def _ip(data: bytes) -> _Carried:
    """An IPv4 or IPv6 packet, by its version (as Wireshark does for link types 101 and 228,
    the IPv4 ethertype and AF_INET)."""
    _short("IP header", data, 1)
    version = data[0] >> 4
    if version == 4:
        return _ipv4(data)
    if version == 6:
        return _ipv6(data)
    raise InvalidFrame(f"IP version {version}, neither 4 nor 6")


def _ipv4(data: bytes) -> _Carried:
    """RFC 791: the payload of a UDP packet that is not a fragment. A total length of 0 is
    taken as the bytes captured (segmentation offload, as Wireshark does)."""
    _short("IPv4 header", data, 20)
    size = (data[0] & 0x0F) * 4
    if size < 20:
        raise InvalidFrame(f"IPv4 header length {size}, less than 20")
    _short("IPv4 header", data, size)
    if _u16(data, 6) & 0x3FFF:  # More Fragments, or an offset
        raise SkippedRecord("IPv4 fragment")
    if data[9] != _UDP:
        raise SkippedRecord(f"IP protocol {data[9]}, not UDP")
    total = _u16(data, 2) or len(data)
    if total < size:
        raise InvalidFrame(f"IPv4 total length {total}, less than its {size}-byte header")
    if total > len(data):
        cut = f"IPv4 total length {total} exceeds the {len(data)} bytes captured"
        return data[size:], cut, data[12:16]
    return data[size:total], None, data[12:16]  # without an Ethernet frame's padding


def _ipv6(data: bytes) -> _Carried:
    """RFC 8200: the payload of a UDP packet, behind hop-by-hop, routing and destination
    options headers and an atomic fragment header (offset 0, no more fragments)."""
    _short("IPv6 header", data, 40)
    if data[0] >> 4 != 6:
        raise InvalidFrame(f"IPv6 header: version {data[0] >> 4}, not 6")
    length, kind = _u16(data, 4), data[6]
    end = 40 + length if length else len(data)  # 0: a jumbogram or offload, as Wireshark
    cut = None
    if end > len(data):
        cut = f"IPv6 payload length {length} exceeds the {len(data) - 40} bytes captured"
    data = data[:end]
    offset = 40
    while kind in (_HOP_BY_HOP, _ROUTING, _FRAGMENT, _DESTINATION):
        _short(f"IPv6 extension header {kind} at offset {offset}", data[offset:], 8)
        if kind == _FRAGMENT and _u16(data, offset + 2) & 0xFFF9:  # offset, More Fragments
            raise SkippedRecord("IPv6 fragment")
        size = 8 if kind == _FRAGMENT else (data[offset + 1] + 1) * 8
        _short(f"IPv6 extension header {kind} at offset {offset}", data[offset:], size)
        kind = data[offset]
        offset += size
    if kind != _UDP:
        raise SkippedRecord(f"IPv6 next header {kind}, not UDP")
    return data[offset:], cut, data[8:24]


def _udp(segment: bytes, cut: str | None, port: int) -> bytes:
    """RFC 768: the payload of a datagram from or to ``port``; its length bounds it."""
    if len(segment) >= 4:
        source, destination = _u16(segment, 0), _u16(segment, 2)
        if port not in (source, destination):
            raise SkippedRecord(f"UDP {source} -> {destination}, not ZEP's port {port}")
    if cut is not None:
        raise InvalidFrame(cut)
    _short("UDP header", segment, 8)
    length = _u16(segment, 4)
    if length < 8:
        raise InvalidFrame(f"UDP length {length}, less than its 8-byte header")
    if length > len(segment):
        raise InvalidFrame(f"UDP length {length} exceeds the {len(segment)}-byte IP payload")
    return segment[8:length]


_Carrier = Callable[[bytes], _Carried]
#: The link types whose records may carry ZEP: link type -> (name, its header's reader).
CARRIERS: dict[int, tuple[str, _Carrier]] = {
    0: ("NULL", _null),
    1: ("ETHERNET", _ethernet),
    101: ("RAW", _ip),
    108: ("LOOP", _loop),
    113: ("LINUX_SLL", _sll),
    228: ("IPV4", _ip),
    229: ("IPV6", _ipv6),
    276: ("LINUX_SLL2", _sll2),
}
