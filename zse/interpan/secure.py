"""APS-secured inter-PAN frames (sans-IO): the link key from key establishment over inter-PAN.

SE 1.x Annex B leaves inter-PAN unsecured. GB smart metering's installer terminal and the
stacks built for it (Silicon Labs' inter-PAN plugin, ``INTERPAN_APS_FRAME_SECURITY``) secure a
*unicast* inter-PAN frame at the APS layer with the link key the two ends share, after key
establishment over inter-PAN (docs/interpan.md, "Secured inter-PAN"):

- the stub APS frame control has its security sub-field (``0x20``) set;
- an auxiliary security header follows the stub APS header (ZB 4.5.1): key identifier *data
  key* (the link key itself, ZB 4.5.3), the 32-bit frame counter and, by default, the extended
  nonce (the sender's EUI-64, which must equal the MAC source address): 13 octets; then the ZCL
  frame encrypted with AES-CCM* and a 4-byte MIC (ENC-MIC-32). Silicon Labs' plugin sends 5 + 4
  octets (``APS_CRYPT_EXTRA_BYTES_NEEDED`` 9 in its ``interpan-*.c``): no extended nonce, the
  nonce's source being the MAC source. zse accepts both on receipt and sends either
  (``extended_nonce``); the default carries it because Wireshark finds the nonce's source only
  in the auxiliary header or in what its NWK layer learned, which an inter-PAN stub does not
  give it: it cannot decrypt the 5-octet form (tested in
  ``tests/interpan/test_interpan_tshark_kinds.py``); the cost is 8 octets;
- the CCM* nonce is the MAC source EUI-64, the frame counter and the security control with
  level 5 (ZB 4.5.2.2); the authenticated data is the stub APS header as sent followed by the
  auxiliary header with level 5, while the level on the air is 0 (ZB 4.3.1.1 step 7), as for
  APS security on the network.

:class:`InterPanSecurity` keeps one node's inter-PAN link keys, its outgoing frame counter and
the incoming counters per sender: a frame that fails (no key, stale counter, bad MIC, not
decodable) is dropped and counted in :attr:`InterPanSecurity.dropped`, never raised. Keys are
never logged or shown.
"""

from __future__ import annotations

import logging
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from zigpy.types import EUI64

from zse.errors import BadMic, DecodeError, InvalidFrame, StaleFrameCounter
from zse.interpan._codec import APS_SECURITY, MAX_ZCL_LENGTH, DeliveryMode, InterPanFrame
from zse.security import (
    COUNTER_EXHAUSTED,
    ENC_MIC_32,
    MIC_LENGTH,
    AuxHeader,
    IncomingCounters,
    KeyId,
    nonce,
)
from zse.security.ccm import ccm_decrypt, ccm_encrypt

__all__ = [
    "MAX_SECURED_ZCL_LENGTH",
    "SECURITY_OVERHEAD",
    "InterPanSecurity",
    "open_frame",
    "seal_frame",
]

LOGGER = logging.getLogger(__name__)

#: Auxiliary header with the extended nonce (13) + MIC (4): what APS security adds.
SECURITY_OVERHEAD = 13 + MIC_LENGTH
#: The longest ZCL frame zse puts in one APS-secured inter-PAN frame (76, either header: the
#: 93 octets it sends in a frame less 13 + 4). A received one may fill the 95 octets a unicast
#: carries (:func:`~zse.interpan.max_payload_length`): 78 octets of ZCL, 86 in Silicon Labs'
#: 5-octet form.
MAX_SECURED_ZCL_LENGTH = MAX_ZCL_LENGTH - SECURITY_OVERHEAD

_UNICAST_APS_FC = 0x03
_CLUSTER_PROFILE = struct.Struct("<HH")


def _aps_header(frame: InterPanFrame) -> bytes:
    """The stub APS header of a secured unicast frame, as sent (SE B.4.2.2)."""
    return bytes((_UNICAST_APS_FC | APS_SECURITY,)) + _CLUSTER_PROFILE.pack(
        frame.cluster_id, frame.profile_id
    )


def _source(frame: InterPanFrame) -> int:
    return int.from_bytes(frame.src_ieee.serialize(), "little")


def seal_frame(
    frame: InterPanFrame, *, link_key: bytes, counter: int, extended_nonce: bool = True
) -> InterPanFrame:
    """``frame`` (unicast, its payload a ZCL frame) APS-secured with ``link_key`` and the
    outgoing frame ``counter``; with ``extended_nonce`` False the auxiliary header is Silicon
    Labs' 5 octets (no source address: the receiver takes the nonce's from the MAC source)."""
    if frame.delivery_mode is not DeliveryMode.UNICAST or frame.aps_security:
        raise ValueError("only an unsecured unicast inter-PAN frame can be secured")
    if len(frame.payload) > MAX_SECURED_ZCL_LENGTH:
        raise ValueError(
            f"ZCL frame of {len(frame.payload)} bytes exceeds {MAX_SECURED_ZCL_LENGTH}, the "
            "most a secured inter-PAN frame carries: fragment it"
        )
    if not 0 <= counter < COUNTER_EXHAUSTED:
        raise ValueError(f"outgoing frame counter {counter} is exhausted or out of range")
    aux = AuxHeader(KeyId.DATA, counter, _source(frame) if extended_nonce else None)
    a = _aps_header(frame) + aux.encode(ENC_MIC_32)
    sealed = ccm_encrypt(link_key, nonce(aux, _source(frame)), a, frame.payload)
    return replace(frame, payload=aux.encode(0) + sealed, aps_security=True)


