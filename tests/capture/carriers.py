"""Captures of ZEP feeds, built byte by byte for the tests: ZEP versions 1 and 2 in UDP over
IPv4 and IPv6, in every link type zse capture reads them from, with the records a real feed
is interleaved with (ARP, TCP, other UDP ports, IP fragments, ZEP acks), and the IEEE 802.15.4
non-ASK PHY link type. Layouts from RFC 791/768/8200, IEEE 802.3/802.1Q, the tcpdump
link-type list and Wireshark's packet-zep.c; tshark is the oracle that reads them back."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from pathlib import Path

from zse.pcap import fcs

ZEP_PORT = 17754
#: raw IEEE 802.15.4: Linux's protocol number in a cooked record, Wireshark's ethertype
ETH_P_IEEE802154, ETHERTYPE_IEEE802154 = 0x00F6, 0x809A
#: ARPHRD types of a Linux cooked record: an 802.15.4 node, its monitor, netlink
ARPHRD_IEEE802154, ARPHRD_IEEE802154_MONITOR, ARPHRD_NETLINK = 804, 805, 824
#: ARPHRD types packet-sll.c reads otherwise: Frame Relay, IP GRE, 802.11 radiotap
ARPHRD_FRAD, ARPHRD_IPGRE, ARPHRD_RADIOTAP = 770, 778, 803
#: Linux protocol ETH_P_ALL in a cooked record: an Ethernet frame follows
ETH_P_ALL = 0x0003
NTP_EPOCH = 2_208_988_800  # seconds from 1900 to 1970
ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_ARP = 0x0800, 0x86DD, 0x0806
#: The link types ZEP travels in, as zse reads them.
CARRIER_LINKTYPES = (0, 1, 101, 108, 113, 228, 229, 276)
NONASK_PHY = 215


def with_fcs(mac: bytes) -> bytes:
    return mac + fcs(mac).to_bytes(2, "little")


def cc24xx(mac: bytes, rssi: int, fcs_ok: bool, correlation: int = 100) -> bytes:
    """The MAC frame with TI CC24xx metadata in place of its FCS (ZEP's LQI mode)."""
    return mac + struct.pack("bB", rssi, (0x80 if fcs_ok else 0) | correlation)


def zep_v1(psdu: bytes, *, channel: int = 11, device: int = 0x1234, crc: bool = True,
           lqi: int = 200, length: int | None = None) -> bytes:  # fmt: skip
    size = len(psdu) if length is None else length
    header = b"EX" + struct.pack(">BBHBB", 1, channel, device, 1 if crc else 0, lqi)
    return header + bytes(7) + bytes((size,)) + psdu


def zep_v2(psdu: bytes, *, channel: int = 15, device: int = 0x4321, crc: bool = True,
           lqi: int = 180, sequence: int = 7, time_ns: int = 1_700_000_000_500_000_000,
           kind: int = 1, version: int = 2, length: int | None = None,
           ntp: tuple[int, int] | None = None) -> bytes:  # fmt: skip
    """ZEP version 2; ``ntp`` (seconds, fraction) is the timestamp as sent, else ``time_ns``."""
    size = len(psdu) if length is None else length
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    fraction = (nanos << 32) // 1_000_000_000 + 1  # rounded up: reads back to the ns
    stamp = ((seconds + NTP_EPOCH) % 2**32, fraction) if ntp is None else ntp
    header = b"EX" + struct.pack(
        ">BBBHBBIII", version, kind, channel, device, 1 if crc else 0, lqi, *stamp, sequence
    )  # fmt: skip
    return header + bytes(10) + bytes((size,)) + psdu


def zep_ack(sequence: int) -> bytes:
    return b"EX" + struct.pack(">BBI", 2, 2, sequence)


def udp(payload: bytes, *, source: int = 49152, destination: int = ZEP_PORT,
        length: int | None = None) -> bytes:  # fmt: skip
    size = 8 + len(payload) if length is None else length
    return struct.pack(">HHHH", source, destination, size, 0) + payload


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(payload: bytes, *, protocol: int = 17, fragment: int = 0x4000,
         total: int | None = None, options: bytes = b"", version: int = 4,
         source: bytes = bytes((192, 168, 1, 20))) -> bytes:  # fmt: skip
    """An IPv4 packet (``fragment``: flags and offset; DF by default)."""
    size = 20 + len(options)
    length = size + len(payload) if total is None else total
    header = struct.pack(
        ">BBHHHBBH4s4s", version << 4 | size // 4, 0, length, 0x1234, fragment, 64, protocol, 0,
        source, bytes((192, 168, 1, 10)),
    ) + options  # fmt: skip
    return header[:10] + struct.pack(">H", _checksum(header)) + header[12:] + payload


IPV6_SOURCE = bytes.fromhex("fe80" + "00" * 13 + "14")


def ipv6(payload: bytes, *, next_header: int = 17, extensions: bytes = b"",
         source: bytes = IPV6_SOURCE) -> bytes:  # fmt: skip
    """An IPv6 packet; ``extensions`` are the extension headers, ``next_header`` the first's."""
    body = extensions + payload
    destination = bytes.fromhex("fe80" + "00" * 13 + "0a")
    return struct.pack(">IHBB", 6 << 28, len(body), next_header, 64) + source + destination + body


def hop_by_hop(next_header: int) -> bytes:
    return bytes((next_header, 0, 1, 4, 0, 0, 0, 0))  # a PadN option


def fragment_header(next_header: int, *, offset: int = 0, more: bool = False) -> bytes:
    return struct.pack(">BBHI", next_header, 0, offset << 3 | more, 0x5EED)


def ethernet(packet: bytes, ethertype: int, *, vlan: int | None = None, pad: bool = True) -> bytes:
    tag = b"" if vlan is None else struct.pack(">HH", 0x8100, vlan)
    frame = bytes.fromhex("02000000000a020000000014") + tag + struct.pack(">H", ethertype) + packet
    return frame + bytes(max(0, 60 - len(frame)) if pad else 0)  # padded to Ethernet's minimum


def sll(packet: bytes, ethertype: int, *, hatype: int = 1) -> bytes:
    """Linux cooked v1; ``hatype`` the ARPHRD type (1 Ethernet, 770 Frame Relay, 778 IP GRE,
    803 802.11 radiotap, 804 IEEE 802.15.4, 805 its monitor, 824 netlink), ``ethertype`` the
    protocol (0x00F6: ETH_P_IEEE802154, 3: ETH_P_ALL, an Ethernet frame)."""
    address = bytes.fromhex("0200000000140000")
    return struct.pack(">HHH8sH", 0, hatype, 6, address, ethertype) + packet


def sll2(packet: bytes, ethertype: int, *, hatype: int = 1) -> bytes:
    address = bytes.fromhex("0200000000140000")
    return struct.pack(">HHIHBB8s", ethertype, 0, 2, hatype, 0, 6, address) + packet


ARP = bytes.fromhex("0001080006040001020000000014c0a80114000000000000c0a8010a")


def _ethertype_of(packet: bytes) -> int:
    return ETHERTYPE_IPV6 if packet[0] >> 4 == 6 else ETHERTYPE_IPV4


#: How each carrier link type wraps an IP packet (version by its first nibble).
WRAP: dict[int, Callable[[bytes], bytes]] = {
    0: lambda p: struct.pack("<I", 30 if p[0] >> 4 == 6 else 2) + p,  # Darwin's AF_INET6
    1: lambda p: ethernet(p, _ethertype_of(p)),
    101: lambda p: p,
    108: lambda p: struct.pack(">I", 24 if p[0] >> 4 == 6 else 2) + p,
    113: lambda p: sll(p, _ethertype_of(p)),
    228: lambda p: p,
    229: lambda p: p,
    276: lambda p: sll2(p, _ethertype_of(p)),
}

TCP = struct.pack(">HHIIHHHH", 49153, 80, 1, 0, 0x5002, 512, 0, 0)  # a SYN
DNS = bytes.fromhex("123401000001000000000000")


def noise(linktype: int, index: int) -> list[bytes]:
    """Records without a ZEP data packet that a feed's capture holds: TCP, DNS, a ZEP ack,
    an IP fragment (IPv6 in link type 229, IPv4 elsewhere) and ARP where there is a link
    layer to carry it."""
    fragment = udp(zep_v2(bytes(12)))
    if linktype == 229:
        datagrams = [
            ipv6(TCP, next_header=6),
            ipv6(udp(DNS, source=53000, destination=53)),
            ipv6(udp(zep_ack(index), source=ZEP_PORT)),
            ipv6(fragment, next_header=44, extensions=fragment_header(17, more=True)),
        ]
    else:
        datagrams = [
            ipv4(TCP, protocol=6),
            ipv4(udp(DNS, source=53000, destination=53)),
            ipv4(udp(zep_ack(index), source=ZEP_PORT)),
            ipv4(fragment, fragment=0x2000),  # a first fragment: More Fragments set
        ]
    records = [WRAP[linktype](datagram) for datagram in datagrams]
    if linktype == 1:
        records.append(ethernet(ARP, ETHERTYPE_ARP))
    elif linktype in (113, 276):
        records.append((sll if linktype == 113 else sll2)(ARP, ETHERTYPE_ARP))
    return records


def nonask_phy(psdu: bytes, *, length: int | None = None) -> bytes:
    """IEEE 802.15.4 non-ASK PHY: preamble (4 zero bytes), SFD 0xA7, PHR, PSDU."""
    return bytes(4) + bytes((0xA7, len(psdu) if length is None else length)) + psdu


def write_pcap(
    path: Path, linktype: int, records: Sequence[bytes], start: int = 1_700_000_000
) -> Path:
    with path.open("wb") as file:
        file.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for index, record in enumerate(records):
            file.write(struct.pack("<IIII", start + index, 0, len(record), len(record)) + record)
    return path


def _block(kind: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def write_pcapng(path: Path, linktypes: Sequence[int], records: Sequence[tuple[int, bytes]],
                 start: int = 1_700_000_000) -> Path:  # fmt: skip
    """A pcapng file with one interface per link type of ``linktypes`` and the records
    (interface index, bytes) in order, one second apart (microsecond timestamps)."""
    out = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    for linktype in linktypes:
        out += _block(1, struct.pack("<HHI", linktype, 0, 65535))
    for index, (interface, data) in enumerate(records):
        micros = (start + index) * 1_000_000
        head = struct.pack(
            "<IIIII", interface, micros >> 32, micros & 0xFFFFFFFF, len(data), len(data)
        )
        out += _block(6, head + data)
    path.write_bytes(out)
    return path
