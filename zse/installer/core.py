"""The installer terminal's signed commands and the hub's ledger (sans-IO), GB style.

In GB smart metering the installer's hand-held terminal does not decide what a hub does: it
carries commands the back office signed, and the hub checks the signature with the back
office's public key and that each command's *originator counter* is above every counter it has
executed from that originator (GB Companion Specification: signed messages relayed by the hub,
replay protection by strictly increasing originator counters). The GBCS message formats were
out of reach here; the format below is zse's own, documented in docs/installer.md:

``SignedCommand`` (octets, big-endian numbers)
    version ``0x02``, originator (8, the back office's entity id), target (8, the EUI-64 of
    the hub it is for, most significant octet first as in a certificate's subject,
    :func:`zse.cbke.ca.eui64_bytes`), originator counter (u64), command code (u8), body length
    (u16), body, signature (ECDSA over everything before it, AES-MMO digest, ``r || s``: 42
    octets on sect163k1, :mod:`zse.cbke.ecdsa`). The target is signed with the rest: the hub
    refuses a command for another hub (WRONG_TARGET), as its counters are its own (GBCS
    commands carry a Business Target ID for this; the GBCS text was out of reach, the field
    here is zse's own). Version ``0x01`` (no target) is refused MALFORMED.

``CommandResponse``
    originator counter (u64), status (u8, :class:`Outcome`), result length (u16), result.

:class:`HubLedger` decides, for one received command, whether it runs: a bad signature, an
unknown originator, another hub's target or a counter at or below the last one executed are
refused (and told); the very command already executed (same counter, same signed octets,
whichever of ECDSA's two valid signatures it carries: a terminal resending after its link
broke) is answered DUPLICATE with the stored outcome, never run again. A command that may
run is *begun* (the shell persists that first, and :meth:`HubLedger.abandon` s it if that
fails: it has not run), run, then *done* with its outcome. After a restart a begun command
that is not done is INTERRUPTED, never re-run.
"""

from __future__ import annotations

import enum
import logging
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from zse.cbke import ecdsa
from zse.cbke.keys import public_key_from_private
from zse.cbke.suites import SUITE1, Suite
from zse.errors import InvalidFrame
from zse.installcode import mmo_hash
from zse.records import BOOL, Fields, Int, Mismatch, RecordError, Shape, check, load_each

__all__ = [
    "BackOffice",
    "CommandCode",
    "CommandResponse",
    "Decision",
    "HubLedger",
    "Outcome",
    "SignedCommand",
    "Verified",
    "originators_of",
]

LOGGER = logging.getLogger(__name__)

#: 0x01 named no target hub: a command signed for one hub ran on any other (refused MALFORMED).
VERSION: Final = 0x02
_HEAD = struct.Struct(">B8s8sQBH")
#: An EUI-64 (the target hub's): 8 octets.
EUI64_OCTETS: Final = 8
_RESPONSE = struct.Struct(">QBH")
#: Outcomes kept per originator (for DUPLICATE answers); older counters are simply stale.
DEFAULT_KEEP: Final = 64


class CommandCode(enum.IntEnum):
    """What a signed command asks of the hub (zse's codes)."""

    SET_TIME = 0x01  #: body: UTCTime (u32, seconds since 2000-01-01)
    READ_STATUS = 0x02  #: body: empty; result: the hub's status text
    SET_TARIFF_LABEL = 0x03  #: body: a label (UTF-8)


class Outcome(enum.IntEnum):
    """A command's status in its response."""

    EXECUTED = 0x00
    DUPLICATE = 0x01  #: the same command again: not run, the stored outcome returned
    STALE_COUNTER = 0x02  #: a counter at or below the last executed: refused
    BAD_SIGNATURE = 0x03
    UNKNOWN_ORIGINATOR = 0x04
    INTERRUPTED = 0x05  #: begun before a restart, never finished: not run again
    FAILED = 0x06  #: run, and the hub's handler failed
    MALFORMED = 0x07
    UNSUPPORTED = 0x08  #: no handler for the command code
    WRONG_TARGET = 0x09  #: signed for another hub: refused, never run