def open_frame(
    frame: InterPanFrame, *, link_key: bytes, counters: IncomingCounters | None = None
) -> InterPanFrame:
    """The unsecured frame of an APS-secured one. Raises the :class:`~zse.errors.DecodeError`
    family: :class:`~zse.errors.InvalidFrame` (not secured, a header that is not inter-PAN's),
    :class:`~zse.errors.StaleFrameCounter` (a replay, when ``counters`` are given),
    :class:`~zse.errors.BadMic`."""
    if not frame.aps_security:
        raise InvalidFrame("inter-PAN frame is not APS-secured")
    aux, rest = AuxHeader.decode(frame.payload)
    source = _source(frame)
    if aux.key_id != KeyId.DATA or aux.source not in (None, source):
        raise InvalidFrame(
            f"inter-PAN auxiliary security header: key {aux.key_id.name.lower()}, source "
            f"{'absent' if aux.source is None else 'not the MAC source'}; a secured inter-PAN "
            "frame uses the link key (data key), and a source it carries is its sender's"
        )
    if len(rest) < MIC_LENGTH:
        raise InvalidFrame(f"secured inter-PAN frame: {len(rest)} bytes after the header, no MIC")
    if counters is not None:
        counters.check(source, aux.counter)
    a = _aps_header(frame) + aux.encode(ENC_MIC_32)
    plain = ccm_decrypt(link_key, nonce(aux, source), a, rest)
    if plain is None:
        raise BadMic(f"inter-PAN frame from {frame.src_ieee}: MIC does not verify")
    if counters is not None:
        counters.accept(source, aux.counter)
    return replace(frame, payload=plain, aps_security=False, verified=True)


class InterPanSecurity:
    """One node's inter-PAN link keys, outgoing counter and incoming counters (sans-IO).

    ``max_keys`` bounds the key table: the least recently used key goes first. :attr:`dropped`
    counts the frames refused, by reason (``no_key``, ``stale_counter``, ``bad_mic``,
    ``invalid``; ``unsecured``: a frame given to :meth:`open` that is not APS-secured at all.
    An unsecured frame of a command the whitelist wants secured is the window's to refuse,
    ``NOT_WHITELISTED``).
    """

    def __init__(
        self,
        *,
        max_keys: int = 16,
        counter: int = 0,
        on_key: Callable[[EUI64, bytes], None] | None = None,
        extended_nonce: bool = True,
    ) -> None:
        self.max_keys = max_keys
        #: Send the sender's EUI-64 in the auxiliary header (13 octets: what Wireshark needs
        #: to decrypt) or not (Silicon Labs' 5 octets); both are accepted on receipt.
        self.extended_nonce = extended_nonce
        self.counter = counter
        #: Told of each key added (the simulator records it for its capture's key table).
        self.on_key = on_key
        self._keys: OrderedDict[bytes, tuple[bytes, IncomingCounters]] = OrderedDict()
        self.dropped: dict[str, int] = dict.fromkeys(
            ("no_key", "stale_counter", "bad_mic", "invalid", "unsecured"), 0
        )

    def __repr__(self) -> str:
        return f"<InterPanSecurity {len(self._keys)} keys, counter {self.counter}>"

    def add_key(self, partner: EUI64, key: bytes) -> None:
        """Use ``key`` with ``partner`` from now on (a new key restarts its counters)."""
        if len(key) != 16:
            raise ValueError("an inter-PAN link key is 16 bytes")
        name = bytes(partner.serialize())
        self._keys[name] = (bytes(key), IncomingCounters())
        self._keys.move_to_end(name)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        if self.on_key is not None:
            self.on_key(partner, bytes(key))

    def remove_key(self, partner: EUI64) -> None:
        """Forget the key shared with ``partner``."""
        self._keys.pop(bytes(partner.serialize()), None)

    def has_key(self, partner: EUI64) -> bool:
        """Whether a key is shared with ``partner``."""
        return bytes(partner.serialize()) in self._keys

    def seal(self, frame: InterPanFrame) -> InterPanFrame:
        """``frame`` secured with the key shared with its destination (``KeyError`` if none)."""
        assert isinstance(frame.dst_address, EUI64)
        key, _ = self._keys[bytes(frame.dst_address.serialize())]
        sealed = seal_frame(
            frame, link_key=key, counter=self.counter, extended_nonce=self.extended_nonce
        )
        self.counter += 1
        return sealed

    def open(self, frame: InterPanFrame) -> InterPanFrame | None:
        """The unsecured frame, or None (dropped and counted) if it fails security; a frame
        that is not APS-secured at all is counted ``unsecured``."""
        if not frame.aps_security:
            self._drop("unsecured", frame)
            return None
        entry = self._keys.get(bytes(frame.src_ieee.serialize()))
        if entry is None:
            self._drop("no_key", frame)
            return None
        key, counters = entry
        try:
            plain = open_frame(frame, link_key=key, counters=counters)
        except StaleFrameCounter:
            self._drop("stale_counter", frame)
            return None
        except BadMic:
            self._drop("bad_mic", frame)
            return None
        except DecodeError:
            self._drop("invalid", frame)
            return None
        self._keys.move_to_end(bytes(frame.src_ieee.serialize()))
        return plain

    def _drop(self, reason: str, frame: InterPanFrame) -> None:
        self.dropped[reason] += 1
        LOGGER.debug("secured inter-PAN frame from %s dropped: %s", frame.src_ieee, reason)
