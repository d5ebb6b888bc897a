"""NWK and APS frame security (ZB 4.3.1, 4.4.1): secure a frame, check and decrypt one.

Both layers do the same thing at their own header: the auxiliary security header goes after
the layer's header, whose security bit is set; CCM* at ENC-MIC-32 then authenticates
``a`` = layer header + auxiliary header (with the real security level) and encrypts
``m`` = the layer's payload, and the MIC follows. On the air the security level reads 0
(see :mod:`zse.security.header`).

* NWK (ZB 4.3.1): the network key named by its key sequence number; the auxiliary header
  always carries the sender's EUI-64 (extended nonce).
* APS (ZB 4.4.1): a link key shared with the partner (data key), or the key-transport or
  key-load key derived from it (ZB 4.5.3); the sender's EUI-64 is carried (extended nonce)
  or known to the receiver from the NWK layer.

A frame that fails security processing raises a :class:`~zse.errors.SecurityFailure`:
:class:`~zse.errors.UnknownKey`, :class:`~zse.errors.StaleFrameCounter` (when the caller
passes its :class:`~zse.security.counters.IncomingCounters`) or :class:`~zse.errors.BadMic`;
one that does not even parse raises :class:`~zse.errors.InvalidFrame` (or its subclass
:class:`~zse.errors.InvalidSecurityHeader`). Nothing else, whatever the bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

from zse.errors import BadMic, InvalidFrame, UnknownKey
from zse.security.ccm import (
    MAX_MESSAGE_LENGTH,
    ccm_decrypt,
    ccm_encrypt,
    key_load_key,
    key_transport_key,
)
from zse.security.counters import IncomingCounters
from zse.security.header import ENC_MIC_32, MIC_LENGTH, AuxHeader, KeyId, nonce

__all__ = [
    "COUNTER_EXHAUSTED",
    "Sealed",
    "Unsecured",
    "aps_header_length",
    "aps_key",
    "nwk_header_length",
    "secure_aps",
    "secure_nwk",
    "split_aps",
    "split_interpan_aps",
    "split_nwk",
    "unsecure_aps",
    "unsecure_nwk",
]

# NWK frame control (ZB 3.3.1.1), little-endian 16 bits
_NWK_FRAME_TYPE = 0x0003
_NWK_INTER_PAN = 3
_NWK_VERSION_SHIFT = 2
_NWK_PRO_VERSION = 2
_NWK_GREEN_POWER_VERSION = 3  # the Green Power stub NWK header (GP 14-0563 A.1.4.1)
_NWK_MULTICAST = 1 << 8
_NWK_SECURITY = 1 << 9
_NWK_SOURCE_ROUTE = 1 << 10
_NWK_DST_IEEE = 1 << 11
_NWK_SRC_IEEE = 1 << 12
_NWK_FIXED = 8  # frame control, destination, source, radius, sequence number

# APS frame control (ZB 2.2.5.1.1)
_APS_DATA, _APS_COMMAND, _APS_ACK, _APS_INTER_PAN = 0, 1, 2, 3
_APS_GROUP = 3
_APS_ACK_FORMAT = 1 << 4
_APS_SECURITY = 1 << 5
#: A unicast inter-PAN stub APS header: frame control, cluster, profile (SE B.4.2.2).
_INTER_PAN_UNICAST = 5
_APS_EXTENDED = 1 << 7
_APS_FRAGMENTED = 0b11
_LEVEL_BITS = 0b111  # security level subfield of the security control (ZB 4.5.1.1)
#: The outgoing frame counter that secures no frame (ZB 4.3.1.1 step 1, 4.4.1.1): a sender
#: whose counter reached it sends nothing more under that key (the counter never wraps).
COUNTER_EXHAUSTED = 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class Unsecured:
    """A frame that passed security processing: its header as received, the auxiliary
    header, the sender's EUI-64 used in the nonce, and the decrypted payload."""

    header: bytes
    aux: AuxHeader
    source: int
    payload: bytes

    def __repr__(self) -> str:
        return (
            f"Unsecured(header={self.header.hex()}, aux={self.aux!r}, "
            f"source={self.source:016x}, payload={len(self.payload)} bytes)"
        )