@dataclass(frozen=True, kw_only=True)
class SignedCommand:
    """One command signed by an originator (see the module docstring)."""

    originator: bytes
    target: bytes  #: the EUI-64 of the hub it is for, most significant octet first
    counter: int
    code: int
    body: bytes
    signature: bytes = field(repr=False)

    def signed_part(self) -> bytes:
        """The octets the signature covers."""
        head = _HEAD.pack(
            VERSION, self.originator, self.target, self.counter, self.code, len(self.body)
        )
        return head + self.body

    def encode(self) -> bytes:
        """The command as sent."""
        return self.signed_part() + self.signature

    @property
    def digest(self) -> str:
        """AES-MMO of what the signature covers, hex: what identifies a resend of the same
        command. Not of the signature too: ECDSA's (r, n - s) verifies as (r, s) does, so the
        very command can arrive with either (anyone can make the other one)."""
        return mmo_hash(self.signed_part()).hex()

    @classmethod
    def decode(cls, data: bytes, *, suite: Suite = SUITE1) -> SignedCommand:
        """Parse a command; :class:`~zse.errors.InvalidFrame` naming what is wrong."""
        data = bytes(data)
        if data and data[0] != VERSION:  # 0x01 named no target hub: refused, never guessed
            raise InvalidFrame(f"signed command version {data[0]} at offset 0 is not {VERSION}")
        if len(data) < _HEAD.size:
            raise InvalidFrame(f"signed command: {len(data)} octets, shorter than its header")
        _, originator, target, counter, code, length = _HEAD.unpack_from(data)
        end = _HEAD.size + length
        if len(data) != end + suite.signature_size:
            raise InvalidFrame(
                f"signed command: body of {length} octets at offset {_HEAD.size} and a "
                f"{suite.signature_size}-octet signature need {end + suite.signature_size} "
                f"octets, got {len(data)}"
            )
        return cls(
            originator=originator,
            target=target,
            counter=counter,
            code=code,
            body=data[_HEAD.size : end],
            signature=data[end:],
        )


@dataclass(frozen=True, kw_only=True)
class CommandResponse:
    """The hub's answer to one command."""

    counter: int
    status: Outcome
    result: bytes = b""

    def encode(self) -> bytes:
        """The response as sent."""
        return _RESPONSE.pack(self.counter, self.status, len(self.result)) + self.result

    @classmethod
    def decode(cls, data: bytes) -> CommandResponse:
        """Parse a response; :class:`~zse.errors.InvalidFrame` if it is not one."""
        data = bytes(data)
        if len(data) < _RESPONSE.size:
            raise InvalidFrame(f"command response: {len(data)} octets, shorter than its header")
        counter, status, length = _RESPONSE.unpack_from(data)
        if len(data) != _RESPONSE.size + length:
            raise InvalidFrame(
                f"command response: result of {length} octets, {len(data) - _RESPONSE.size} present"
            )
        try:
            outcome = Outcome(status)
        except ValueError:
            raise InvalidFrame(f"command response status 0x{status:02X} at offset 8") from None
        return cls(counter=counter, status=outcome, result=data[_RESPONSE.size :])


