"""The Key Establishment cluster's commands (SE 1.x Annex C.3, cluster 0x0800) as plain values.

These frozen dataclasses are the vocabulary of the sans-IO key establishment core
(:mod:`zse.cbke.machine`): each has an exact-size ``encode()`` and a ``decode()`` that raises
:class:`~zse.errors.InvalidFrame` (a :class:`~zse.errors.DecodeError`) for any payload that is
not exactly what C.3 describes. The zigpy ``Cluster`` wire classes of the other SE clusters
live in the features' ``wire`` modules (:mod:`zse.drlc.wire`, ...).

Client to server (the initiator sends): Initiate Key Establishment Request (0x00), Ephemeral
Data Request (0x01), Confirm Key Data Request (0x02), Terminate Key Establishment (0x03).
Server to client (the responder sends): the three responses with the same ids, and Terminate.
Multi-byte integers are little-endian as everywhere in ZCL; certificates, points and MACs are
octet strings carried as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from zse.errors import InvalidFrame
from zse.se.ids import (
    KEY_ESTABLISHMENT,
    KeyEstablishmentClientCommand,
    KeyEstablishmentServerCommand,
)
from zse.se.types import TerminateStatus

__all__ = [
    "CLIENT_COMMANDS",
    "CLUSTER_ID",
    "CONFIRM_KEY_MAC_SIZE",
    "SERVER_COMMANDS",
    "ConfirmKeyDataRequest",
    "ConfirmKeyDataResponse",
    "EphemeralDataRequest",
    "EphemeralDataResponse",
    "InitiateKeyEstablishmentRequest",
    "InitiateKeyEstablishmentResponse",
    "Message",
    "TerminateKeyEstablishment",
    "TerminateStatus",
    "decode_client_command",
    "decode_server_command",
]

#: The Key Establishment cluster id (SE Annex C.3).
CLUSTER_ID = KEY_ESTABLISHMENT
#: Size of the Confirm Key Data MACs (HMAC-MMO output, C.3.1.3.3 / C.3.1.4.3).
CONFIRM_KEY_MAC_SIZE = 16
#: Certificate size of each suite id; the suite field decides how long the identity is.
_CERTIFICATE_SIZES = {0x0001: 48, 0x0002: 74}
#: Ephemeral public key sizes (SEC1 compressed points on sect163k1 / sect283k1).
_POINT_SIZES = (22, 37)


def _check_u8(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must fit in 8 bits, got {value}")


def _check_u16(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must fit in 16 bits, got {value}")


@dataclass(frozen=True, kw_only=True, slots=True)
class _Initiate:
    """Initiate Key Establishment Request/Response payload (C.3.1.3.1, C.3.1.4.1).

    ``suite`` (16-bit), ``ephemeral_data_generate_time`` and ``confirm_key_generate_time``
    (8-bit seconds the sender needs for those steps) and ``identity`` (the sender's implicit
    certificate: 48 bytes for suite 1, 74 for suite 2). For a suite this module does not know,
    the identity is kept as it came so the receiver can answer UNSUPPORTED_SUITE.
    """

    command_id: ClassVar[int] = KeyEstablishmentServerCommand.INITIATE_KEY_ESTABLISHMENT_REQUEST
    suite: int
    ephemeral_data_generate_time: int
    confirm_key_generate_time: int
    identity: bytes

    def __post_init__(self) -> None:
        _check_u16("suite", self.suite)
        _check_u8("ephemeral_data_generate_time", self.ephemeral_data_generate_time)
        _check_u8("confirm_key_generate_time", self.confirm_key_generate_time)
        expected = _CERTIFICATE_SIZES.get(self.suite)
        if expected is not None and len(self.identity) != expected:
            raise ValueError(
                f"suite {self.suite} identity must be {expected} bytes, got {len(self.identity)}"
            )

    def encode(self) -> bytes:
        """The ZCL payload: suite (LE16), the two times, the certificate."""
        return (
            self.suite.to_bytes(2, "little")
            + bytes((self.ephemeral_data_generate_time, self.confirm_key_generate_time))
            + self.identity
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode a payload; the suite field fixes the certificate length."""
        data = bytes(data)
        name = cls.__name__
        if len(data) < 4:
            raise InvalidFrame(f"{name}: {len(data)} bytes, need at least 4 before the identity")
        suite = int.from_bytes(data[:2], "little")
        expected = _CERTIFICATE_SIZES.get(suite)
        if expected is not None and len(data) != 4 + expected:
            raise InvalidFrame(
                f"{name}: suite {suite} needs a {expected}-byte identity at offset 4, "
                f"got {len(data) - 4} bytes"
            )
        return cls(
            suite=suite,
            ephemeral_data_generate_time=data[2],
            confirm_key_generate_time=data[3],
            identity=data[4:],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class InitiateKeyEstablishmentRequest(_Initiate):
    """Initiate Key Establishment Request (client to server, C.3.1.3.1)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class InitiateKeyEstablishmentResponse(_Initiate):
    """Initiate Key Establishment Response (server to client, C.3.1.4.1)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Ephemeral:
    """Ephemeral Data Request/Response (C.3.1.3.2, C.3.1.4.2): the sender's ephemeral key.

    The 22-byte (suite 1) or 37-byte (suite 2) compressed point; which one is expected depends
    on the negotiated suite, which the state machine checks.
    """

    command_id: ClassVar[int] = KeyEstablishmentServerCommand.EPHEMERAL_DATA_REQUEST
    ephemeral_data: bytes

    def __post_init__(self) -> None:
        if len(self.ephemeral_data) not in _POINT_SIZES:
            raise ValueError(
                f"ephemeral data must be 22 or 37 bytes, got {len(self.ephemeral_data)}"
            )

    def encode(self) -> bytes:
        """The ZCL payload: the compressed point."""
        return self.ephemeral_data

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode a payload of exactly 22 or 37 bytes."""
        data = bytes(data)
        if len(data) not in _POINT_SIZES:
            raise InvalidFrame(
                f"{cls.__name__}: ephemeral data must be 22 or 37 bytes, got {len(data)}"
            )
        return cls(ephemeral_data=data)


@dataclass(frozen=True, kw_only=True, slots=True)
class EphemeralDataRequest(_Ephemeral):
    """Ephemeral Data Request (client to server): the initiator's ephemeral public key QEU."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EphemeralDataResponse(_Ephemeral):
    """Ephemeral Data Response (server to client): the responder's ephemeral public key QEV."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Confirm:
    """Confirm Key Data Request/Response (C.3.1.3.3, C.3.1.4.3): a 16-byte MAC."""

    command_id: ClassVar[int] = KeyEstablishmentServerCommand.CONFIRM_KEY_DATA_REQUEST
    mac: bytes

    def __post_init__(self) -> None:
        if len(self.mac) != CONFIRM_KEY_MAC_SIZE:
            raise ValueError(f"the confirm key MAC must be 16 bytes, got {len(self.mac)}")

    def encode(self) -> bytes:
        """The ZCL payload: the MAC."""
        return self.mac

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode a payload of exactly 16 bytes."""
        data = bytes(data)
        if len(data) != CONFIRM_KEY_MAC_SIZE:
            raise InvalidFrame(f"{cls.__name__}: the MAC must be 16 bytes, got {len(data)}")
        return cls(mac=data)


@dataclass(frozen=True, kw_only=True, slots=True)
class ConfirmKeyDataRequest(_Confirm):
    """Confirm Key Data Request (client to server): MACU."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ConfirmKeyDataResponse(_Confirm):
    """Confirm Key Data Response (server to client): MACV."""


@dataclass(frozen=True, kw_only=True, slots=True)
class TerminateKeyEstablishment:
    """Terminate Key Establishment (either direction, C.3.1.3.4 / C.3.1.4.4).

    ``status`` (8-bit, :class:`TerminateStatus`), ``wait_time`` (8-bit seconds the receiver
    should wait before trying again) and ``suite`` (16-bit).
    """

    command_id: ClassVar[int] = KeyEstablishmentServerCommand.TERMINATE_KEY_ESTABLISHMENT
    status: TerminateStatus
    wait_time: int
    suite: int

    def __post_init__(self) -> None:
        _check_u8("wait_time", self.wait_time)
        _check_u16("suite", self.suite)
        object.__setattr__(self, "status", TerminateStatus(self.status))

    def encode(self) -> bytes:
        """The 4-byte ZCL payload."""
        return bytes((self.status, self.wait_time)) + self.suite.to_bytes(2, "little")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode a payload of exactly 4 bytes with a known status."""
        data = bytes(data)
        if len(data) != 4:
            raise InvalidFrame(f"TerminateKeyEstablishment: 4 bytes expected, got {len(data)}")
        try:
            status = TerminateStatus(data[0])
        except ValueError:
            raise InvalidFrame(
                f"TerminateKeyEstablishment: unknown status 0x{data[0]:02X} at offset 0"
            ) from None
        return cls(status=status, wait_time=data[1], suite=int.from_bytes(data[2:], "little"))


#: Every message the key establishment core sends or receives.
Message = (
    InitiateKeyEstablishmentRequest
    | InitiateKeyEstablishmentResponse
    | EphemeralDataRequest
    | EphemeralDataResponse
    | ConfirmKeyDataRequest
    | ConfirmKeyDataResponse
    | TerminateKeyEstablishment
)

#: Client-to-server command classes by command id (what a responder receives).
CLIENT_COMMANDS: dict[
    int,
    type[InitiateKeyEstablishmentRequest]
    | type[EphemeralDataRequest]
    | type[ConfirmKeyDataRequest]
    | type[TerminateKeyEstablishment],
] = {
    cls.command_id: cls
    for cls in (
        InitiateKeyEstablishmentRequest,
        EphemeralDataRequest,
        ConfirmKeyDataRequest,
        TerminateKeyEstablishment,
    )
}

#: Server-to-client command classes by command id (what an initiator receives).
SERVER_COMMANDS: dict[
    int,
    type[InitiateKeyEstablishmentResponse]
    | type[EphemeralDataResponse]
    | type[ConfirmKeyDataResponse]
    | type[TerminateKeyEstablishment],
] = {
    KeyEstablishmentClientCommand.INITIATE_KEY_ESTABLISHMENT_RESPONSE: (
        InitiateKeyEstablishmentResponse
    ),
    KeyEstablishmentClientCommand.EPHEMERAL_DATA_RESPONSE: EphemeralDataResponse,
    KeyEstablishmentClientCommand.CONFIRM_KEY_DATA_RESPONSE: ConfirmKeyDataResponse,
    KeyEstablishmentClientCommand.TERMINATE_KEY_ESTABLISHMENT: TerminateKeyEstablishment,
}


def decode_client_command(command_id: int, payload: bytes) -> Message:
    """Decode a client-to-server command; unknown ids and bad payloads raise InvalidFrame."""
    cls = CLIENT_COMMANDS.get(command_id)
    if cls is None:
        raise InvalidFrame(f"Key Establishment: no client command 0x{command_id:02X}")
    return cls.decode(payload)


def decode_server_command(command_id: int, payload: bytes) -> Message:
    """Decode a server-to-client command; unknown ids and bad payloads raise InvalidFrame."""
    cls = SERVER_COMMANDS.get(command_id)
    if cls is None:
        raise InvalidFrame(f"Key Establishment: no server command 0x{command_id:02X}")
    return cls.decode(payload)