def nwk_header_length(frame: bytes) -> int:
    """The length of the NWK header at the start of ``frame`` (ZB 3.3.1): the 8 fixed bytes,
    the IEEE addresses, multicast control and source route subframe its frame control names.

    Raises :class:`~zse.errors.InvalidFrame` for a truncated header, an inter-PAN frame or a
    protocol version other than 2 (ZigBee 2007 / PRO; version 3 is a Green Power frame).
    """
    if len(frame) < _NWK_FIXED:
        raise InvalidFrame(f"NWK header needs 8 bytes, got {len(frame)}")
    (fc,) = struct.unpack_from("<H", frame)
    if fc & _NWK_FRAME_TYPE == _NWK_INTER_PAN:
        raise InvalidFrame("NWK frame control at offset 0: inter-PAN frames have no NWK header")
    version = (fc >> _NWK_VERSION_SHIFT) & 0xF
    if version == _NWK_GREEN_POWER_VERSION:
        raise InvalidFrame(
            "NWK frame control at offset 0: protocol version 3, a Green Power frame "
            "(its stub NWK header has no ZigBee NWK security)"
        )
    if version != _NWK_PRO_VERSION:
        raise InvalidFrame(f"NWK frame control at offset 0: protocol version {version}, not 2")
    length = _NWK_FIXED + 8 * bool(fc & _NWK_DST_IEEE) + 8 * bool(fc & _NWK_SRC_IEEE)
    length += bool(fc & _NWK_MULTICAST)
    if fc & _NWK_SOURCE_ROUTE:
        if len(frame) <= length:
            raise InvalidFrame(f"NWK source route subframe at offset {length} truncated")
        length += 2 + 2 * frame[length]  # relay count, relay index, relay list
    if len(frame) < length:
        raise InvalidFrame(f"NWK header truncated: needs {length} bytes, got {len(frame)}")
    return length


def aps_header_length(frame: bytes) -> int:
    """The length of the APS header at the start of ``frame`` (ZB 2.2.5.1), extended header
    included. Raises :class:`~zse.errors.InvalidFrame` if truncated or inter-PAN."""
    if not frame:
        raise InvalidFrame("APS header missing")
    fc = frame[0]
    frame_type, delivery = fc & 0b11, (fc >> 2) & 0b11
    if frame_type == _APS_INTER_PAN:
        raise InvalidFrame("APS frame control at offset 0: inter-PAN frames are not secured")
    length = 1
    addressed = frame_type == _APS_DATA or (frame_type == _APS_ACK and not fc & _APS_ACK_FORMAT)
    if addressed:
        if delivery == _APS_GROUP and frame_type == _APS_DATA:
            length += 2  # group address
        else:
            length += 1  # destination endpoint
        length += 5  # cluster, profile, source endpoint
    length += 1  # APS counter
    if fc & _APS_EXTENDED:
        if len(frame) <= length:
            raise InvalidFrame(f"APS extended frame control at offset {length} missing")
        fragmentation = frame[length] & _APS_FRAGMENTED
        length += 1
        if fragmentation:
            length += 1 + (frame_type == _APS_ACK)  # block number, ack bitfield
    if len(frame) < length:
        raise InvalidFrame(f"APS header truncated: needs {length} bytes, got {len(frame)}")
    return length


def _secure(header: bytes, aux: AuxHeader, payload: bytes, key: bytes, source: int) -> bytes:
    a = header + aux.encode(ENC_MIC_32)
    sealed = ccm_encrypt(key, nonce(aux, source), a, payload)
    return header + aux.encode(0) + sealed  # the level is sent as 0 (ZB 4.3.1.1 step 7)


def _check_counter(counter: int) -> None:
    if not 0 <= counter < COUNTER_EXHAUSTED:
        # ZB 4.3.1.1 step 1: a frame counter of 0xFFFFFFFF cannot secure another frame
        raise ValueError(f"outgoing frame counter {counter} is exhausted or out of range")


def secure_nwk(
    header: bytes, payload: bytes, *, key: bytes, key_seq: int, counter: int, source: int
) -> bytes:
    """The NWK frame ``header`` + ``payload`` secured with the network ``key`` of sequence
    number ``key_seq`` (ZB 4.3.1.1): security bit set, auxiliary header with ``source`` (the
    sender's EUI-64) and ``counter``, payload encrypted, MIC appended."""
    if len(header) < 2:
        raise ValueError("NWK header shorter than its frame control")
    flagged = header[:1] + bytes((header[1] | _NWK_SECURITY >> 8,)) + header[2:]
    if nwk_header_length(flagged) != len(flagged):
        raise ValueError(f"{len(header)} bytes are not exactly one NWK header")
    _check_counter(counter)
    aux = AuxHeader(KeyId.NETWORK, counter, source, key_seq)
    return _secure(flagged, aux, payload, key, source)