class BackOffice:
    """The signer of commands: one originator id and its private key (suite 1 curve). The
    terminal carries what it signs and cannot make its own (it has no private key)."""

    def __init__(self, originator: bytes, private_key: bytes, *, suite: Suite = SUITE1) -> None:
        if len(originator) != 8:
            raise ValueError("an originator id is 8 octets")
        self.originator = bytes(originator)
        self.suite = suite
        self._private_key = bytes(private_key)
        self.public_key = public_key_from_private(suite, self._private_key)
        self._counter = 0

    def __repr__(self) -> str:
        return f"<BackOffice {self.originator.hex()}>"

    def sign(
        self, code: int, body: bytes = b"", *, target: bytes, counter: int | None = None
    ) -> SignedCommand:
        """A command for the hub whose EUI-64 is ``target`` (8 octets, most significant
        first: :func:`zse.cbke.ca.eui64_bytes`) with the next counter (or ``counter``),
        signed."""
        target = _eui64(target, "a target")
        if counter is None:
            self._counter += 1
            counter = self._counter
        unsigned = SignedCommand(
            originator=self.originator,
            target=target,
            counter=counter,
            code=code,
            body=body,
            signature=b"",
        )
        signature = ecdsa.sign(self.suite, self._private_key, unsigned.signed_part())
        return replace(unsigned, signature=signature)


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What the ledger decided about a command: ``run`` it (begin it first), or answer
    ``response`` at once."""

    run: bool
    response: CommandResponse | None = None


@dataclass(frozen=True, kw_only=True)
class Verified:
    """A received command decoded and its signature checked (:meth:`HubLedger.verify`):
    ``command`` (None: it could not be decoded), and ``refused``, the outcome that refuses it
    (None: signed by a known originator, for this hub), with ``problem`` saying why."""

    command: SignedCommand | None
    refused: Outcome | None = None
    problem: str = ""


@dataclass
class _Originator:
    last: int = 0
    outcomes: OrderedDict[int, dict[str, Any]] = field(default_factory=OrderedDict)


class HubLedger:
    """The hub's record of signed commands, per originator (see the module docstring).

    ``originators`` maps an originator id to its public key; ``hub`` is this hub's EUI-64 (8
    octets, most significant first: :func:`zse.cbke.ca.eui64_bytes`), the only target it
    runs commands for. :meth:`changes` gives the records
    to persist (key -> value, None to delete) since the last call (:meth:`unsaved` gives back
    those a failed commit did not persist); :meth:`from_records` loads them back.
    """

    def __init__(
        self,
        originators: Mapping[bytes, bytes],
        *,
        hub: bytes,
        suite: Suite = SUITE1,
        keep: int = DEFAULT_KEEP,
    ) -> None:
        self.hub = _eui64(hub, "a hub")
        self.originators = {bytes(k): bytes(v) for k, v in originators.items()}
        self.suite = suite
        self.keep = keep
        self._state: dict[bytes, _Originator] = {}
        self._changes: dict[str, dict[str, Any] | None] = {}
        self._before_begin: (
            tuple[SignedCommand, _Originator | None, dict[str, dict[str, Any] | None]] | None
        ) = None
        self.refused: dict[Outcome, int] = {}

    # -- decisions ------------------------------------------------------------------------

    def decide(self, data: bytes) -> tuple[SignedCommand | None, Decision]:
        """Decode and judge a received command: :meth:`judge` of :meth:`verify`."""
        return self.judge(self.verify(data))

    def verify(self, data: bytes) -> Verified:
        """Decode a received command and check its originator's signature. The curve
        arithmetic (milliseconds in pure Python) is all here, and nothing of the ledger
        changes: a shell runs it in an executor, off the event loop (as docs/cbke.md asks)."""
        try:
            command = SignedCommand.decode(data, suite=self.suite)
        except InvalidFrame as exc:
            return Verified(command=None, refused=Outcome.MALFORMED, problem=str(exc))
        key = self.originators.get(command.originator)
        if key is None:
            return Verified(command=command, refused=Outcome.UNKNOWN_ORIGINATOR)
        if command.target != self.hub:  # before the curve arithmetic: not ours, whoever signed
            return Verified(command=command, refused=Outcome.WRONG_TARGET)
        if not ecdsa.verify(self.suite, key, command.signed_part(), command.signature):
            return Verified(command=command, refused=Outcome.BAD_SIGNATURE)
        return Verified(command=command)

    def judge(self, verified: Verified) -> tuple[SignedCommand | None, Decision]:
        """Judge a :meth:`verify`'d command against the ledger (repeat, counter)."""
        command = verified.command
        if command is None:
            LOGGER.warning("signed command refused: %s", verified.problem)
            return None, self._refuse(0, Outcome.MALFORMED)
        if verified.refused is Outcome.UNKNOWN_ORIGINATOR:
            LOGGER.warning("signed command from unknown originator %s", command.originator.hex())
            return command, self._refuse(command.counter, Outcome.UNKNOWN_ORIGINATOR)
        if verified.refused is not None:
            LOGGER.warning(
                "signed command %d from %s for %s refused: %s",
                command.counter,
                command.originator.hex(),
                command.target.hex(),
                verified.refused.name,
            )
            return command, self._refuse(command.counter, verified.refused)
        state = self._state.setdefault(command.originator, _Originator())
        stored = state.outcomes.get(command.counter)
        if stored is not None and stored["digest"] == command.digest:
            status = Outcome(stored["status"])  # a begun record says INTERRUPTED
            LOGGER.info(
                "signed command %d from %s again: %s, not run",
                command.counter,
                command.originator.hex(),
                status.name,
            )
            result = bytes.fromhex(stored.get("result", ""))
            duplicate = Outcome.DUPLICATE if status is Outcome.EXECUTED else status
            return command, Decision(
                run=False,
                response=CommandResponse(counter=command.counter, status=duplicate, result=result),
            )
        if command.counter <= state.last:
            LOGGER.warning(
                "signed command %d from %s refused: counter not above %d",
                command.counter,
                command.originator.hex(),
                state.last,
            )
            return command, self._refuse(command.counter, Outcome.STALE_COUNTER)
        return command, Decision(run=True)

    def _refuse(self, counter: int, status: Outcome) -> Decision:
        self.refused[status] = self.refused.get(status, 0) + 1
        return Decision(run=False, response=CommandResponse(counter=counter, status=status))

    def begin(self, command: SignedCommand) -> None:
        """Record that ``command`` runs now (persist :meth:`changes` before running it; if
        that fails, :meth:`abandon` it: it has not run)."""
        state = self._state.get(command.originator)
        self._before_begin = (
            command,
            None if state is None else _Originator(state.last, OrderedDict(state.outcomes)),
            dict(self._changes),
        )
        state = self._state.setdefault(command.originator, _Originator())
        state.last = command.counter
        record = {"digest": command.digest, "status": Outcome.INTERRUPTED, "begun": True}
        self._put(command.originator, command.counter, record)

    def abandon(self, command: SignedCommand) -> None:
        """Undo the :meth:`begin` of ``command`` whose records could not be persisted: the
        ledger (and its pending :meth:`changes`) is as it was before, so the command, sent
        again, runs. Only right after that ``begin``; ``ValueError`` otherwise."""
        before = self._before_begin
        if before is None or before[0] is not command:
            raise ValueError("abandon() undoes the last begin() of the same command only")
        self._before_begin = None
        _, state, changes = before
        if state is None:
            self._state.pop(command.originator, None)
        else:
            self._state[command.originator] = state
        self._changes = changes

    def done(self, command: SignedCommand, status: Outcome, result: bytes = b"") -> CommandResponse:
        """Record ``command``'s outcome; the response to send (after persisting)."""
        self._before_begin = None
        record = {"digest": command.digest, "status": int(status), "result": result.hex()}
        self._put(command.originator, command.counter, record)
        return CommandResponse(counter=command.counter, status=status, result=result)

    def last_counter(self, originator: bytes) -> int:
        """The highest counter begun from ``originator`` (0: none)."""
        state = self._state.get(bytes(originator))
        return 0 if state is None else state.last

    # -- persistence ----------------------------------------------------------------------

    def _put(self, originator: bytes, counter: int, record: dict[str, Any]) -> None:
        state = self._state.setdefault(originator, _Originator())
        state.outcomes[counter] = record
        state.outcomes.move_to_end(counter)
        self._changes[_key(originator, counter)] = dict(record)
        while len(state.outcomes) > self.keep:
            old, _ = state.outcomes.popitem(last=False)
            self._changes[_key(originator, old)] = None
        self._changes[f"{originator.hex()}:last"] = {"last": state.last}

    def changes(self) -> dict[str, dict[str, Any] | None]:
        """What changed since the last call: record key -> value (None: delete)."""
        changes, self._changes = self._changes, {}
        return changes

    def unsaved(self, changes: Mapping[str, dict[str, Any] | None]) -> None:
        """Give back ``changes`` (from :meth:`changes`) that could not be persisted: the next
        :meth:`changes` returns them again, under any made since."""
        self._changes = {**changes, **self._changes}

    @property
    def pending(self) -> bool:
        """Whether some changes are not persisted yet."""
        return bool(self._changes)

    @classmethod
    def from_records(
        cls,
        records: Mapping[str, Any],
        originators: Mapping[bytes, bytes],
        *,
        hub: bytes,
        namespace: str = "installer.hub",
        on_bad: Callable[[RecordError], None] | None = None,
        **options: Any,
    ) -> HubLedger:
        """A ledger from persisted records: a begun command never done is INTERRUPTED.

        Each record is checked (:mod:`zse.records`) before it is used: a wrong-shaped one is a
        :class:`~zse.records.RecordError`, raised, or given to ``on_bad`` and skipped (the hub
        has the store quarantine it, :meth:`zse.store.Store.load_with`)."""
        ledger = cls(originators, hub=hub, **options)

        def load(key: str, value: Any) -> None:
            originator, counter = _parse_key(key)
            if counter is None:
                check(value, _LAST)
                state = ledger._state.setdefault(originator, _Originator())
                state.last = max(state.last, value["last"])
            else:
                check(value, _OUTCOME)
                state = ledger._state.setdefault(originator, _Originator())
                state.outcomes[counter] = dict(value)
                state.last = max(state.last, counter)

        load_each(
            sorted(records.items(), key=lambda kv: _order(kv[0])),
            load,
            namespace=namespace,
            on_bad=on_bad,
        )
        return ledger


