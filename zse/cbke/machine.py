"""Key Establishment (SE 07-5356 Annex C.3, cluster 0x0800) as sans-IO state machines.

An :class:`Initiator` (the cluster's client, party U) and a :class:`Responder` (the server,
party V) are fed decoded messages (:mod:`zse.cbke.messages`) or raw ZCL payloads and the current
time ``now`` (float seconds, any monotonic clock); each call returns a :class:`Step`: messages
to send, events (:class:`Established`, :class:`Terminated`) and at most one
:class:`Computation`. They never sleep, never read a clock and never raise on input: a message
the table below does not allow, or one that fails decoding, becomes a Terminate Key
Establishment with BAD_MESSAGE.

**Heavy arithmetic is a separate step.** Reconstructing the partner's public key, making the
ephemeral key pair and ECMQV take milliseconds of pure-Python big-integer work each, which must
not run on an event loop. So where the protocol needs them the machine returns a
:class:`Computation` (a pure function with its arguments bound, touching no machine state) and
waits; the caller runs ``computation.run()`` wherever it likes (an asyncio shell uses
``loop.run_in_executor``) and hands the result back with ``complete(computation, result, now)``.
Messages that arrive meanwhile are handled as usual (a Terminate ends the exchange and the late
result is ignored). :func:`run_inline` runs computations synchronously, for tests and scripts.

The whole protocol is the :data:`TRANSITIONS` table: ``(role, state, input) -> next state``.

Statuses produced (C.3.1.3.4): UNKNOWN_ISSUER (the partner's certificate names another issuer
than ours), BAD_MESSAGE (wrong length, undecodable, out of sequence, subject not the sender,
invalid ephemeral point; on suite 1 also an invalid reconstruction point, as SE 1.1 peers know
no INVALID_CERTIFICATE), NO_RESOURCES (:class:`KeyEstablishmentServer` busy, or the partner
back before the wait time it was told), UNSUPPORTED_SUITE (no common suite, or a response
naming another suite than requested), INVALID_CERTIFICATE
(suite-2 field checks: type, curve, hash, key-agreement usage, validity, reconstruction point),
BAD_KEY_CONFIRM (MAC mismatch, compared with :func:`hmac.compare_digest`). A received Terminate
ends the exchange; its wait time is honoured by :meth:`Initiator.start`, and after
UNKNOWN_ISSUER or BAD_KEY_CONFIRM the initiator does not retry at all.

Timeouts: while waiting for the partner, the deadline is the partner's advertised generate
time for that step (at most ``max_partner_time``) plus ``timeout_margin``; on expiry the
exchange ends locally (``Terminated(timed_out=True)``) without a message.
"""

from __future__ import annotations

import enum
import hmac
import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from zse.cbke.certificate import ImplicitCertificate, Suite2Certificate
from zse.cbke.credentials import Credentials, HeldCredentials
from zse.cbke.hazmat import Point
from zse.cbke.keys import (
    confirmation_macs,
    derive_keys,
    ecmqv_points,
    generate_key_pair,
    private_scalar,
)
from zse.cbke.messages import (
    ConfirmKeyDataRequest,
    ConfirmKeyDataResponse,
    EphemeralDataRequest,
    EphemeralDataResponse,
    InitiateKeyEstablishmentRequest,
    InitiateKeyEstablishmentResponse,
    Message,
    TerminateKeyEstablishment,
    TerminateStatus,
    decode_client_command,
    decode_server_command,
)
from zse.cbke.suites import SUITES, Suite
from zse.errors import DecodeError, InvalidCertificate, InvalidPoint

__all__ = [
    "DEFAULT_MAX_PARTNER_TIME",
    "DEFAULT_STALL_AFTER",
    "DEFAULT_TIMEOUT_MARGIN",
    "TRANSITIONS",
    "CalculateSmacs",
    "CertificateChecked",
    "Computation",
    "ComputeFailed",
    "ComputeResult",
    "Established",
    "Event",
    "GenerateEphemeral",
    "HeldWork",
    "Initiator",
    "KeyEstablishmentServer",
    "KeysComputed",
    "Responder",
    "Role",
    "State",
    "Step",
    "Terminated",
    "UtcClock",
    "run_inline",
    "supported_suites",
]

#: Seconds added to the partner's advertised generate times (radio, APS retries, scheduling).
DEFAULT_TIMEOUT_MARGIN = 10.0
#: What zse advertises for its own steps (seconds); its arithmetic needs far less than this.
DEFAULT_GENERATE_TIME = 5
#: How long the initiator waits for the Initiate Key Establishment Response.
DEFAULT_RESPONSE_TIME = 5.0
#: Wait time zse puts in the Terminate messages it sends (seconds).
DEFAULT_WAIT_TIME = 10
#: The most a partner's advertised generate time may make a responder wait (seconds). The
#: fields go up to 0xFE (SE C.3.1.3.1); an honest device needs a few seconds (zse advertises 5,
#: Silicon Labs' plugin about 10-16), so a partner may claim four times that at most.
DEFAULT_MAX_PARTNER_TIME = 60
#: A server session waiting this long on a silent partner gives its slot to a new partner
#: when every slot is taken (seconds): DEFAULT_GENERATE_TIME + DEFAULT_TIMEOUT_MARGIN.
DEFAULT_STALL_AFTER = 15.0
_NO_CAP = 0xFF
_NO_RETRY = frozenset({TerminateStatus.UNKNOWN_ISSUER, TerminateStatus.BAD_KEY_CONFIRM})
#: Computation tokens, unique across every machine of the process: a late result handed to
#: the partner's next session (a new machine) must not match that session's own computation.
_TOKENS = itertools.count(1)


