"""One captured record in, one decoded frame out: link, MAC, NWK and APS security, commands.

:class:`CaptureDecoder` is sans-IO and keeps what a sniffer learns as the capture goes: the
keys (:class:`~zse.capture.keys.KeyRing`, grown by every decrypted Transport Key), the EUI-64
behind each short address (NWK headers, auxiliary security headers, Device Announce), needed
for the APS nonce when a frame does not carry its sender's address (ZB 4.5.2.2). The APS frame
an APS Tunnel command carries (ZB 4.4.9.8) is decoded, decrypted and learned from as a frame of
its own. The blocks of a fragmented transfer (ZB 2.2.8.4.5) are held until one completes it
(:mod:`zse.capture.reassembly`); that frame decodes the whole. A MAC payload that is no
ZigBee NWK frame (Wireshark's heuristic: 6LoWPAN, MAC-secured, ...) is labelled
``not_zigbee``, not malformed. A ZEP version 2 sequence number that does not
follow the last one from the same sniffer (the datagram's IP source address and UDP source
port, and the device id) keeps that one (``zep_previous``): the sniffer dropped frames, or the
network lost them, in between.

Security processing is :mod:`zse.security`'s (ZB 4.3.1.2, 4.4.1.2): a frame is decrypted with
the first key whose MIC verifies. A sniffer hears retries and several networks, so frame
counters are reported, not enforced. A frame that does not decode (any
:class:`~zse.errors.DecodeError`) keeps what did, with an ``error`` naming the layer and
offset; only a record the link layer cannot read (wrong link type, broken TAP header) raises
:class:`~zse.capture.reader.CaptureError`, and a record of a ZEP carrier with no 802.15.4
frame in it its :class:`~zse.capture.zep.SkippedRecord`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zse.capture.app import decode_application
from zse.capture.frames import (
    APS_TUNNEL,
    APS_TUNNEL_HEADER,
    NWK_COMMANDS,
    Aps,
    GreenPower,
    Mac,
    Nwk,
    decode_aps,
    decode_aps_command,
    decode_gp,
    decode_mac,
    decode_mac_payload,
    decode_nwk,
    eui64_text,
    is_gp,
    not_zigbee,
)
from zse.capture.keys import Key, KeyRing
from zse.capture.link import Link, mac_frame
from zse.capture.reader import Record
from zse.capture.reassembly import Reassembled, Reassembly
from zse.capture.zep import ZEP_PORT
from zse.errors import DecodeError, InvalidFrame, InvalidSecurityHeader
from zse.security import (
    AuxHeader,
    KeyId,
    Sealed,
    Unsecured,
    aps_key,
    split_aps,
    split_interpan_aps,
    split_nwk,
)

__all__ = ["CaptureDecoder", "Decoded", "Security"]

_NWK_SECURITY_BIT = 0x02  # in the frame control's second byte (ZB 3.3.1.1)
_APS_SECURITY_BIT = 0x20
_DEVICE_ANNOUNCE = 0x0013
_MAC_SECURED = "802.15.4 MAC security, not decrypted"  # ZigBee secures NWK and APS only
#: A frame of IEEE 802.15.4-2015's frame version 2 (7.2.1.9: its own addressing rules and
#: information elements), which ZigBee (2003/2006 frames) never sends: not decoded further.
_MAC_2015 = "IEEE 802.15.4-2015 frame (version 2), not decoded"
#: the most ZEP sniffers (source, device id) whose sequence numbers are followed: as many as
#: there are device ids, so a hostile capture cannot grow the table past what one source could
_ZEP_SNIFFERS = 1 << 16
_KEY_ID_NAMES = {key_id: key_id.name.lower() for key_id in KeyId}


@dataclass(slots=True)
class Security:
    """One layer's security: the auxiliary header's fields and the outcome."""

    layer: str
    aux: AuxHeader
    source: int | None
    key: str | None = None  #: the label of the key that decrypted it
    failure: str | None = None  #: why it was not decrypted
    #: the decrypted payload (may hold a transported key: never printed as such)
    payload: bytes | None = field(default=None, repr=False)

    def fields(self) -> dict[str, Any]:
        """JSON-ready fields, the layer first (the key's label, never the key)."""
        out: dict[str, Any] = {
            "layer": self.layer,
            "key_id": _KEY_ID_NAMES[self.aux.key_id],
            "counter": self.aux.counter,
        }
        if self.aux.key_seq is not None:
            out["key_seq"] = self.aux.key_seq
        if self.source is not None:
            out["source"] = eui64_text(self.source)
        if self.key is not None:
            out["decrypted_with"] = self.key
        if self.failure is not None:
            out["not_decrypted"] = self.failure
        return out


@dataclass(slots=True)
class Decoded:
    """A captured frame, decoded as far as it goes."""

    record: Record
    link: Link
    mac: Mac | None = None
    mac_fields: dict[str, Any] = field(default_factory=dict)
    nwk: Nwk | None = None
    #: a Green Power frame's stub NWK header (instead of ``nwk``)
    gp: GreenPower | None = None
    nwk_command: dict[str, Any] | None = None
    aps: Aps | None = None
    #: an APS Tunnel command (ZB 4.4.9.8): ``dst``; ``tunnelled`` is the APS frame it
    #: carries and ``command`` that frame's command
    tunnel: dict[str, Any] | None = None
    tunnelled: Aps | None = None
    security: list[Security] = field(default_factory=list)
    command: dict[str, Any] | None = None
    error: str | None = None
    #: why the MAC payload is not decoded: not ZigBee (6LoWPAN, ...) or MAC-secured
    not_zigbee: str | None = None
    learned: list[str] = field(default_factory=list)
    #: the MAC frame with NWK/APS security removed, when a layer was decrypted
    unsecured: bytes | None = None
    #: the sequence number of the last ZEP version 2 packet from the same sniffer (IP source
    #: address, UDP source port and device id), when this one's does not follow it (packets
    #: lost or repeated between them)
    zep_previous: int | None = None
    #: the transfer this frame's block completed (ZB 2.2.8.4.5): ``command`` is decoded from
    #: its payload; a block that completes none has no ``command``
    reassembled: Reassembled | None = None

    @property
    def decrypted(self) -> bool:
        """True if every secured layer was decrypted (and at least one was secured)."""
        return bool(self.security) and all(s.key is not None for s in self.security)

    def __repr__(self) -> str:
        # never the frame's bytes: a decrypted Transport Key carries a key
        command = (self.command or self.nwk_command or {}).get("command")
        return (
            f"Decoded(frame={self.record.number}, src={self.source()}, "
            f"dst={self.destination()}, command={command!r}, error={self.error!r})"
        )

    def source(self) -> str | None:
        """The sender: the NWK source when there is a NWK header, else the MAC source."""
        if self.nwk is not None and self.nwk.src is not None:
            return f"0x{self.nwk.src:04x}"
        return None if self.mac is None else self.mac.address("src")

    def destination(self) -> str | None:
        """The addressee: NWK destination, else the APS group, else the MAC destination."""
        if self.nwk is not None and self.nwk.dst is not None:
            return f"0x{self.nwk.dst:04x}"
        return None if self.mac is None else self.mac.address("dst")


class CaptureDecoder:
    """Decodes records in capture order, learning keys and addresses as it goes."""

    def __init__(self, keys: KeyRing | None = None, *, zep_port: int = ZEP_PORT) -> None:
        self.keys = keys if keys is not None else KeyRing()
        self.zep_port = zep_port  #: the UDP port ZEP is read from or to (17754)
        self.addresses: dict[int, int] = {}  #: NWK short address -> EUI-64
        #: (sender EUI-64, NWK destination) -> the link key that opened it (one key a pair)
        self._aps_key: dict[tuple[int, int | None], Key] = {}
        self._nwk_key: dict[int, Key] = {}  #: sender EUI-64 -> the network key that opened it
        self.frames = 0
        self.decrypted = 0
        self.failed = 0
        self.attempts = 0  #: decryptions tried (MIC checks), for bounding the work a frame
        #: (ZEP datagram's source, device id) -> last sequence number
        self._zep_sequence: dict[tuple[bytes | None, int], int] = {}
        self.reassembly = Reassembly()  #: the fragmented transfers under way

    def decode(self, record: Record) -> Decoded:
        """Decode ``record``; raises :class:`~zse.capture.reader.CaptureError` only for a
        record the link layer cannot read (a link type not read, a broken TAP header), and
        its :class:`~zse.capture.zep.SkippedRecord` for a record of a ZEP carrier that holds
        no 802.15.4 frame (ARP, another UDP port, a ZEP acknowledgement): not counted."""
        link = mac_frame(record, self.zep_port)
        out = Decoded(record, link)
        self.frames += 1
        zep = link.zep
        if zep is not None and zep.sequence is not None:
            self._follow(out, (zep.source, zep.device), zep.sequence)
        try:
            if link.error is not None:
                raise InvalidFrame(link.error)
            self._decode(out)
        except DecodeError as exc:  # any layer's: one bad record is one malformed frame
            out.error = str(exc)
        if out.security:
            opened = True
            for security in out.security:
                if security.failure is not None:
                    self.failed += 1
                    break
                opened = opened and security.key is not None
            else:
                self.decrypted += opened
        return out

    def _follow(self, out: Decoded, sniffer: tuple[bytes | None, int], sequence: int) -> None:
        """Note on ``out`` a ZEP sequence number that does not follow the last one from
        the same sniffer (``sniffer``: the datagram's IP source address and UDP source port,
        and the device id, which tools leave at a default): the sniffer dropped packets, or
        they were lost on the way (the counter is 32 bits and wraps). At most
        :data:`_ZEP_SNIFFERS` sniffers are followed: the table starts afresh when a new one
        would pass that."""
        table = self._zep_sequence
        previous = table.get(sniffer)
        if previous is None and len(table) >= _ZEP_SNIFFERS:
            table.clear()
        table[sniffer] = sequence
        if previous is not None and sequence != (previous + 1) & 0xFFFFFFFF:
            out.zep_previous = previous

    def _decode(self, out: Decoded) -> None:  # noqa: PLR0912 - one branch per layer
        try:
            mac, payload = decode_mac(out.link.frame)
        except InvalidFrame:
            frame = out.link.frame
            if len(frame) >= 2 and (frame[1] >> 4) & 3 == 2:  # frame version 2
                out.not_zigbee = _MAC_2015
                return
            raise
        out.mac = mac
        if not _nwk_frame(out, mac, payload):
            return
        nwk, rest = decode_nwk(payload)
        out.nwk = nwk
        if nwk.src_ieee is not None and nwk.src is not None:
            self.addresses[nwk.src] = nwk.src_ieee
        nwk_bytes = payload[: nwk.length]
        if nwk.security:
            opened = self._nwk(out, nwk, mac, payload)
            if opened is None:
                return
            rest = opened.payload
            nwk_bytes = _clear(opened.header, 1, _NWK_SECURITY_BIT)
        if nwk.frame_type == 1:
            out.nwk_command = _nwk_command(rest)
            if nwk.security:
                out.unsecured = out.link.frame[: mac.length] + nwk_bytes + rest
            return
        aps, app = decode_aps(rest, inter_pan=nwk.frame_type == 3)
        out.aps = aps
        aps_bytes = rest[: aps.length]
        decrypted = bool(out.security)  # every secured layer so far was decrypted
        if aps.security:
            opened = self._aps(out, aps, nwk, mac, rest, nwk.dst)
            decrypted = opened is not None
            if opened is not None:
                app = opened.payload
                aps_bytes = _clear(opened.header, 0, _APS_SECURITY_BIT)
        if decrypted:
            out.unsecured = out.link.frame[: mac.length] + nwk_bytes + aps_bytes + app
        elif aps.security:
            return
        if aps.fragmentation and aps.frame_type != 2:  # a block of a fragmented transfer
            whole = self._block(out, aps, mac, nwk, app)
            if whole is None:
                return
            out.reassembled, app = whole, whole.payload
        if aps.frame_type == 1:
            headers = out.link.frame[: mac.length] + nwk_bytes + aps_bytes
            self._command(out, nwk, mac, headers, app)
        elif aps.frame_type in (0, 3) and aps.cluster is not None:
            out.command = decode_application(aps, app)
            out.error = out.command.pop("malformed", None)
            if aps.cluster == _DEVICE_ANNOUNCE and out.command["layer"] == "zdo":
                self._announce(app)

    def _command(self, out: Decoded, nwk: Nwk, mac: Mac, headers: bytes, app: bytes) -> None:
        """An APS command (ZB 4.4.9): a Tunnel's frame decoded, a Transport Key's key kept;
        ``headers`` are the MAC, NWK and APS headers as :attr:`Decoded.unsecured` has them."""
        out.command = {"layer": "aps", **decode_aps_command(app)}
        if app[0] == APS_TUNNEL:
            self._tunnel(out, nwk, mac, headers, app)
        else:
            self._learn(out, out.command)

    def _block(
        self, out: Decoded, aps: Aps, mac: Mac, nwk: Nwk, payload: bytes
    ) -> Reassembled | None:
        """Hold the (decrypted) block ``payload`` of a fragmented transfer (ZB 2.2.8.4.5):
        the whole if it completes its transfer, else None (its payload is not decoded, as
        Wireshark's data dissector shows it). A block with no payload is not held, as in
        Wireshark."""
        if not payload:
            return None
        assert aps.block is not None
        record = out.record
        return self.reassembly.add(
            (mac.src_pan, nwk.src, nwk.dst, aps.counter),
            aps.fragmentation,
            aps.block,
            payload,
            record.number,
            record.time_ns,
        )

    def _nwk(self, out: Decoded, nwk: Nwk, mac: Mac, frame: bytes) -> Unsecured | None:
        """Decrypt a NWK frame with the first network key that opens it: the key that last
        opened a frame of the same sender, then the one that opened the frame's key sequence
        number, then the others that apply (:meth:`KeyRing.network_keys`). The frame is split
        once (the nonce and the authenticated bytes do not depend on the key); each try checks
        the MIC."""
        if not self.keys:
            aux, _ = AuxHeader.decode(frame[nwk.length :])  # why not: the header as sent
            out.security.append(Security("nwk", aux, aux.source, None, "no network key held"))
            self._nwk_source(nwk, mac, aux)
            if aux.key_id != KeyId.NETWORK or aux.key_seq is None:
                raise InvalidFrame(
                    f"NWK auxiliary header at offset {nwk.length}: key "
                    f"{aux.key_id.name.lower()}, not the network key"
                )
            return None
        sealed = split_nwk(frame)
        aux = sealed.aux
        source, key_seq = aux.source, aux.key_seq
        assert source is not None
        assert key_seq is not None
        tried = self._nwk_key.get(source)
        if tried is not None:
            self.attempts += 1
            payload = sealed.open(tried.key, source)
            if payload is not None:
                return self._nwk_opened(out, nwk, mac, sealed, tried, payload)
        for key in self.keys.network_keys(key_seq):
            if key is tried:
                continue
            self.attempts += 1
            payload = sealed.open(key.key, source)
            if payload is not None:
                return self._nwk_opened(out, nwk, mac, sealed, key, payload)
        out.security.append(Security("nwk", aux, source, None, "MIC fails with every key"))
        self._nwk_source(nwk, mac, aux)
        return None

    def _nwk_opened(  # noqa: PLR0917 - the frame's parts
        self, out: Decoded, nwk: Nwk, mac: Mac, sealed: Sealed, key: Key, payload: bytes
    ) -> Unsecured:
        aux = sealed.aux
        assert aux.key_seq is not None
        assert aux.source is not None
        self.keys.opened(aux.key_seq, key)
        self._nwk_key[aux.source] = key
        out.security.append(Security("nwk", aux, aux.source, key.label, None, payload))
        self._nwk_source(nwk, mac, aux)
        return Unsecured(sealed.header, aux, aux.source, payload)

    def _nwk_source(self, nwk: Nwk, mac: Mac, aux: AuxHeader) -> None:
        """The sender's EUI-64 the auxiliary header carries, for a frame from its origin."""
        if aux.source is not None and nwk.src is not None and mac.src == nwk.src:
            self.addresses[nwk.src] = aux.source

    def _aps(  # noqa: PLR0917 - the frame's parts
        self, out: Decoded, aps: Aps, nwk: Nwk, mac: Mac, frame: bytes, partner: int | None
    ) -> Unsecured | None:
        """Decrypt the APS frame ``frame`` of header ``aps`` with the first link key whose
        MIC verifies, the one that opened the last frame from its sender to ``partner``
        first."""
        if aps.frame_type == 3 and aps.delivery != 0:
            aux, _ = AuxHeader.decode(frame[aps.length :])  # shown, as Wireshark does
            out.security.append(
                Security(
                    "aps",
                    aux,
                    aux.source,
                    None,
                    "APS security on an inter-PAN broadcast or group frame: a link key is a "
                    "pair's, so zse (and Silicon Labs) secure inter-PAN unicasts only",
                )
            )
            return None
        short: InvalidFrame | None = None  # a MIC cut short: raised once a key is tried
        split = split_interpan_aps if aps.frame_type == 3 else split_aps
        try:
            sealed: Sealed | None = split(frame)
        except InvalidSecurityHeader:
            raise
        except InvalidFrame as exc:
            sealed, short = None, exc
        aux = sealed.aux if sealed is not None else AuxHeader.decode(frame[aps.length :])[0]
        sender = aux.source
        if sender is None and aps.frame_type == 3 and mac.src_long:
            sender = mac.src  # inter-PAN: the nonce's source is the MAC source (docs/interpan.md)
        if sender is None and nwk.src is not None:
            sender = self.addresses.get(nwk.src)
        if sender is None and out.security:
            sender = out.security[0].source
        security = Security("aps", aux, sender)
        out.security.append(security)
        if sender is None:
            security.failure = "sender's EUI-64 unknown (no extended nonce)"
            return None
        if not self.keys:
            security.failure = "no link key held"
            return None
        if sealed is None:
            assert short is not None
            raise short
        pair = (sender, partner)
        first = self._aps_key.get(pair)
        held = self.keys.link_keys()
        candidates = held if first is None else [first, *(key for key in held if key is not first)]
        if aux.key_id != KeyId.NETWORK:  # APS frames under the network key: not supported
            for key in candidates:
                self.attempts += 1
                payload = sealed.open(aps_key(aux.key_id, key.key), sender)
                if payload is None:
                    continue
                self._aps_key[pair] = key
                security.key, security.payload = key.label, payload
                return Unsecured(sealed.header, aux, sender, payload)
        security.failure = "MIC fails with every key"
        return None

    def _tunnel(self, out: Decoded, nwk: Nwk, mac: Mac, headers: bytes, app: bytes) -> None:
        """The APS frame an APS Tunnel command carries (ZB 4.4.9.8, the Trust Center's
        Transport Key to a device joined through a router, ZB 4.6.3.2), decoded as Wireshark
        does: its header, its security (the key-transport key of the destination's link
        key), its command, and the key it transports learned. ``app`` is the Tunnel command,
        ``headers`` the MAC, NWK and APS headers before it as :attr:`Decoded.unsecured` has
        them."""
        tunnel = out.command
        assert tunnel is not None
        out.tunnel, out.command = tunnel, None
        frame = app[APS_TUNNEL_HEADER:]
        inner, payload = decode_aps(frame)
        if inner.frame_type == 3:
            raise InvalidFrame(f"APS tunnel at offset {APS_TUNNEL_HEADER}: an inter-PAN frame")
        out.tunnelled = inner
        inner_bytes = frame[: inner.length]
        if inner.security:
            partner = int.from_bytes(app[1:APS_TUNNEL_HEADER], "little")
            opened = self._aps(out, inner, nwk, mac, frame, partner)
            if opened is None:
                out.unsecured = None  # written as captured
                return
            payload = opened.payload
            inner_bytes = _clear(opened.header, 0, _APS_SECURITY_BIT)
            out.unsecured = headers + app[:APS_TUNNEL_HEADER] + inner_bytes + payload
        if inner.frame_type == 1:
            out.command = {"layer": "aps", **decode_aps_command(payload)}
            self._learn(out, out.command)

    def _learn(self, out: Decoded, command: dict[str, Any]) -> None:
        """Keep the key of a decrypted Transport Key (a network key with its sequence
        number; a link key otherwise)."""
        key = command.get("key")
        if not isinstance(key, bytes):
            return
        seq = command.get("key_seq")
        kind = "network key" if seq is not None else "link key"
        learned = self.keys.learn(key, f"{kind} from frame {out.record.number}", seq)
        if learned is not None:
            out.learned.append(learned.label)

    def _announce(self, payload: bytes) -> None:
        if len(payload) >= 11:
            short = payload[1] | payload[2] << 8
            self.addresses[short] = int.from_bytes(payload[3:11], "little")


def _nwk_frame(out: Decoded, mac: Mac, payload: bytes) -> bool:
    """Whether ``payload`` is a ZigBee NWK frame to decode; if not, ``out`` gets what it is:
    a MAC command or beacon, a Green Power frame, not ZigBee (MAC-secured, 6LoWPAN...)."""
    if mac.security:
        out.not_zigbee = _MAC_SECURED
    elif mac.frame_type != 1:
        out.mac_fields = decode_mac_payload(mac, payload)
    elif payload and is_gp(payload):
        out.gp = decode_gp(payload)
    elif payload:
        out.not_zigbee = not_zigbee(mac, payload)
        return out.not_zigbee is None
    return False


def _clear(header: bytes, index: int, bit: int) -> bytes:
    """``header`` with ``bit`` of byte ``index`` cleared (the security bit)."""
    return header[:index] + bytes((header[index] & ~bit,)) + header[index + 1 :]


def _nwk_command(payload: bytes) -> dict[str, Any]:
    if not payload:
        raise InvalidFrame("NWK command frame: no command id")
    return {
        "layer": "nwk",
        "command": NWK_COMMANDS.get(payload[0], f"0x{payload[0]:02x}"),
        "payload": payload[1:].hex(),
    }