class _Hex(Shape):
    """A string of lowercase hex digits, of ``octets`` octets if given (else at most 0xFFFF,
    what a response's length field holds)."""

    def __init__(self, octets: int | None = None) -> None:
        self.octets = octets

    def check(self, value: object, path: str) -> None:
        if not isinstance(value, str):
            raise Mismatch(f"{path}: expected a hex string, got {type(value).__name__}")
        digits = 2 * (self.octets if self.octets is not None else 0xFFFF)
        exact = self.octets is not None
        if (len(value) != digits if exact else len(value) > digits) or len(value) % 2:
            raise Mismatch(f"{path}: a hex string of the wrong length")
        if value.strip(_HEX_DIGITS):
            raise Mismatch(f"{path}: not a hex string")


_HEX_DIGITS: Final = "0123456789abcdef"
_ORIGINATOR_OCTETS: Final = 8  # _HEAD's first "8s"
_COUNTER_DIGITS: Final = 20  # _key: a u64 counter, zero-padded
_LAST: Final = Fields({"last": Int(0, 2**64 - 1)})
_OUTCOME: Final = Fields(
    {"digest": _Hex(16), "status": Int(min(Outcome), max(Outcome))},
    {"result": _Hex(), "begun": BOOL},
)


def _parse_key(key: str) -> tuple[bytes, int | None]:
    """(originator, counter) of a record key (None: the originator's ``last`` record);
    :class:`~zse.records.Mismatch` if it is not one :meth:`HubLedger._put` writes."""
    originator_hex, _, what = key.partition(":")
    if len(originator_hex) != 2 * _ORIGINATOR_OCTETS or originator_hex.strip(_HEX_DIGITS):
        raise Mismatch("key: not an originator id")
    originator = bytes.fromhex(originator_hex)
    if what == "last":
        return originator, None
    if len(what) != _COUNTER_DIGITS or what.strip("0123456789"):
        raise Mismatch("key: not a counter")
    counter = int(what)
    if counter >= 2**64:
        raise Mismatch("key: counter out of range")
    return originator, counter


def _eui64(value: bytes, what: str) -> bytes:
    """``value`` as the 8 octets of an EUI-64; ``TypeError`` / ``ValueError`` naming ``what``
    otherwise (a zigpy ``EUI64`` holds its octets least significant first: pass it through
    :func:`zse.cbke.ca.eui64_bytes`)."""
    if not isinstance(value, bytes | bytearray):
        raise TypeError(f"{what} is an EUI-64 as bytes (eui64_bytes), not {type(value).__name__}")
    value = bytes(value)
    if len(value) != EUI64_OCTETS:
        raise ValueError(f"{what} is an EUI-64 of {EUI64_OCTETS} octets, not {len(value)}")
    return value


def _key(originator: bytes, counter: int) -> str:
    return f"{originator.hex()}:{counter:020d}"


def _order(key: str) -> tuple[str, str]:
    originator, _, what = key.partition(":")
    return originator, what


def originators_of(offices: Iterable[BackOffice]) -> dict[bytes, bytes]:
    """The ``originators`` mapping of :class:`HubLedger` for some back offices."""
    return {office.originator: office.public_key for office in offices}
