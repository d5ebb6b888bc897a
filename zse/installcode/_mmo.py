"""ZigBee AES-MMO hash and HMAC-MMO (ZigBee specification 05-3474, Annex B.6 and B.1.4).

AES-MMO is the Matyas-Meyer-Oseas construction over AES-128: starting from an all-zero hash,
each 16-byte block ``M`` updates the hash ``H`` to ``E_H(M) xor M``. The message is padded with
a 1 bit, zero bits and its bit length. Messages shorter than 2**16 bits use a 16-bit length
field (B.6 case 1); longer messages, up to 2**32 - 1 bits, use a 32-bit length field followed
by 16 zero bits (B.6 case 2). ``zigpy.util.aes_mmo_hash`` only implements the first form.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from typing import Any, cast

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext
from cryptography.hazmat.primitives.ciphers.algorithms import AES128
from cryptography.hazmat.primitives.ciphers.modes import ECB

__all__ = ["BLOCK_SIZE", "DIGEST_SIZE", "MmoHash", "hmac_mmo", "mmo_hash"]

BLOCK_SIZE = 16
DIGEST_SIZE = 16
_ECB = ECB()  # noqa: S305 -- MMO encrypts single blocks by definition (B.6)
_ZERO_KEY = bytes(BLOCK_SIZE)
#: Longest message with a defined padding: the 32-bit length field (B.6 case 2).
_MAX_BITS = (1 << 32) - 1
#: From this many bits on, the 32-bit length form is used.
_LONG_FORM_BITS = 1 << 16
_local = threading.local()


def _zero_key_encryptor() -> CipherContext:
    """The encryptor for the first block, whose key is the all-zero initial hash.

    Creating an AES context costs far more than one block encryption, and every message's
    first block is encrypted under the same key, so one ECB context per thread is reused.
    """
    try:
        return _local.zero  # type: ignore[no-any-return]
    except AttributeError:
        _local.zero = Cipher(AES128(_ZERO_KEY), _ECB).encryptor()
        return _local.zero  # type: ignore[no-any-return]


def _compress(state: bytes, block: bytes) -> bytes:
    """One MMO step: ``E_state(block) xor block``."""
    if state == _ZERO_KEY:
        cipher = _zero_key_encryptor().update(block)
    else:
        cipher = Cipher(AES128(state), _ECB).encryptor().update(block)
    return _xor(cipher, block)


def _xor(a: bytes, b: bytes) -> bytes:
    """Two blocks xor-ed."""
    return (int.from_bytes(a) ^ int.from_bytes(b)).to_bytes(BLOCK_SIZE)


def _padding(length: int) -> bytes:
    """The padding appended to a message of ``length`` bytes (B.6, both cases)."""
    bits = length * 8
    if bits > _MAX_BITS:
        raise ValueError(
            f"AES-MMO is defined for messages below 2**32 bits (512 MiB); got {length} bytes"
        )
    if bits < _LONG_FORM_BITS:
        # 1 bit, zeros up to 14 bytes mod 16, then the 16-bit bit length.
        zeros = (BLOCK_SIZE - 2 - 1 - length) % BLOCK_SIZE
        return b"\x80" + bytes(zeros) + bits.to_bytes(2)
    # 1 bit, zeros up to 10 bytes mod 16, the 32-bit bit length, then 16 zero bits.
    zeros = (BLOCK_SIZE - 6 - 1 - length) % BLOCK_SIZE
    return b"\x80" + bytes(zeros) + bits.to_bytes(4) + bytes(2)


#: The padding of each message shorter than 64 bytes (install codes, keys): computed once.
_PADDINGS = tuple(_padding(length) for length in range(64))


class MmoHash:
    """Incremental AES-MMO, with the ``hashlib`` interface (``update``/``digest``/``copy``).

    Data is consumed block by block, so hashing a large OTA image needs no second copy of it.
    """

    name = "aes-mmo"
    digest_size = DIGEST_SIZE
    block_size = BLOCK_SIZE

    __slots__ = ("_buffer", "_length", "_state")

    def __init__(self, data: bytes | bytearray | memoryview = b"") -> None:
        self._state = _ZERO_KEY
        self._buffer = b""
        self._length = 0
        if data:
            self.update(data)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed more of the message."""
        data = bytes(data)
        self._length += len(data)
        if self._length * 8 > _MAX_BITS:
            self._length -= len(data)
            raise ValueError(
                "AES-MMO is defined for messages below 2**32 bits (512 MiB); "
                f"this update would make the message {self._length + len(data)} bytes"
            )
        buffer = self._buffer + data if self._buffer else data
        full = len(buffer) - len(buffer) % BLOCK_SIZE
        state = self._state
        for offset in range(0, full, BLOCK_SIZE):
            state = _compress(state, buffer[offset : offset + BLOCK_SIZE])
        self._state = state
        self._buffer = buffer[full:]

    def digest(self) -> bytes:
        """The 16-byte hash of everything fed so far (the object stays usable)."""
        tail = self._buffer + _padding(self._length)
        state = self._state
        for offset in range(0, len(tail), BLOCK_SIZE):
            state = _compress(state, tail[offset : offset + BLOCK_SIZE])
        return state

    def hexdigest(self) -> str:
        """The digest as lowercase hex, like ``hashlib``."""
        return self.digest().hex()

    def copy(self) -> MmoHash:
        """An independent copy of the current state."""
        clone = MmoHash()
        clone._state, clone._buffer, clone._length = self._state, self._buffer, self._length
        return clone


def mmo_hash(data: bytes | bytearray | memoryview) -> bytes:
    """The 16-byte AES-MMO hash of ``data`` (ZigBee spec B.6, both length forms)."""
    message = bytes(data)
    length = len(message)
    message += _PADDINGS[length] if length < len(_PADDINGS) else _padding(length)
    block = message[:BLOCK_SIZE]  # under the all-zero initial hash: the kept context
    state = _xor(_zero_key_encryptor().update(block), block)
    for offset in range(BLOCK_SIZE, len(message), BLOCK_SIZE):
        block = message[offset : offset + BLOCK_SIZE]
        state = _xor(Cipher(AES128(state), _ECB).encryptor().update(block), block)
    return state


def hmac_mmo(key: bytes | bytearray | memoryview, message: bytes | bytearray | memoryview) -> bytes:
    """HMAC (FIPS 198) over AES-MMO, as keyed hash for key confirmation (ZigBee spec B.1.4).

    The standard library's HMAC over :class:`MmoHash` (16-byte block): a key longer than the
    block is hashed first, a shorter one zero-padded.
    """
    # MmoHash takes bytes-like input, narrower in its annotation than typeshed's hash protocol.
    digestmod = cast("Callable[[], Any]", MmoHash)
    return hmac.new(bytes(key), bytes(message), digestmod).digest()
