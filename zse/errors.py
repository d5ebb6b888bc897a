"""The exceptions zse raises.

Decoding fails with a :class:`DecodeError`, which is a :class:`ValueError`: a frame, install
code, EUI-64, key, point, certificate, JSON text, capture or key file that cannot be decoded or
fails validation. Callers that already catch ``ValueError`` keep working, and callers that want
to tell zse's decoding errors apart catch :class:`DecodeError` or one of its subclasses. The
message always says what was wrong and where (a character position, a byte offset or a field).

Loaders of files and configurations raise their own named errors, which are not
:class:`DecodeError`: ``zse.config.ConfigError``, ``zse.mqtt.core.MqttConfigError``,
``zse.device_csv.DeviceCsvError`` and ``zse.time.core.TimeZoneError`` are ``ValueError``;
``zse.headend.pki.HeadendConfigError`` and :class:`StoreError` are not. All of them are
:class:`ZseError`.
"""

from __future__ import annotations

__all__ = [
    "BadMic",
    "DecodeError",
    "InvalidCertificate",
    "InvalidEui64",
    "InvalidFrame",
    "InvalidInstallCode",
    "InvalidJson",
    "InvalidPoint",
    "InvalidSecurityHeader",
    "SecurityFailure",
    "StaleFrameCounter",
    "StoreError",
    "UnknownKey",
    "ZseError",
]


class ZseError(Exception):
    """Base class of every exception zse defines."""


class DecodeError(ZseError, ValueError):
    """Input that zse cannot decode or that fails validation (the decoders' ``ValueError``
    family; loaders of files and configurations raise their own named errors)."""


class InvalidInstallCode(DecodeError):
    """An install code that is malformed: wrong length, non-hex character or CRC mismatch."""


class InvalidEui64(DecodeError):
    """An EUI-64 (IEEE MAC address) that is malformed or not a usable device address."""


class InvalidPoint(DecodeError):
    """An elliptic-curve point or key that fails validation (length, prefix, curve, subgroup)."""


class InvalidCertificate(DecodeError):
    """An implicit (ECQV) certificate that is malformed or fails the spec's field checks."""


class InvalidFrame(DecodeError):
    """A frame (inter-PAN, ZCL payload) that cannot be decoded; the message gives the offset."""


class InvalidJson(DecodeError):
    """JSON text from outside (an MQTT payload, a request body, a file) that is not an
    RFC 8259 document zse reads: not UTF-8, not JSON, nested too deep, a number out of range
    (NaN, Infinity, an overflowing float, an integer of thousands of digits) or a string with
    an unpaired surrogate. The message says why and where, never the text itself."""


class InvalidSecurityHeader(InvalidFrame):
    """A ZigBee auxiliary security header (ZB 4.5.1) that is truncated or malformed."""


class SecurityFailure(DecodeError):
    """A secured ZigBee frame that fails security processing (ZB 4.3.1.2, 4.4.1.2): the frame
    is dropped. ``reason`` names the failure for counting (never any key material)."""

    reason = "security failure"


class BadMic(SecurityFailure):
    """The message integrity code does not verify: wrong key, or the frame was altered."""

    reason = "bad MIC"


class StaleFrameCounter(SecurityFailure):
    """The frame counter is below the next one expected from that sender: a replay."""

    reason = "stale frame counter"


class UnknownKey(SecurityFailure):
    """No key is held for the frame: unknown key sequence number, sender or key identifier."""

    reason = "unknown key"


class StoreError(ZseError):
    """A state database (zse.store) that is not a healthy zse store, or fails to read or write."""