# -- events and the step ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Established:
    """Key establishment succeeded: ``key_data`` is the new 16-byte link key (SE C.4.1.4).

    ``partner_public_key`` is the partner's static public key (SEC1-compressed), reconstructed
    from its certificate during the exchange (SEC 4 3.5): what verifies its signatures, e.g.
    DRLC Report Event Status (SE D.2.3.3.1.1.11).
    """

    key_data: bytes = field(repr=False)
    partner_eui64: bytes
    suite: Suite
    partner_public_key: bytes = field(default=b"", compare=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class Terminated:
    """Key establishment ended without a key.

    ``status`` is the Terminate status sent (``by_peer=False``) or received (``by_peer=True``),
    or None when the partner timed out (``timed_out=True``) or, before anything was sent, the
    initiator's retry was refused. ``wait_time`` is the seconds to wait before trying again;
    ``may_retry`` is False after UNKNOWN_ISSUER and BAD_KEY_CONFIRM and when no suite is common.
    """

    status: TerminateStatus | None
    wait_time: int
    by_peer: bool
    may_retry: bool = True
    timed_out: bool = False


Event = Established | Terminated


@dataclass(frozen=True, kw_only=True, slots=True)
class CertificateChecked:
    """Result of the first computation: the partner's static key and our ephemeral pair."""

    peer_static_public: bytes
    peer_static_point: Point | None = field(repr=False)
    ephemeral_private: bytes = field(repr=False)
    ephemeral_public: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class KeysComputed:
    """Result of the second computation: the derived keys and both confirmation MACs."""

    mac_key: bytes = field(repr=False)
    key_data: bytes = field(repr=False)
    macu: bytes
    macv: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class ComputeFailed:
    """A computation found the partner's data invalid: terminate with ``status``."""

    status: TerminateStatus
    reason: str


ComputeResult = CertificateChecked | KeysComputed | ComputeFailed


@dataclass(frozen=True, kw_only=True, slots=True)
class GenerateEphemeral:
    """Held credentials: the holder makes the ephemeral key pair and answers
    :class:`CertificateChecked` with the public key only (EZSP ``generateCbkeKeys``)."""

    suite: Suite
    partner_certificate: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class CalculateSmacs:
    """Held credentials: the holder checks the partner's certificate, runs ECMQV and the key
    derivation, keeps the key and answers :class:`KeysComputed` with the two MACs only
    (EZSP ``calculateSmacs``); ``initiator``: we are party U."""

    suite: Suite
    initiator: bool
    partner_certificate: bytes
    partner_ephemeral: bytes


HeldWork = GenerateEphemeral | CalculateSmacs


def _held_elsewhere() -> ComputeResult:
    raise RuntimeError("this computation is the credential holder's (Computation.held)")


@dataclass(frozen=True, slots=True)
class Computation:
    """Arithmetic the machine needs done; run :meth:`run` anywhere, then ``complete()``.
    With held credentials, ``held`` says what the holder must do instead of :meth:`run`."""

    token: int
    function: Callable[[], ComputeResult] = field(repr=False, compare=False)
    held: HeldWork | None = None

    def run(self) -> ComputeResult:
        """Do the work (pure: safe in a worker thread or process)."""
        return self.function()


@dataclass(frozen=True, kw_only=True, slots=True)
class Step:
    """What one call produced: messages to send (in order), events, and a computation."""

    send: tuple[Message, ...] = ()
    events: tuple[Event, ...] = ()
    compute: Computation | None = None

    def then(self, other: Step) -> Step:
        """This step followed by ``other`` (``other``'s computation, if any, wins)."""
        return Step(
            send=self.send + other.send,
            events=self.events + other.events,
            compute=other.compute,
        )


# -- the pure computations ------------------------------------------------------------------


def _check_certificate(
    suite: Suite,
    ca_public_key: bytes,
    certificate: ImplicitCertificate,
    ephemeral_private: bytes | None,
) -> ComputeResult:
    """Reconstruct the partner's static key and make our ephemeral key pair."""
    try:
        peer_static = certificate.reconstruct_public_point(ca_public_key)
    except InvalidCertificate as exc:
        status = (
            TerminateStatus.INVALID_CERTIFICATE
            if isinstance(certificate, Suite2Certificate)
            else TerminateStatus.BAD_MESSAGE
        )
        return ComputeFailed(status=status, reason=str(exc))
    private, public = generate_key_pair(suite, ephemeral_private)
    return CertificateChecked(
        peer_static_public=suite.curve.encode_point(peer_static),
        peer_static_point=peer_static,
        ephemeral_private=private,
        ephemeral_public=public,
    )


def _compute_keys(
    suite: Suite,
    *,
    static_private: bytes,
    ephemeral_private: bytes,
    peer_static_point: Point,
    peer_ephemeral_public: bytes,
    initiator_eui64: bytes,
    responder_eui64: bytes,
    initiator_ephemeral: bytes,
    responder_ephemeral: bytes,
    own_ephemeral_public: bytes,
) -> ComputeResult:
    """ECMQV, the key derivation and both MACs.

    The partner's static point comes from our own reconstruction and our ephemeral key from
    our own generation, so only the partner's ephemeral key needs decoding and validation.
    """
    ds = private_scalar(suite, static_private)
    de = private_scalar(suite, ephemeral_private)
    try:
        peer_ephemeral = suite.curve.decode_point(peer_ephemeral_public)
        # ECMQV at the point at infinity (SEC 1 3.4: "output invalid") comes of the partner's
        # two keys, the only inputs not ours: BAD_MESSAGE as for an invalid point
        z = ecmqv_points(
            suite,
            ds,
            de,
            own_ephemeral_x=int.from_bytes(own_ephemeral_public[1:]),
            qs_peer=peer_static_point,
            qe_peer=peer_ephemeral,
        )
    except InvalidPoint as exc:
        return ComputeFailed(status=TerminateStatus.BAD_MESSAGE, reason=str(exc))
    mac_key, key_data = derive_keys(z)
    macu, macv = confirmation_macs(
        mac_key, initiator_eui64, responder_eui64, initiator_ephemeral, responder_ephemeral
    )
    return KeysComputed(mac_key=mac_key, key_data=key_data, macu=macu, macv=macv)


# -- the table ------------------------------------------------------------------------------


class Role(enum.Enum):
    """Which side of the exchange a machine plays."""

    INITIATOR = "initiator"  # cluster client, party U
    RESPONDER = "responder"  # cluster server, party V


class State(enum.Enum):
    """Where an exchange stands."""

    IDLE = "idle"
    WAIT_INITIATE_RESPONSE = "wait-initiate-response"
    CHECKING_CERTIFICATE = "checking-certificate"  # computation running
    WAIT_EPHEMERAL_DATA = "wait-ephemeral-data"
    COMPUTING_KEYS = "computing-keys"  # computation running
    WAIT_CONFIRM_KEY = "wait-confirm-key"
    ESTABLISHED = "established"
    TERMINATED = "terminated"


class _Start:
    """The input "the application starts an exchange" (initiator only)."""


_I, _R = Role.INITIATOR, Role.RESPONDER
_S = State

#: The protocol: (role, state, input type) -> the state reached when the input is acceptable.
#: Anything else received in an active state is answered with Terminate BAD_MESSAGE; a
#: Terminate is accepted in every active state (-> TERMINATED).
TRANSITIONS: dict[tuple[Role, State, type], State] = {
    # initiator (client, U)
    (_I, _S.IDLE, _Start): _S.WAIT_INITIATE_RESPONSE,
    (_I, _S.ESTABLISHED, _Start): _S.WAIT_INITIATE_RESPONSE,
    (_I, _S.TERMINATED, _Start): _S.WAIT_INITIATE_RESPONSE,
    (_I, _S.WAIT_INITIATE_RESPONSE, InitiateKeyEstablishmentResponse): _S.CHECKING_CERTIFICATE,
    (_I, _S.CHECKING_CERTIFICATE, CertificateChecked): _S.WAIT_EPHEMERAL_DATA,
    (_I, _S.WAIT_EPHEMERAL_DATA, EphemeralDataResponse): _S.COMPUTING_KEYS,
    (_I, _S.COMPUTING_KEYS, KeysComputed): _S.WAIT_CONFIRM_KEY,
    (_I, _S.WAIT_CONFIRM_KEY, ConfirmKeyDataResponse): _S.ESTABLISHED,
    # responder (server, V)
    (_R, _S.IDLE, InitiateKeyEstablishmentRequest): _S.CHECKING_CERTIFICATE,
    (_R, _S.CHECKING_CERTIFICATE, CertificateChecked): _S.WAIT_EPHEMERAL_DATA,
    (_R, _S.WAIT_EPHEMERAL_DATA, EphemeralDataRequest): _S.COMPUTING_KEYS,
    (_R, _S.COMPUTING_KEYS, KeysComputed): _S.WAIT_CONFIRM_KEY,
    (_R, _S.WAIT_CONFIRM_KEY, ConfirmKeyDataRequest): _S.ESTABLISHED,
}

_FINAL = frozenset({State.ESTABLISHED, State.TERMINATED})
_COMPUTING = frozenset({State.CHECKING_CERTIFICATE, State.COMPUTING_KEYS})


def supported_suites(credentials: Iterable[Credentials | HeldCredentials]) -> int:
    """The Key Establishment Suite attribute value (bitmap) for these credentials."""
    value = 0
    for item in credentials:
        value |= item.suite.bit
    return value


def _credentials_by_suite(
    credentials: Credentials | HeldCredentials | Iterable[Credentials | HeldCredentials],
) -> dict[int, Credentials | HeldCredentials]:
    items = (
        [credentials]
        if isinstance(credentials, Credentials | HeldCredentials)
        else list(credentials)
    )
    table: dict[int, Credentials | HeldCredentials] = {}
    for item in items:
        if item.suite.id in table:
            raise ValueError(f"two sets of credentials for {item.suite.name}")
        table[item.suite.id] = item
    if not table:
        raise ValueError("key establishment needs at least one set of credentials")
    return table


def _check_eui64(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 8:
        raise ValueError(f"{what} must be 8 bytes, most significant octet first")
    return bytes(value)


#: A wall clock for certificate validity (SE C.4.2.2): Unix seconds now, or None while the
#: time is not known (then validity is not checked).
UtcClock = Callable[[], int | None]


def _valid_now(certificate: Suite2Certificate, utc_now: int | UtcClock | None) -> bool:
    """Whether ``certificate`` is in its validity period at ``utc_now`` (a clock is read now,
    when the partner's certificate is checked); True when the time is not known."""
    now = utc_now() if callable(utc_now) else utc_now
    return now is None or certificate.is_valid_at(now)


class _Machine:
    """What initiator and responder share: the table walk, terminations, deadlines.

    ``utc_now`` is the wall clock suite-2 certificate validity is checked against: a
    :data:`UtcClock` (read when the partner's certificate arrives, so a long-lived server's
    sessions use the time of their exchange), a fixed count of Unix seconds, or None (not
    checked)."""

    role: Role

    def __init__(
        self,
        credentials: Credentials | HeldCredentials | Iterable[Credentials | HeldCredentials],
        partner_eui64: bytes,
        *,
        ephemeral_private_key: bytes | None = None,
        ephemeral_data_generate_time: int = DEFAULT_GENERATE_TIME,
        confirm_key_generate_time: int = DEFAULT_GENERATE_TIME,
        timeout_margin: float = DEFAULT_TIMEOUT_MARGIN,
        wait_time: int = DEFAULT_WAIT_TIME,
        utc_now: int | UtcClock | None = None,
        rng: random.Random | None = None,
        max_partner_time: int = _NO_CAP,
    ) -> None:
        self._credentials = _credentials_by_suite(credentials)
        self.max_partner_time = max_partner_time
        self.partner_eui64 = _check_eui64(partner_eui64, "partner_eui64")
        self._ephemeral_private_key = ephemeral_private_key
        self._rng = rng
        self.ephemeral_data_generate_time = ephemeral_data_generate_time
        self.confirm_key_generate_time = confirm_key_generate_time
        self.timeout_margin = timeout_margin
        self.wait_time = wait_time
        self.utc_now = utc_now
        self.state = State.IDLE
        self.suite: Suite | None = None
        self.key_data: bytes | None = None
        self._deadline: float | None = None
        self._token = next(_TOKENS)
        self._reset()

    def _reset(self) -> None:
        self.suite = None
        self.key_data = None
        self._deadline = None
        self.waiting_since: float | None = None
        self._peer_certificate: ImplicitCertificate | None = None
        self._peer_ephemeral_time = 0
        self._peer_confirm_time = 0
        self._peer_static: Point | None = None
        self._peer_ephemeral: bytes | None = None
        self._ephemeral_private: bytes | None = None
        self._ephemeral_public: bytes | None = None
        self._keys: KeysComputed | None = None

    # -- public surface ------------------------------------------------------------------

    @property
    def supported_suites(self) -> int:
        """Our Key Establishment Suite bitmap."""
        return supported_suites(self._credentials.values())

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` must be called, or None."""
        return self._deadline

    def handle_timeout(self, now: float) -> Step:
        """End the exchange if the partner has been silent past its deadline."""
        if self._deadline is None or now < self._deadline:
            return Step()
        return self.abort(now)

    def abort(self, now: float) -> Step:
        """End the exchange locally, as a timeout does, whatever the deadline: the caller
        knows the partner cannot be reached (e.g. its radio reported a delivery failure)."""
        if self.state in _FINAL or self.state is State.IDLE:
            return Step()
        self._enter_terminated()
        return Step(events=(Terminated(status=None, wait_time=0, by_peer=False, timed_out=True),))

    def receive(self, message: Message, now: float) -> Step:
        """Handle one decoded message from the partner (one at or past the deadline ends the
        exchange as the timeout does: it came too late)."""
        if self.state in _FINAL:
            return Step()
        if self._deadline is not None and now >= self._deadline:
            return _Machine.abort(self, now)
        if isinstance(message, TerminateKeyEstablishment):
            return self._on_terminate(message, now)
        target = TRANSITIONS.get((self.role, self.state, type(message)))
        if target is None:
            if self.state is State.IDLE and self.role is Role.INITIATOR:
                return Step()  # nothing started: not ours to answer
            return self._terminate(TerminateStatus.BAD_MESSAGE)
        return self._dispatch(message, target, now)

    def receive_payload(self, command_id: int, payload: bytes, now: float) -> Step:
        """Decode a ZCL payload from the partner and handle it; bad input -> BAD_MESSAGE."""
        if self._deadline is not None and now >= self._deadline:
            return _Machine.abort(self, now)
        try:
            message = self._decode(command_id, payload)
        except DecodeError:
            if self.state in _FINAL or (self.state is State.IDLE and self.role is Role.INITIATOR):
                return Step()
            if command_id == TerminateKeyEstablishment.command_id:
                if self.state is State.IDLE:
                    return Step()  # no exchange to end, as for a well-formed Terminate
                # A garbled Terminate still ends the exchange; answering it would ping-pong.
                self._enter_terminated()
                return Step(
                    events=(
                        Terminated(
                            status=TerminateStatus.BAD_MESSAGE,
                            wait_time=self.wait_time,
                            by_peer=True,
                        ),
                    )
                )
            return self._terminate(TerminateStatus.BAD_MESSAGE)
        return self.receive(message, now)

    def complete(self, computation: Computation, result: ComputeResult, now: float) -> Step:
        """Feed back the result of a :class:`Computation` this machine returned."""
        if computation.token != self._token or self.state not in _COMPUTING:
            return Step()  # stale: the exchange ended or moved on meanwhile
        if isinstance(result, ComputeFailed):
            return self._terminate(result.status)
        target = TRANSITIONS.get((self.role, self.state, type(result)))
        if target is None:
            return self._terminate(TerminateStatus.BAD_MESSAGE)
        return self._dispatch(result, target, now)

    # -- plumbing --------------------------------------------------------------------------

    def _decode(self, command_id: int, payload: bytes) -> Message:
        raise NotImplementedError

    def _dispatch(self, item: object, target: State, now: float) -> Step:
        raise NotImplementedError

    def _computation(
        self, function: Callable[[], ComputeResult], held: HeldWork | None = None
    ) -> Computation:
        self._token = next(_TOKENS)
        self._deadline = None
        self.waiting_since = None
        return Computation(self._token, function, held)

    def _enter_terminated(self) -> None:
        self.state = State.TERMINATED
        self._deadline = None
        self.waiting_since = None
        self._token = next(_TOKENS)
        self._ephemeral_private = None
        self._keys = None

    def _suite_field(self, status: TerminateStatus) -> int:
        if self.suite is not None and status is not TerminateStatus.UNSUPPORTED_SUITE:
            return self.suite.id
        return self.supported_suites

    def _terminate(self, status: TerminateStatus) -> Step:
        """Send Terminate with ``status`` and end the exchange."""
        message = TerminateKeyEstablishment(
            status=status, wait_time=self.wait_time, suite=self._suite_field(status)
        )
        self._enter_terminated()
        event = Terminated(
            status=status,
            wait_time=self.wait_time,
            by_peer=False,
            may_retry=status not in _NO_RETRY,
        )
        return Step(send=(message,), events=(event,))

    def _on_terminate(self, message: TerminateKeyEstablishment, now: float) -> Step:
        if self.state is State.IDLE:
            return Step()
        self._enter_terminated()
        return Step(
            events=(
                Terminated(
                    status=message.status,
                    wait_time=message.wait_time,
                    by_peer=True,
                    may_retry=message.status not in _NO_RETRY,
                ),
            )
        )

    def _wait(self, state: State, seconds: float, now: float) -> None:
        self.state = state
        self.waiting_since = now
        self._deadline = now + seconds + self.timeout_margin

    def _accept_identity(  # noqa: PLR0911 - one return per C.3.1 check
        self, message: InitiateKeyEstablishmentRequest | InitiateKeyEstablishmentResponse
    ) -> Step | Computation:
        """The C.3.1 checks of a partner's Initiate message, then the first computation."""
        suite = self.suite
        if suite is None or message.suite != suite.id:
            return self._terminate(TerminateStatus.UNSUPPORTED_SUITE)
        own = self._credentials[suite.id]
        try:
            certificate = ImplicitCertificate.from_bytes(message.identity, suite)
        except InvalidCertificate:
            if suite.id == 1:
                return self._terminate(TerminateStatus.BAD_MESSAGE)
            return self._terminate(TerminateStatus.INVALID_CERTIFICATE)
        if not hmac.compare_digest(certificate.issuer, own.issuer):
            return self._terminate(TerminateStatus.UNKNOWN_ISSUER)
        if certificate.subject != self.partner_eui64:
            return self._terminate(TerminateStatus.BAD_MESSAGE)
        if isinstance(certificate, Suite2Certificate) and (
            not certificate.allows_key_agreement or not _valid_now(certificate, self.utc_now)
        ):
            return self._terminate(TerminateStatus.INVALID_CERTIFICATE)
        self._peer_certificate = certificate
        # The partner's own figures, but no more than we accept to wait (#12.25).
        self._peer_ephemeral_time = min(message.ephemeral_data_generate_time, self.max_partner_time)
        self._peer_confirm_time = min(message.confirm_key_generate_time, self.max_partner_time)
        if isinstance(own, HeldCredentials):
            return self._computation(
                _held_elsewhere,
                GenerateEphemeral(suite=suite, partner_certificate=certificate.data),
            )
        ephemeral = self._ephemeral_private_key
        if ephemeral is None and self._rng is not None:
            # Drawn here, on the caller's thread, so a seeded run is repeatable wherever the
            # computation then runs.
            scalar = 1 + self._rng.randrange(suite.curve.n - 1)
            ephemeral = scalar.to_bytes(suite.private_key_size)
        return self._computation(
            partial(_check_certificate, suite, own.ca_public_key, certificate, ephemeral)
        )

    def _keys_computation(self, peer_ephemeral: bytes) -> Step | Computation:
        suite = self.suite
        assert suite is not None
        if len(peer_ephemeral) != suite.public_key_size:
            return self._terminate(TerminateStatus.BAD_MESSAGE)
        own = self._credentials[suite.id]
        assert self._ephemeral_public is not None
        self._peer_ephemeral = peer_ephemeral
        if isinstance(own, HeldCredentials):
            assert self._peer_certificate is not None
            return self._computation(
                _held_elsewhere,
                CalculateSmacs(
                    suite=suite,
                    initiator=self.role is Role.INITIATOR,
                    partner_certificate=self._peer_certificate.data,
                    partner_ephemeral=peer_ephemeral,
                ),
            )
        assert self._ephemeral_private is not None
        assert self._peer_static is not None
        if self.role is Role.INITIATOR:
            u, v = own.eui64, self.partner_eui64
            qeu, qev = self._ephemeral_public, peer_ephemeral
        else:
            u, v = self.partner_eui64, own.eui64
            qeu, qev = peer_ephemeral, self._ephemeral_public
        return self._computation(
            partial(
                _compute_keys,
                suite,
                static_private=own.private_key,
                ephemeral_private=self._ephemeral_private,
                peer_static_point=self._peer_static,
                peer_ephemeral_public=peer_ephemeral,
                own_ephemeral_public=self._ephemeral_public,
                initiator_eui64=u,
                responder_eui64=v,
                initiator_ephemeral=qeu,
                responder_ephemeral=qev,
            )
        )

    def _established(self, key_data: bytes) -> Established:
        assert self.suite is not None
        self.state = State.ESTABLISHED
        self._deadline = None
        self.waiting_since = None
        self._ephemeral_private = None
        self.key_data = key_data
        static = self._peer_static  # None with held credentials: the holder reconstructed it
        return Established(
            key_data=key_data,
            partner_eui64=self.partner_eui64,
            suite=self.suite,
            partner_public_key=b"" if static is None else self.suite.curve.encode_point(static),
        )


def _step(outcome: Step | Computation) -> Step:
    return outcome if isinstance(outcome, Step) else Step(compute=outcome)


class Initiator(_Machine):
    """The initiator (Key Establishment client, party U).

    ``partner_suites`` is the responder's Key Establishment Suite attribute (read it first);
    the highest suite both support is used. ``ephemeral_private_key`` injects the ephemeral key
    (spec vectors); by default a fresh one comes from :mod:`secrets` for every exchange, or
    from ``rng`` when given (a seeded ``random.Random``: repeatable simulations only, never a
    real device).
    """

    role = Role.INITIATOR

    def __init__(
        self,
        credentials: Credentials | HeldCredentials | Iterable[Credentials | HeldCredentials],
        partner_eui64: bytes,
        *,
        partner_suites: int = 0x0001,
        response_time: float = DEFAULT_RESPONSE_TIME,
        ephemeral_private_key: bytes | None = None,
        ephemeral_data_generate_time: int = DEFAULT_GENERATE_TIME,
        confirm_key_generate_time: int = DEFAULT_GENERATE_TIME,
        timeout_margin: float = DEFAULT_TIMEOUT_MARGIN,
        wait_time: int = DEFAULT_WAIT_TIME,
        utc_now: int | UtcClock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            credentials,
            partner_eui64,
            ephemeral_private_key=ephemeral_private_key,
            ephemeral_data_generate_time=ephemeral_data_generate_time,
            confirm_key_generate_time=confirm_key_generate_time,
            timeout_margin=timeout_margin,
            wait_time=wait_time,
            utc_now=utc_now,
            rng=rng,
        )
        self.partner_suites = partner_suites
        self.response_time = response_time
        self._retry_at: float | None = 0.0
        self._last_status: TerminateStatus | None = None

    @property
    def retry_at(self) -> float | None:
        """Earliest ``now`` at which :meth:`start` may run again; None: never (no retry)."""
        return self._retry_at

    def start(self, now: float) -> Step:
        """Begin an exchange: send Initiate Key Establishment Request (C.3.1.3.1).

        Refused, with a :class:`Terminated` event and nothing sent, while a previous
        termination's wait time runs or after UNKNOWN_ISSUER / BAD_KEY_CONFIRM.
        """
        if (self.role, self.state, _Start) not in TRANSITIONS:
            raise RuntimeError(f"cannot start key establishment in state {self.state.value}")
        if self._retry_at is None or now < self._retry_at:
            remaining = 0 if self._retry_at is None else int(-(-(self._retry_at - now) // 1))
            return Step(
                events=(
                    Terminated(
                        status=self._last_status,
                        wait_time=remaining,
                        by_peer=False,
                        may_retry=self._retry_at is not None,
                    ),
                )
            )
        self._reset()
        common = [sid for sid in self._credentials if sid & self.partner_suites]
        if not common:
            self.state = State.TERMINATED
            self._retry_at = None
            self._last_status = TerminateStatus.UNSUPPORTED_SUITE
            return Step(
                events=(
                    Terminated(
                        status=TerminateStatus.UNSUPPORTED_SUITE,
                        wait_time=0,
                        by_peer=False,
                        may_retry=False,
                    ),
                )
            )
        suite = SUITES[max(common)]
        self.suite = suite
        request = InitiateKeyEstablishmentRequest(
            suite=suite.id,
            ephemeral_data_generate_time=self.ephemeral_data_generate_time,
            confirm_key_generate_time=self.confirm_key_generate_time,
            identity=self._credentials[suite.id].certificate.data,
        )
        self._wait(TRANSITIONS[(self.role, self.state, _Start)], self.response_time, now)
        return Step(send=(request,))

    def _decode(self, command_id: int, payload: bytes) -> Message:
        return decode_server_command(command_id, payload)

    def _note_termination(self, step: Step, now: float) -> Step:
        for event in step.events:
            if isinstance(event, Terminated):
                self._last_status = event.status
                self._retry_at = None if not event.may_retry else now + event.wait_time
        return step

    def receive(self, message: Message, now: float) -> Step:
        """Handle one decoded message from the responder."""
        return self._note_termination(super().receive(message, now), now)

    def receive_payload(self, command_id: int, payload: bytes, now: float) -> Step:
        """Decode a server-to-client payload and handle it."""
        return self._note_termination(super().receive_payload(command_id, payload, now), now)

    def complete(self, computation: Computation, result: ComputeResult, now: float) -> Step:
        """Feed back a computation's result."""
        return self._note_termination(super().complete(computation, result, now), now)

    def handle_timeout(self, now: float) -> Step:
        """End the exchange if the responder has been silent past its deadline."""
        return self._note_termination(super().handle_timeout(now), now)

    def abort(self, now: float) -> Step:
        """End the exchange locally (the responder cannot be reached)."""
        return self._note_termination(super().abort(now), now)

    def _dispatch(self, item: object, target: State, now: float) -> Step:
        if isinstance(item, InitiateKeyEstablishmentResponse):
            outcome = self._accept_identity(item)
            if isinstance(outcome, Computation):
                self.state = target
            return _step(outcome)
        if isinstance(item, CertificateChecked):
            self._peer_static = item.peer_static_point
            self._ephemeral_private = item.ephemeral_private
            self._ephemeral_public = item.ephemeral_public
            self._wait(target, self._peer_ephemeral_time, now)
            return Step(send=(EphemeralDataRequest(ephemeral_data=item.ephemeral_public),))
        if isinstance(item, EphemeralDataResponse):
            outcome = self._keys_computation(item.ephemeral_data)
            if isinstance(outcome, Computation):
                self.state = target
            return _step(outcome)
        if isinstance(item, KeysComputed):
            self._keys = item
            self._wait(target, self._peer_confirm_time, now)
            return Step(send=(ConfirmKeyDataRequest(mac=item.macu),))
        assert isinstance(item, ConfirmKeyDataResponse)
        keys = self._keys
        assert keys is not None
        if not hmac.compare_digest(item.mac, keys.macv):
            return self._terminate(TerminateStatus.BAD_KEY_CONFIRM)
        return Step(events=(self._established(keys.key_data),))


class Responder(_Machine):
    """The responder (Key Establishment server, party V) for one partner.

    Use :class:`KeyEstablishmentServer` to serve several partners (and answer NO_RESOURCES).
    """

    role = Role.RESPONDER

    def _decode(self, command_id: int, payload: bytes) -> Message:
        return decode_client_command(command_id, payload)

    def _dispatch(self, item: object, target: State, now: float) -> Step:  # noqa: PLR0911
        if isinstance(item, InitiateKeyEstablishmentRequest):
            suite = SUITES.get(item.suite)
            if suite is None or suite.id not in self._credentials:
                return self._terminate(TerminateStatus.UNSUPPORTED_SUITE)
            self.suite = suite
            outcome = self._accept_identity(item)
            if isinstance(outcome, Computation):
                self.state = target
            return _step(outcome)
        if isinstance(item, CertificateChecked):
            suite = self.suite
            assert suite is not None
            self._peer_static = item.peer_static_point
            self._ephemeral_private = item.ephemeral_private
            self._ephemeral_public = item.ephemeral_public
            self._wait(target, self._peer_ephemeral_time, now)
            response = InitiateKeyEstablishmentResponse(
                suite=suite.id,
                ephemeral_data_generate_time=self.ephemeral_data_generate_time,
                confirm_key_generate_time=self.confirm_key_generate_time,
                identity=self._credentials[suite.id].certificate.data,
            )
            return Step(send=(response,))
        if isinstance(item, EphemeralDataRequest):
            outcome = self._keys_computation(item.ephemeral_data)
            if isinstance(outcome, Computation):
                self.state = target
            return _step(outcome)
        if isinstance(item, KeysComputed):
            self._keys = item
            assert self._ephemeral_public is not None
            self._wait(target, self._peer_confirm_time, now)
            return Step(send=(EphemeralDataResponse(ephemeral_data=self._ephemeral_public),))
        assert isinstance(item, ConfirmKeyDataRequest)
        keys = self._keys
        assert keys is not None
        if not hmac.compare_digest(item.mac, keys.macu):
            return self._terminate(TerminateStatus.BAD_KEY_CONFIRM)
        return Step(
            send=(ConfirmKeyDataResponse(mac=keys.macv),),
            events=(self._established(keys.key_data),),
        )


class KeyEstablishmentServer:
    """Responders for any number of partners, at most ``max_sessions`` at a time, one each.

    The session table keeps one slot from being held by partners that go quiet (#12.25):

    - a partner's advertised generate times count for at most ``max_partner_time`` seconds;
    - when every slot is taken, an Initiate Key Establishment Request from a new partner takes
      the slot of the session that has waited longest on a silent partner, once that wait
      reaches ``stall_after`` seconds; the evicted session ends as a timeout does (its event
      comes out of the next :meth:`handle_timeout`, which :meth:`next_deadline` makes due);
    - otherwise the request is answered with Terminate NO_RESOURCES and a wait time: at least
      ``busy_wait_time``, and long enough for a slot to be freed by then.

    Fairness when slots are scarce (issue #20.4), a preference for partners that progress:

    - partners told NO_RESOURCES keep their turn, in the order they were told, for their wait
      and ``turn_grace`` seconds more (``max_waiting`` at most): a stalled slot goes to the
      first of them that comes back, not to a newcomer that never waited;
    - a partner whose session was evicted for stalling may not evict anyone for
      ``stall_memory`` seconds (it may still take a free slot): a source that makes no progress
      cannot keep taking the slots of those that do. Both tables are bounded.

    A budget on the arithmetic: each Initiate accepted costs a certificate reconstruction and
    a key pair. After an exchange with a partner ends by a Terminate, sent or received, the
    server keeps the wait time its own Terminates carry (``wait_time``): that partner's
    Initiate is answered NO_RESOURCES with the time left, at no cost, until it has passed (at
    most ``max_cooling`` partners remembered). A partner restarting at will (an Initiate in a
    running exchange is BAD_MESSAGE) would otherwise buy one computation per two frames.
    """

    def __init__(
        self,
        credentials: Credentials | HeldCredentials | Iterable[Credentials | HeldCredentials],
        *,
        max_sessions: int = 1,
        busy_wait_time: int = DEFAULT_WAIT_TIME,
        max_partner_time: int = DEFAULT_MAX_PARTNER_TIME,
        stall_after: float = DEFAULT_STALL_AFTER,
        turn_grace: float = 30.0,
        max_waiting: int = 16,
        stall_memory: float = 600.0,
        max_stalled: int = 256,
        max_cooling: int = 256,
        **responder_options: object,
    ) -> None:
        if max_sessions < 1:
            raise ValueError("a key establishment server needs at least one session")
        self.max_cooling = max_cooling
        # partners whose exchange ended by a Terminate, with when they may start another
        self._cooling: dict[bytes, float] = {}
        self.turn_grace = turn_grace
        self.max_waiting = max_waiting
        self.stall_memory = stall_memory
        self.max_stalled = max_stalled
        # partners told NO_RESOURCES, in the order told, with when their turn lapses
        self._waiting: dict[bytes, float] = {}
        # partners whose session was evicted for stalling, with when (oldest first)
        self._stalled: dict[bytes, float] = {}
        self._credentials = _credentials_by_suite(credentials)
        self.max_sessions = max_sessions
        self.busy_wait_time = busy_wait_time
        self.stall_after = stall_after
        self._options = {"max_partner_time": max_partner_time, **responder_options}
        self._sessions: dict[bytes, Responder] = {}
        self._evicted: list[tuple[bytes, Step]] = []
        self._evicted_at: float | None = None

    @property
    def supported_suites(self) -> int:
        """The Key Establishment Suite attribute value to publish."""
        return supported_suites(self._credentials.values())

    def session(self, partner_eui64: bytes) -> Responder | None:
        """The responder currently serving this partner, if any."""
        return self._sessions.get(bytes(partner_eui64))

    def _prune(self) -> None:
        for partner in [p for p, r in self._sessions.items() if r.state in _FINAL]:
            del self._sessions[partner]

    def _responder(self, partner: bytes) -> Responder:
        return Responder(self._credentials.values(), partner, **self._options)  # type: ignore[arg-type]

    def _free_at(self, responder: Responder) -> float | None:
        """When this session gives way: the end of its stall allowance or its deadline."""
        if responder.waiting_since is None:
            return None  # computing: it moves on by itself
        free = responder.waiting_since + self.stall_after
        deadline = responder.next_deadline()
        return free if deadline is None else min(free, deadline)

    def _make_room(self, now: float, newcomer: bytes) -> int | None:
        """Evict the longest-stalled session if ``newcomer`` may take it (see the class
        docstring); else the wait time to give it."""
        for partner in [p for p, lapses in self._waiting.items() if lapses <= now]:
            del self._waiting[partner]
        for partner in [p for p, at in self._stalled.items() if at + self.stall_memory <= now]:
            del self._stalled[partner]
        free = {p: at for p, r in self._sessions.items() if (at := self._free_at(r)) is not None}
        wait = self.busy_wait_time
        if free:
            partner = min(free, key=free.__getitem__)
            due = sorted(at for at in free.values() if at <= now)
            order = list(self._waiting)
            ahead = order.index(newcomer) if newcomer in self._waiting else len(order)
            if due and newcomer not in self._stalled and ahead < len(due):
                self._waiting.pop(newcomer, None)
                step = self._sessions.pop(partner).abort(now)
                self._evicted.append((partner, step))
                self._evicted_at = now if self._evicted_at is None else self._evicted_at
                self._note_stalled(partner, now)
                return None
            soonest = int(-(-(free[partner] - now) // 1))
            wait = min(_NO_CAP - 1, max(self.busy_wait_time, soonest))
        if newcomer not in self._stalled and (
            newcomer in self._waiting or len(self._waiting) < self.max_waiting
        ):
            self._waiting.setdefault(newcomer, now + wait + self.turn_grace)
        return wait

    def _note_stalled(self, partner: bytes, now: float) -> None:
        self._stalled.pop(partner, None)
        self._stalled[partner] = now
        self._waiting.pop(partner, None)
        while len(self._stalled) > self.max_stalled:
            del self._stalled[next(iter(self._stalled))]

    def _settle(self, partner: bytes, responder: Responder, step: Step, now: float) -> Step:
        """Note an exchange that ``step`` ended by a Terminate: the partner cools down."""
        if any(isinstance(e, Terminated) and not e.timed_out for e in step.events):
            self._cooling.pop(partner, None)
            self._cooling[partner] = now + responder.wait_time
            while len(self._cooling) > self.max_cooling:
                del self._cooling[next(iter(self._cooling))]
        return step

    def _cooling_wait(self, partner: bytes, now: float) -> int | None:
        """Seconds left before ``partner`` may start an exchange again, or None."""
        for expired in [p for p, until in self._cooling.items() if until <= now]:
            del self._cooling[expired]
        until = self._cooling.get(partner)
        return None if until is None else min(_NO_CAP - 1, max(1, int(-(-(until - now) // 1))))

    @staticmethod
    def _busy(wait: int, suite: int) -> Step:
        status = TerminateStatus.NO_RESOURCES
        return Step(
            send=(TerminateKeyEstablishment(status=status, wait_time=wait, suite=suite),),
            events=(Terminated(status=status, wait_time=wait, by_peer=False),),
        )

    def receive(self, partner_eui64: bytes, message: Message, now: float) -> Step:
        """Route one decoded message from ``partner_eui64``."""
        partner = _check_eui64(partner_eui64, "partner_eui64")
        self._prune()
        responder = self._sessions.get(partner)
        if responder is not None and isinstance(message, InitiateKeyEstablishmentRequest):
            deadline = responder.next_deadline()
            if deadline is not None and now >= deadline:
                # The partner starts again after the session's deadline, before the timer
                # ran: the session ends as its timeout does, and the new exchange is served
                # as it is once the timer has run (not taken as the old one's late message).
                del self._sessions[partner]
                return responder.handle_timeout(now).then(self.receive(partner, message, now))
        if responder is None:
            if isinstance(message, TerminateKeyEstablishment):
                return Step()
            if isinstance(message, InitiateKeyEstablishmentRequest):
                wait = self._cooling_wait(partner, now)
                if wait is None and len(self._sessions) >= self.max_sessions:
                    wait = self._make_room(now, partner)
                if wait is not None:
                    return self._busy(wait, message.suite)
            responder = self._responder(partner)
            self._sessions[partner] = responder
            self._waiting.pop(partner, None)  # its turn is taken
        return self._settle(partner, responder, responder.receive(message, now), now)

    def receive_payload(
        self, partner_eui64: bytes, command_id: int, payload: bytes, now: float
    ) -> Step:
        """Decode a client-to-server payload from ``partner_eui64`` and route it."""
        try:
            message = decode_client_command(command_id, payload)
        except DecodeError:
            partner = _check_eui64(partner_eui64, "partner_eui64")
            responder = self._sessions.get(partner)
            if responder is None:
                responder = self._responder(partner)
            step = responder.receive_payload(command_id, payload, now)
            return self._settle(partner, responder, step, now)
        return self.receive(partner_eui64, message, now)

    def complete(
        self, partner_eui64: bytes, computation: Computation, result: ComputeResult, now: float
    ) -> Step:
        """Feed back a computation returned for ``partner_eui64``."""
        partner = bytes(partner_eui64)
        responder = self._sessions.get(partner)
        if responder is None:
            return Step()
        return self._settle(partner, responder, responder.complete(computation, result, now), now)

    def abort(self, partner_eui64: bytes, now: float) -> Step:
        """End the exchange with ``partner_eui64`` locally (it cannot be reached)."""
        responder = self._sessions.pop(bytes(partner_eui64), None)
        return Step() if responder is None else responder.abort(now)

    def next_deadline(self) -> float | None:
        """The earliest deadline over all sessions (an eviction is due at once)."""
        deadlines = [d for r in self._sessions.values() if (d := r.next_deadline()) is not None]
        if self._evicted_at is not None:
            deadlines.append(self._evicted_at)
        return min(deadlines, default=None)

    def handle_timeout(self, now: float) -> list[tuple[bytes, Step]]:
        """Time out every session past its deadline; returns (partner, step) pairs, evicted
        sessions first."""
        steps, self._evicted, self._evicted_at = self._evicted, [], None
        for partner, responder in list(self._sessions.items()):
            step = responder.handle_timeout(now)
            if step.events:
                steps.append((partner, step))
        self._prune()
        return steps

    def run_inline(self, partner_eui64: bytes, step: Step, now: float) -> Step:
        """:func:`run_inline` for a step returned for ``partner_eui64``, each result fed
        back through :meth:`complete`."""
        if bytes(partner_eui64) not in self._sessions:
            return step
        return _inline(lambda c, r, t: self.complete(partner_eui64, c, r, t), step, now)


def run_inline(machine: Initiator | Responder, step: Step, now: float) -> Step:
    """Run a step's computations synchronously, feeding results back, until none is left."""
    return _inline(machine.complete, step, now)


def _inline(
    complete: Callable[[Computation, ComputeResult, float], Step], step: Step, now: float
) -> Step:
    """:func:`run_inline` with the results fed back to ``complete``."""
    while step.compute is not None:
        computation = step.compute
        step = Step(send=step.send, events=step.events).then(
            complete(computation, computation.run(), now)
        )
    return step