def secure_aps(
    header: bytes,
    payload: bytes,
    *,
    link_key: bytes,
    counter: int,
    source: int,
    key_id: KeyId = KeyId.DATA,
    extended_nonce: bool = True,
) -> bytes:
    """The APS frame ``header`` + ``payload`` secured (ZB 4.4.1.1) with ``link_key`` itself
    (:attr:`KeyId.DATA`) or the key-transport / key-load key derived from it; ``source`` is
    the sender's EUI-64, carried in the auxiliary header if ``extended_nonce``."""
    if not header:
        raise ValueError("APS header missing")
    flagged = bytes((header[0] | _APS_SECURITY,)) + header[1:]
    if aps_header_length(flagged) != len(flagged):
        raise ValueError(f"{len(header)} bytes are not exactly one APS header")
    _check_counter(counter)
    aux = AuxHeader(key_id, counter, source if extended_nonce else None)
    return _secure(flagged, aux, payload, aps_key(key_id, link_key), source)


def aps_key(key_id: KeyId, link_key: bytes) -> bytes:
    """The key an APS frame of ``key_id`` is secured with, from the ``link_key`` shared with
    the partner (ZB 4.5.3): the link key itself, or the key-transport / key-load key."""
    if key_id == KeyId.KEY_TRANSPORT:
        return key_transport_key(link_key)
    if key_id == KeyId.KEY_LOAD:
        return key_load_key(link_key)
    if key_id == KeyId.DATA:
        return link_key
    raise ValueError("APS frames secured with the network key are not supported")


@dataclass(frozen=True, slots=True)
class Sealed:
    """A secured NWK or APS frame split for security processing (ZB 4.3.1.2, 4.4.1.2): the
    layer's header as received, its auxiliary header, and the encrypted payload with its
    MIC. :meth:`open` checks the MIC with one key; a receiver holding several candidate keys
    (a sniffer) splits the frame once and tries each."""

    header: bytes
    aux: AuxHeader
    rest: bytes  #: encrypted payload, then the 4-byte MIC
    #: ``a`` of CCM* (ZB 4.3.1.2 step 2): header + auxiliary header with the real level
    authenticated: bytes
    _nonce_tail: bytes  # frame counter + security control with the real level

    def nonce(self, source: int) -> bytes:
        """The CCM* nonce with the sender's EUI-64 ``source`` (ZB 4.5.2.2)."""
        return source.to_bytes(8, "little") + self._nonce_tail

    def open(self, key: bytes, source: int) -> bytes | None:
        """The decrypted payload if the MIC verifies with ``key`` and the sender's EUI-64
        ``source``, else ``None``."""
        return ccm_decrypt(key, self.nonce(source), self.authenticated, self.rest)

    def __repr__(self) -> str:
        return f"Sealed(header={self.header.hex()}, aux={self.aux!r}, {len(self.rest)} bytes)"


def _split(frame: bytes, length: int, layer: str) -> Sealed:
    aux, rest = AuxHeader.decode(frame[length:])
    if len(rest) < MIC_LENGTH:
        raise InvalidFrame(
            f"{layer} frame: {len(rest)} bytes after the auxiliary header at offset {length}, "
            f"fewer than the {MIC_LENGTH}-byte MIC"
        )
    if len(rest) - MIC_LENGTH > MAX_MESSAGE_LENGTH:
        # CCM*'s 2-octet length field (ZB A.1): no sender secured this; far beyond a PSDU too
        raise InvalidFrame(
            f"{layer} frame: {len(rest) - MIC_LENGTH}-byte payload after the auxiliary header "
            f"at offset {length}, more than CCM* secures ({MAX_MESSAGE_LENGTH} bytes)"
        )
    # the receiver patches its own level back in before the nonce and the MIC (ZB 4.3.1.2)
    control = bytes(((frame[length] & ~_LEVEL_BITS) | ENC_MIC_32,))
    header = frame[:length]
    aux_end = len(frame) - len(rest)
    authenticated = header + control + frame[length + 1 : aux_end]
    return Sealed(header, aux, rest, authenticated, frame[length + 1 : length + 5] + control)


def split_nwk(frame: bytes) -> Sealed:
    """Split a secured NWK frame (ZB 4.3.1.2): :class:`~zse.errors.InvalidFrame` unless
    its header, security bit and auxiliary header are those of NWK security (the network
    key, the sender's EUI-64 carried)."""
    frame = bytes(frame)
    length = nwk_header_length(frame)
    if not frame[1] & (_NWK_SECURITY >> 8):
        raise InvalidFrame("NWK frame control at offset 0: security bit not set")
    sealed = _split(frame, length, "NWK")
    aux = sealed.aux
    if aux.key_id != KeyId.NETWORK or aux.source is None:
        raise InvalidFrame(
            f"NWK auxiliary header at offset {length}: key {aux.key_id.name.lower()}"
            f"{'' if aux.source is not None else ' without the extended nonce'}; NWK security "
            "uses the network key and carries the source address"
        )
    return sealed


def split_aps(frame: bytes) -> Sealed:
    """Split a secured APS frame (ZB 4.4.1.2): :class:`~zse.errors.InvalidFrame` for a
    truncated header, a clear security bit or a short auxiliary header or MIC."""
    frame = bytes(frame)
    length = aps_header_length(frame)
    if not frame[0] & _APS_SECURITY:
        raise InvalidFrame("APS frame control at offset 0: security bit not set")
    return _split(frame, length, "APS")


def split_interpan_aps(frame: bytes) -> Sealed:
    """Split an APS-secured inter-PAN frame's stub APS header and payload (a unicast stub APS
    header with its security bit, SE B.4.2.2, then the auxiliary header, docs/interpan.md):
    :class:`~zse.errors.InvalidFrame` for anything else."""
    frame = bytes(frame)
    if not frame or frame[0] != _APS_INTER_PAN | _APS_SECURITY:
        got = f"0x{frame[0]:02X}" if frame else "nothing"
        raise InvalidFrame(
            f"inter-PAN APS frame control at offset 0 is {got}, not 0x23 (secured unicast)"
        )
    if len(frame) < _INTER_PAN_UNICAST:
        raise InvalidFrame(f"inter-PAN APS header truncated: {len(frame)} bytes")
    return _split(frame, _INTER_PAN_UNICAST, "inter-PAN APS")


def _unsecure(
    sealed: Sealed, key: bytes, *, source: int, counters: IncomingCounters | None
) -> Unsecured:
    aux = sealed.aux
    if counters is not None:
        counters.check(source, aux.counter)
    payload = sealed.open(key, source)
    if payload is None:
        raise BadMic(
            f"MIC does not verify (frame counter {aux.counter} from {source:016x}, "
            f"key {aux.key_id.name.lower()})"
        )
    if counters is not None:
        counters.accept(source, aux.counter)
    return Unsecured(sealed.header, aux, source, payload)


def unsecure_nwk(
    frame: bytes,
    network_keys: Mapping[int, bytes],
    *,
    counters: IncomingCounters | None = None,
) -> Unsecured:
    """Check and decrypt a secured NWK frame (ZB 4.3.1.2) with the network key its key
    sequence number names in ``network_keys``; ``counters`` (that key's incoming counters),
    if given, rejects a replay and records the frame once its MIC verifies.

    Raises :class:`~zse.errors.UnknownKey`, :class:`~zse.errors.StaleFrameCounter`,
    :class:`~zse.errors.BadMic` or :class:`~zse.errors.InvalidFrame`.
    """
    sealed = split_nwk(frame)
    aux = sealed.aux
    assert aux.key_seq is not None
    assert aux.source is not None
    key = network_keys.get(aux.key_seq)
    if key is None:
        raise UnknownKey(f"no network key with sequence number {aux.key_seq}")
    return _unsecure(sealed, key, source=aux.source, counters=counters)


def unsecure_aps(
    frame: bytes,
    link_key: bytes | None,
    *,
    source: int | None = None,
    counters: IncomingCounters | None = None,
) -> Unsecured:
    """Check and decrypt a secured APS frame (ZB 4.4.1.2) with ``link_key`` (the key shared
    with the sender; ``None`` if none is) or the key-transport / key-load key derived from
    it, as the key identifier says. ``source`` is the sender's EUI-64 when the auxiliary
    header does not carry it (the NWK layer knows it).

    Raises :class:`~zse.errors.UnknownKey`, :class:`~zse.errors.StaleFrameCounter`,
    :class:`~zse.errors.BadMic` or :class:`~zse.errors.InvalidFrame`.
    """
    sealed = split_aps(frame)
    aux = sealed.aux
    sender = aux.source if aux.source is not None else source
    if sender is None:
        raise UnknownKey("APS frame without a source address, and no sender given for the nonce")
    if link_key is None:
        raise UnknownKey(f"no link key shared with {sender:016x}")
    if aux.key_id == KeyId.NETWORK:
        raise UnknownKey("APS frames secured with the network key are not supported")
    key = aps_key(aux.key_id, link_key)
    return _unsecure(sealed, key, source=sender, counters=counters)
