"""Messaging (SE D.5) as sans-IO cores: the ESI's message store and a HAN device's message board.

:class:`Message` is one Display Message / Display Protected Message (D.5.2.3.1, D.5.2.3.3) as
plain values. :class:`MessageStore` is the server side: messages sent to devices and groups,
cancels, Cancel All Messages with their implementation times, and the confirmations collected
per device. :class:`MessageBoard` is the client side: which message is shown when, replacement,
expiry, cancel and cancel-all with an implementation time, protected messages, confirmations.

Time is always an argument: ZigBee UTCTime seconds (since 2000-01-01 UTC). Both cores expose
``next_deadline()`` and ``handle_timeout(now)``, and ``to_records()`` / ``from_records()`` for
:mod:`zse.store` (plain JSON values). Nothing here does I/O.

Frame limits (why a message has a maximum size): see :func:`max_message_bytes`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from zse.errors import DecodeError, ZseError
from zse.records import (
    BOOL,
    BYTES,
    STR,
    U16,
    U32,
    Fields,
    Int,
    ListOf,
    MapOf,
    Mismatch,
    Opt,
    RecordError,
    TupleOf,
    Type,
    check,
    load_each,
)
from zse.se.frames import max_zcl_payload

__all__ = [
    "CANCEL_ALL_SKEW",
    "DURATION_UNTIL_CHANGED",
    "MAX_RESPONSE_BYTES",
    "MESSAGE_RETENTION",
    "RETIME_TOLERANCE",
    "START_NOW",
    "BoardEvent",
    "Confirmation",
    "ConfirmationRecord",
    "ConfirmationRefused",
    "InvalidMessage",
    "Message",
    "MessageBoard",
    "MessageCancelled",
    "MessageDisplayed",
    "MessageError",
    "MessageExpired",
    "MessageReplaced",
    "MessageScheduled",
    "MessageStore",
    "MessageTooLong",
    "StoredMessage",
    "confirmed_in_command",
    "displayable_text",
    "max_message_bytes",
    "max_zcl_payload",
    "message_from_command",
    "text_length",
    "text_problem",
]

#: Start time meaning "now" (D.5.2.3.1.1.3).
START_NOW = 0
#: Duration meaning "until changed" (D.5.2.3.1.1.4).
DURATION_UNTIL_CHANGED = 0xFFFF
#: Longest Message Confirmation Response (D.5.2.4.2.1.4), octets.
MAX_RESPONSE_BYTES = 20
#: Seconds the ESI keeps a message once it is over (expired or cancelled), with its
#: confirmations (a late Message Confirmation is still taken), before forgetting it.
MESSAGE_RETENTION = 86_400

# -- frame limits -----------------------------------------------------------------------------
# The ZCL payload one unfragmented frame carries: zse.se.frames (70 octets APS-encrypted
# unicast, 78 by group; SE D.5.2.3.1.1.5 counts the same 70).
_DISPLAY_FIXED = 4 + 1 + 4 + 2  # message id, message control, start time, duration
_EXTENDED_CONTROL = 1


def max_message_bytes(*, group: bool = False, extended_control: bool = True) -> int:
    """Longest message text (UTF-8 octets) in an unfragmented Display Message.

    57 for an APS-encrypted unicast carrying the Extended Message Control (58 without it), 65
    (66) by group. The ESI answers Get Last Message by unicast with the Extended Message Control
    (the confirmation status), so a message it stores must fit the unicast frame: 57.
    """
    fixed = _DISPLAY_FIXED + 1 + (_EXTENDED_CONTROL if extended_control else 0)
    return max_zcl_payload(group=group) - fixed


def text_length(text: str) -> int:
    """The message's length on the wire in octets (UTF-8; undecodable bytes kept as-is)."""
    return len(text.encode("utf-8", "surrogateescape"))


#: Control characters (Unicode category Cc: C0, DEL, C1) but the line break, which a
#: multi-line display may honour (SE D.5.2.3.1.1.5 gives the text as a UTF-8 ZCL character
#: string and leaves its layout to the device).
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be a message's text, or None: a control character other than the
    line break (NUL, ESC, BEL... reach a display or an operator's terminal as commands)."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    return (
        f"has a control character (U+{ord(found[0]):04X} at {found.start()}); "
        "only a line break may be in a message"
    )


def displayable_text(text: str) -> str:
    """``text`` with each control character :func:`text_problem` refuses replaced by U+FFFD:
    a message from the air or an older store is shown, never its control characters."""
    return _CONTROL.sub("\ufffd", text)


class MessageError(ZseError, ValueError):
    """A messaging request that the spec does not allow (e.g. confirming twice)."""


class ConfirmationRefused(MessageError):
    """The ESI answered a Message Confirmation (D.5.2.4.2) with a failure status in its Default
    Response (NOT_FOUND: it does not hold the message; INVALID_FIELD...): the confirmation is not
    sent again. ``status`` is the ZCL status value."""

    def __init__(self, message_id: int, status: int, name: str) -> None:
        super().__init__(f"the ESI refused the confirmation of message {message_id}: {name}")
        self.message_id = message_id
        self.status = status


class MessageTooLong(MessageError):
    """A message text longer than one unfragmented frame can carry (see max_message_bytes)."""


class InvalidMessage(MessageError, DecodeError):
    """A :class:`Message` field of the wrong type or outside its wire field (D.5.2.3.1.1)."""


# -- values -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Message:
    """One message as Display Message carries it (D.5.2.3.1); ``protected`` for D.5.2.3.3.

    The Message Control field (D.5.2.3.1.1.2) is given as its parts: ``transmission`` (0-3),
    ``importance`` (0 low .. 3 critical), ``confirmation_required`` (bit 7) and
    ``enhanced_confirmation_required`` (bit 5, SE 1.2: a yes/no answer and an optional text).
    Checked when built: ``text`` a ``str`` without control characters but the line break
    (:func:`text_problem`), the flags ``bool``, the numbers ``int`` (not ``bool``) that fit
    their fields; :class:`InvalidMessage` otherwise. A received message's text is made
    displayable first (:func:`message_from_command`, :meth:`from_record`).
    """

    message_id: int
    text: str
    start_time: int = START_NOW
    duration_in_minutes: int = DURATION_UNTIL_CHANGED
    importance: int = 0
    transmission: int = 0
    confirmation_required: bool = False
    enhanced_confirmation_required: bool = False
    protected: bool = False

    def __post_init__(self) -> None:
        text: object = self.text  # typed str, but built from anything at run time
        if not isinstance(text, str):
            hint = ": decode it first (the wire carries UTF-8)" if _is_octets(text) else ""
            raise InvalidMessage(f"text must be a str, got {type(text).__name__}{hint}")
        problem = text_problem(text)
        if problem is not None:
            raise InvalidMessage(f"text {problem}")
        for name, bits in (
            ("message_id", 32),
            ("start_time", 32),
            ("duration_in_minutes", 16),
            ("importance", 2),
            ("transmission", 2),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                kind = type(value).__name__
                raise InvalidMessage(f"{name} must be an integer, got {kind} {value!r}")
            if not 0 <= value < 1 << bits:
                raise InvalidMessage(f"{name} must fit in {bits} bits, got {value}")
        for name in ("confirmation_required", "enhanced_confirmation_required", "protected"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                kind = type(value).__name__
                raise InvalidMessage(f"{name} must be True or False, got {kind} {value!r}")

    @property
    def needs_confirmation(self) -> bool:
        """Whether the device must send Message Confirmation (plain or enhanced)."""
        return self.confirmation_required or self.enhanced_confirmation_required

    def starts(self, received_at: int) -> int:
        """Absolute start: start time 0 means when it was received."""
        return received_at if self.start_time == START_NOW else self.start_time

    def ends(self, received_at: int) -> int | None:
        """Absolute end (exclusive), or None for "until changed"."""
        if self.duration_in_minutes == DURATION_UNTIL_CHANGED:
            return None
        return self.starts(received_at) + 60 * self.duration_in_minutes

    def to_record(self) -> dict[str, Any]:
        """Plain values for zse.store."""
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Message:
        """Inverse of :meth:`to_record`; a text stored before control characters were refused
        is made displayable (:func:`displayable_text`)."""
        text = record.get("text")
        if isinstance(text, str):
            record = {**record, "text": displayable_text(text)}
        return cls(**record)


def _is_octets(value: object) -> bool:
    return isinstance(value, bytes | bytearray | memoryview)


def message_from_command(command: Any, *, protected: bool) -> Message:
    """The :class:`Message` a decoded Display (Protected) Message carries (SE D.5.2.3.1,
    D.5.2.3.3): ``command`` is any object with the command's fields as attributes. The
    Extended Message Control is not part of the message (it is this device's confirmation
    status): :func:`confirmed_in_command` reads it. The text is made displayable
    (:func:`displayable_text`): a control character in it is shown as U+FFFD, not refused
    (the ZCL character string allows it) nor passed on to a display or a terminal."""
    control = command.message_control
    return Message(
        message_id=int(command.message_id),
        text=displayable_text(str(command.message)),
        start_time=int(command.start_time),
        duration_in_minutes=int(command.duration_in_minutes),
        importance=int(control.importance),
        transmission=int(control.transmission),
        confirmation_required=bool(control.confirmation_required),
        enhanced_confirmation_required=bool(control.enhanced_confirmation_required),
        protected=protected,
    )


#: Extended Message Control bit 0, "Message Confirmation Status" (SE 1.2 D.5.2.3.1.1.6).
_EXTENDED_CONFIRMED = 0x01


def confirmed_in_command(command: Any) -> bool:
    """Whether a decoded Display (Protected) Message says this device already confirmed it:
    Extended Message Control bit 0 (SE 1.2 D.5.2.3.1.1.6; absent in SE 1.0/1.1 frames: no)."""
    extended = getattr(command, "extended_message_control", None)
    return extended is not None and bool(int(extended) & _EXTENDED_CONFIRMED)


@dataclass(frozen=True, kw_only=True)
class Confirmation:
    """A Message Confirmation (D.5.2.4.2): plain (``answer`` None) or enhanced (yes/no + text)."""

    message_id: int
    confirmation_time: int
    answer: bool | None = None
    response: bytes | None = None

    def __post_init__(self) -> None:
        if self.response is not None and len(self.response) > MAX_RESPONSE_BYTES:
            raise MessageError(
                f"confirmation response is {len(self.response)} octets; at most "
                f"{MAX_RESPONSE_BYTES} (D.5.2.4.2.1.4)"
            )

    def to_record(self) -> dict[str, Any]:
        """Plain values for zse.store."""
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Confirmation:
        """Inverse of :meth:`to_record`."""
        return cls(**record)


# -- the ESI's store ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StoredMessage:
    """A message the ESI sent: to whom, when, and whether it was cancelled (and when).

    ``devices`` (EUI-64 texts) and ``groups`` (group ids) are everyone it was sent to: the same
    message sent to several devices one by one reaches each (SE D.5.2.4.1 Get Last Message);
    both empty means everyone (a broadcast). ``sent_at`` is when it was first sent: its window
    runs from then (start time 0) whoever it was sent to later.
    """

    message: Message
    sent_at: int
    devices: frozenset[str] = frozenset()
    groups: frozenset[int] = frozenset()
    cancelled_at: int | None = None

    @property
    def everyone(self) -> bool:
        """Sent to every device (a broadcast)."""
        return not self.devices and not self.groups

    @property
    def starts(self) -> int:
        """Absolute start."""
        return self.message.starts(self.sent_at)

    @property
    def ends(self) -> int | None:
        """Absolute end (exclusive), None for until changed; a cancel ends it early."""
        end = self.message.ends(self.sent_at)
        if self.cancelled_at is not None and (end is None or self.cancelled_at < end):
            return self.cancelled_at
        return end

    def live(self, now: int) -> bool:
        """Not cancelled and not over at ``now`` (it may not have started yet)."""
        end = self.ends
        return end is None or now < end

    def started(self, now: int) -> bool:
        """Whether it was on the devices' displays at some time by ``now``: started, and
        not over (cancelled or its window run out) before it started or before it was
        sent (a device ignores a message already over when it arrives, D.5.3)."""
        end = self.ends
        return self.starts <= now and (end is None or max(self.starts, self.sent_at) < end)

    def at(self, now: int) -> Message | None:
        """The message as the ESI sends it at ``now`` (SE D.5.2.4.1): once time has passed
        since it was sent, a started message goes as start time 0 ("now") with the remaining
        duration rounded up to whole minutes (a device never ends it early; up to 59 s late);
        a future start and "until changed" are kept. None once it is over."""
        end = self.ends
        if end is not None and now >= end:
            return None
        if now == self.sent_at or self.starts > now:
            return self.message
        remaining = DURATION_UNTIL_CHANGED if end is None else min(0xFFFE, -(-(end - now) // 60))
        return dataclasses.replace(
            self.message, start_time=START_NOW, duration_in_minutes=remaining
        )

    def to(self, device: str | None, group: int | None) -> StoredMessage:
        """This message sent to ``device`` or ``group`` (both None: everyone) as well."""
        if self.everyone:
            return self
        if device is None and group is None:
            return dataclasses.replace(self, devices=frozenset(), groups=frozenset())
        if device is not None:
            return dataclasses.replace(self, devices=self.devices | {device})
        assert group is not None
        return dataclasses.replace(self, groups=self.groups | {group})

    def to_record(self) -> dict[str, Any]:
        """Plain values for zse.store: one device or one group as ``device`` / ``group`` (the
        shape written before messages had several recipients), several as ``devices`` /
        ``groups``."""
        record: dict[str, Any] = {"message": self.message.to_record(), "sent_at": self.sent_at}
        if len(self.devices) + len(self.groups) <= 1:
            record["device"] = next(iter(self.devices), None)
            record["group"] = next(iter(self.groups), None)
        else:
            record["devices"] = sorted(self.devices)
            record["groups"] = sorted(self.groups)
        record["cancelled_at"] = self.cancelled_at
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> StoredMessage:
        """Inverse of :meth:`to_record` (either shape)."""
        if "devices" in record:
            devices, groups = frozenset(record["devices"]), frozenset(record["groups"])
        else:
            device, group = record["device"], record["group"]
            devices = frozenset() if device is None else frozenset({device})
            groups = frozenset() if group is None else frozenset({group})
        return cls(
            message=Message.from_record(record["message"]),
            sent_at=record["sent_at"],
            devices=devices,
            groups=groups,
            cancelled_at=record["cancelled_at"],
        )


@dataclass(frozen=True, kw_only=True)
class ConfirmationRecord:
    """What one device confirmed for one message, and when the ESI received it."""

    device: str
    confirmation: Confirmation
    received_at: int

    def to_record(self) -> dict[str, Any]:
        """Plain values for zse.store."""
        return {
            "device": self.device,
            "confirmation": self.confirmation.to_record(),
            "received_at": self.received_at,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ConfirmationRecord:
        """Inverse of :meth:`to_record`."""
        return cls(
            device=record["device"],
            confirmation=Confirmation.from_record(record["confirmation"]),
            received_at=record["received_at"],
        )


class MessageStore:
    """The ESI's messages (SE D.5.2, server side).

    Devices are named by their EUI-64 text; groups by id. ``members`` tells which devices are in
    a group (a group whose membership is unknown counts for every device). A message to nobody
    in particular (``device`` and ``group`` None) is for every device (a broadcast).

    A message replaced under its id (new content, or sent afresh once over) that was on the
    displays is kept in :attr:`superseded`, ended when it was replaced: it never answers Get
    Last Message, but what it replaced on its devices' displays stays replaced.

    For storage the state is a set of records (:meth:`to_records`): one per message, one per
    confirmation, the superseded messages, the cancel-alls and the group members.
    :meth:`changes` gives only the records touched since it was last called (None for one
    removed), so storing a confirmation costs the same however many devices have confirmed
    before.
    """

    def __init__(self, *, retention: int | None = MESSAGE_RETENTION) -> None:
        #: Seconds a message over is kept (:meth:`prune`); None keeps every message.
        self.retention = retention
        self.messages: dict[int, StoredMessage] = {}
        #: Messages replaced under their id after they were on the displays, ended when they
        #: were replaced, oldest first (:meth:`display`).
        self.superseded: list[StoredMessage] = []
        self.confirmations: dict[int, dict[str, ConfirmationRecord]] = {}
        #: Implementation times of the Cancel All Messages sent, ascending (D.5.2.4.3).
        self.cancel_alls: list[int] = []
        self.members: dict[int, set[str]] = {}
        self._changed: set[str] = set()

    def set_members(self, group: int, members: Iterable[str]) -> None:
        """Which devices are in ``group`` (for Get Last Message)."""
        wanted = set(members)
        if self.members.get(group) != wanted:
            self.members[group] = wanted
            self._changed.add("members")

    # -- sending --------------------------------------------------------------------------

    def display(
        self,
        message: Message,
        now: int,
        *,
        device: str | None = None,
        group: int | None = None,
        devices: Iterable[str] = (),
    ) -> StoredMessage:
        """Record a message about to be sent to ``device``, ``group`` or (both None) everyone,
        refusing one too long for the unicast frame (SE D.5.2.3.1). ``devices``: more devices
        it goes to, with ``device`` (e.g. a registry group's members as they are at the send,
        so a later change of the group does not move a message already sent).

        The same message (id and content) while it is live is the same send reaching one more
        device or group: it is added to the recipients, its window (from the first send) and
        confirmations kept, so each recipient gets it with Get Last Message (D.5.2.4.1). New
        content under the id replaces it and its confirmations lapse; the same content once it
        is over (expired or cancelled) is recorded afresh.
        """
        names = frozenset(devices) | (frozenset() if device is None else {device})
        if names and group is not None:
            raise MessageError("a message goes to devices or a group, not both")
        length = text_length(message.text)
        limit = max_message_bytes()
        if length > limit:
            raise MessageTooLong(
                f"message {message.message_id} is {length} UTF-8 octets; one unfragmented "
                f"APS-encrypted Display Message carries at most {limit} (70-octet ZCL payload, "
                "zse.messaging.max_message_bytes)"
            )
        if self.retention is not None:
            self.prune(now, retention=self.retention)
        existing = self.messages.get(message.message_id)
        if existing is not None and existing.message == message and existing.live(now):
            # The same message sent to one more device or group (the headend sends a group's
            # message device by device): each of them gets it with Get Last Message, in the
            # window it was first sent with.
            stored = existing.to(None, group) if not names else existing
            for name in sorted(names):
                stored = stored.to(name, None)
            if stored != existing:
                self.messages[message.message_id] = stored
                self._changed.add(_msg_key(message.message_id))
            return stored
        if existing is not None and existing.message != message:
            # Same id, new content: the new one replaces it and earlier confirmations lapse.
            for lapsed in self.confirmations.pop(message.message_id, {}):
                self._changed.add(_conf_key(message.message_id, lapsed))
        if existing is not None:
            self._supersede(existing, now)
        stored = StoredMessage(
            message=message,
            sent_at=now,
            devices=names,
            groups=frozenset() if group is None else frozenset({group}),
        )
        self.messages[message.message_id] = stored
        self._changed.add(_msg_key(message.message_id))
        return stored

    def _supersede(self, stored: StoredMessage, now: int) -> None:
        """Keep ``stored``, replaced under its id at ``now``, as ended then, if it was on the
        displays by then: what it replaced there is not brought back (:meth:`last_message`)."""
        if stored.live(now):
            stored = dataclasses.replace(stored, cancelled_at=now)
        if stored.started(now):
            self.superseded.append(stored)
            self._changed.add("superseded")

    def cancel(self, message_id: int, now: int) -> StoredMessage:
        """Record Cancel Message for a message this ESI sent (a repeat keeps the first)."""
        stored = self.messages.get(message_id)
        if stored is None:
            raise MessageError(f"no message with id {message_id}")
        if stored.cancelled_at is not None and stored.cancelled_at <= now:
            return stored
        stored = dataclasses.replace(stored, cancelled_at=now)
        self.messages[message_id] = stored
        self._changed.add(_msg_key(message_id))
        return stored

    def cancel_all(self, implementation_time: int, now: int) -> int:
        """Record Cancel All Messages; returns the absolute implementation time."""
        when = now if implementation_time == START_NOW else implementation_time
        for message_id, stored in list(self.messages.items()):
            if stored.sent_at <= now and stored.live(when):
                self.messages[message_id] = dataclasses.replace(stored, cancelled_at=when)
                self._changed.add(_msg_key(message_id))
        for index, stored in enumerate(self.superseded):
            if stored.live(when):  # a past implementation time, before it was replaced
                self.superseded[index] = dataclasses.replace(stored, cancelled_at=when)
                self._changed.add("superseded")
        self.cancel_alls.append(when)
        self.cancel_alls.sort()
        self._changed.add("cancel_alls")
        return when

    def forget(self, device: str) -> list[int]:
        """Drop ``device`` (a de-provisioned one, SE 5.4.8.1) from every message held: from
        its recipients, its groups' members and the confirmations, so that Get Last Message
        (D.5.2.4.1) no longer answers it those messages; the ids of the messages changed. A
        message left with no device and no group is dropped (with no recipient it would be
        a broadcast, :attr:`StoredMessage.everyone`), and so is a superseded one. A message
        sent to everyone stays everyone's."""
        changed: set[int] = set()
        for message_id, stored in list(self.messages.items()):
            if device not in stored.devices:
                continue
            changed.add(message_id)
            self._changed.add(_msg_key(message_id))
            kept = dataclasses.replace(stored, devices=stored.devices - {device})
            if kept.everyone:
                del self.messages[message_id]
                for other in self.confirmations.pop(message_id, {}):
                    self._changed.add(_conf_key(message_id, other))
            else:
                self.messages[message_id] = kept
        for message_id, per_device in self.confirmations.items():
            if per_device.pop(device, None) is not None:
                changed.add(message_id)
                self._changed.add(_conf_key(message_id, device))
        self.confirmations = {m: c for m, c in self.confirmations.items() if c}
        superseded = []
        for old in self.superseded:
            kept = dataclasses.replace(old, devices=old.devices - {device})
            if old.everyone or not kept.everyone:  # (one for no one any more is dropped)
                superseded.append(old if kept == old else kept)
        if superseded != self.superseded:
            self.superseded = superseded
            self._changed.add("superseded")
        for group, members in self.members.items():
            if device in members:
                members.discard(device)
                self._changed.add("members")
                changed.update(m for m, s in self.messages.items() if group in s.groups)
        return sorted(changed)

    def prune(self, now: int, *, retention: int = MESSAGE_RETENTION) -> list[int]:
        """Forget the messages over (expired or cancelled) for ``retention`` seconds, with
        their confirmations, and return their ids; :meth:`display` calls it (with
        :attr:`retention`), so the store holds what is live and what ended lately, not every
        message ever sent. Superseded messages go by the same rule, and Cancel All Messages
        over for ``retention`` once no message kept was ended by them.

        Get Last Message answers the same afterwards: a started message that ended still
        hides from its devices an older live message it replaced on their displays
        (:meth:`last_message`), so it is kept while such a message may reach a device it
        does not reach itself; the older messages it wholly covers (all their recipients
        its own, started no later) are forgotten with it.
        """
        over = [
            stored
            for stored in (*self.messages.values(), *self.superseded)
            if (end := stored.ends) is not None
            and end + retention <= now
            and stored.sent_at < now  # what is recorded from now on sorts newer
        ]
        live = [stored for stored in self.messages.values() if stored.live(now)]
        gone: list[StoredMessage] = []
        for stored in over:
            hidden = (
                [
                    older
                    for older in live
                    if _sent_order(older) < _sent_order(stored)
                    and older.starts <= stored.starts
                    and self._may_share(older, stored)
                ]
                if stored.started(now)
                else []
            )
            if all(_covers(stored, older) for older in hidden):
                gone.extend((stored, *hidden))
        forgotten: set[int] = set()
        for stored in gone:
            message_id = stored.message.message_id
            if self.messages.get(message_id) is stored:
                del self.messages[message_id]
                forgotten.add(message_id)
                self._changed.add(_msg_key(message_id))
                for device in self.confirmations.pop(message_id, {}):
                    self._changed.add(_conf_key(message_id, device))
        superseded = [s for s in self.superseded if all(s is not g for g in gone)]
        if len(superseded) != len(self.superseded):
            self.superseded = superseded
            self._changed.add("superseded")
        ended = {s.cancelled_at for s in (*self.messages.values(), *self.superseded)}
        cancel_alls = [w for w in self.cancel_alls if w + retention > now or w in ended]
        if cancel_alls != self.cancel_alls:
            self.cancel_alls = cancel_alls
            self._changed.add("cancel_alls")
        return sorted(forgotten)

    def _reach(self, stored: StoredMessage) -> set[str] | None:
        """The devices ``stored`` reaches; None for everyone or a group of unknown members."""
        if stored.everyone:
            return None
        reach = set(stored.devices)
        for group in stored.groups:
            members = self.members.get(group)
            if members is None:
                return None
            reach |= members
        return reach

    def _may_share(self, one: StoredMessage, other: StoredMessage) -> bool:
        """Whether a device may be a recipient of both."""
        if one.devices & other.devices or one.groups & other.groups:
            return True
        reach, other_reach = self._reach(one), self._reach(other)
        return reach is None or other_reach is None or bool(reach & other_reach)

    # -- answering ------------------------------------------------------------------------

    def _for(self, stored: StoredMessage, device: str) -> bool:
        if stored.everyone or device in stored.devices:
            return True
        for group in stored.groups:
            members = self.members.get(group)
            if members is None or device in members:
                return True
        return False

    def last_message(self, device: str, now: int) -> tuple[Message, bool] | None:
        """Answer Get Last Message (D.5.2.4.1) from ``device``.

        The most recently sent message for the device while it is live, as :meth:`StoredMessage.
        at` sends it (a started message re-timed to start now for its remaining duration), and
        whether this device confirmed it (Extended Message Control bit 0). None means
        NOT_FOUND, also once the device's most recent message is over (cancelled or expired):
        an older message it replaced on the device's display (D.5.3: one shown at a time, a
        message that starts replaces the one shown) is not brought back.
        """
        kept = [(s, True) for s in self.messages.values()]
        kept += [(s, False) for s in reversed(self.superseded)]
        mine = sorted(
            ((s, current) for s, current in kept if self._for(s, device)),
            key=lambda item: _sent_order(item[0]),  # equal: the current one, then the newest
            reverse=True,
        )
        replaced_up_to: int | None = None  # latest start of a newer message that was shown
        for stored, current in mine:
            if replaced_up_to is not None and stored.starts <= replaced_up_to:
                continue  # a newer message started after it, so replaced it on the display
            message = stored.at(now) if current else None  # a superseded one only hides
            if message is not None:
                confirmed = device in self.confirmations.get(message.message_id, {})
                return message, confirmed
            if stored.started(now) and (replaced_up_to is None or stored.starts > replaced_up_to):
                replaced_up_to = stored.starts
        return None

    def retimed(self, message_id: int, now: int) -> Message | None:
        """The stored message ``message_id`` as the ESI sends it at ``now`` (what Get Last
        Message answers for it, :meth:`StoredMessage.at`); None if unknown or over."""
        stored = self.messages.get(message_id)
        return None if stored is None else stored.at(now)

    def message_cancellation(self, earliest: int) -> int | None:
        """Answer Get Message Cancellation (D.5.2.4.3): the first Cancel All Messages whose
        implementation time is at or after ``earliest``; None means NOT_FOUND."""
        for when in self.cancel_alls:
            if when >= earliest:
                return when
        return None

    def sent_to(self, message_id: int, device: str) -> bool:
        """Whether the message held under ``message_id`` was sent to ``device`` (itself, a
        group it is in or of unknown members, or everyone), as Get Last Message counts it."""
        stored = self.messages.get(message_id)
        return stored is not None and self._for(stored, device)

    def confirm(self, device: str, confirmation: Confirmation, now: int) -> bool:
        """Record a Message Confirmation; False for a repeat, an unknown message or one not
        sent to ``device`` (:meth:`sent_to`)."""
        if not self.sent_to(confirmation.message_id, device):
            return False
        per_device = self.confirmations.setdefault(confirmation.message_id, {})
        if device in per_device:
            return False
        per_device[device] = ConfirmationRecord(
            device=device, confirmation=confirmation, received_at=now
        )
        self._changed.add(_conf_key(confirmation.message_id, device))
        return True

    def unconfirmed(self, message_id: int, devices: Iterable[str]) -> list[str]:
        """Which of ``devices`` have not confirmed ``message_id`` (in the order given)."""
        got = self.confirmations.get(message_id, {})
        return [d for d in devices if d not in got]

    # -- persistence ----------------------------------------------------------------------

    def to_records(self) -> dict[str, Any]:
        """The whole state as zse.store records (one per message, one per confirmation)."""
        records: dict[str, Any] = {}
        if self.cancel_alls:
            records["cancel_alls"] = list(self.cancel_alls)
        if self.superseded:
            records["superseded"] = [stored.to_record() for stored in self.superseded]
        if self.members:
            records["members"] = {str(g): sorted(m) for g, m in self.members.items()}
        for message_id, stored in self.messages.items():
            records[_msg_key(message_id)] = stored.to_record()
        for message_id, per_device in self.confirmations.items():
            for device, record in per_device.items():
                records[_conf_key(message_id, device)] = record.to_record()
        return records

    def changes(self) -> dict[str, Any]:
        """The records touched since the last call, key -> value (None: removed), and
        forget them."""
        changed = {key: self._record(key) for key in sorted(self._changed)}
        self._changed.clear()
        return changed

    def unsaved(self, changes: Mapping[str, Any]) -> None:
        """``changes`` (from :meth:`changes`) could not be written: the next call gives those
        records again (as they are then)."""
        self._changed.update(changes)

    def _record(self, key: str) -> Any:
        if key == "cancel_alls":
            return list(self.cancel_alls)
        if key == "superseded":
            return [stored.to_record() for stored in self.superseded] or None
        if key == "members":
            return {str(g): sorted(m) for g, m in self.members.items()}
        kind, rest = key.split("/", 1)
        if kind == "msg":
            stored = self.messages.get(int(rest, 16))
            return None if stored is None else stored.to_record()
        message_id, device = rest.split("/", 1)
        record = self.confirmations.get(int(message_id, 16), {}).get(device)
        return None if record is None else record.to_record()

    @classmethod
    def from_records(
        cls,
        records: Mapping[str, Any],
        *,
        namespace: str = "messaging.server",
        on_bad: Callable[[RecordError], None] | None = None,
    ) -> MessageStore:
        """Inverse of :meth:`to_records`. A wrong-shaped record raises
        :class:`~zse.records.RecordError` naming ``namespace`` and its key; with ``on_bad`` it
        is handed over and skipped, and the others load."""
        store = cls()

        def load(key: str, value: Any) -> None:
            if key == "cancel_alls":
                check(value, ListOf(_TIME))
                store.cancel_alls = sorted(value)
            elif key == "superseded":
                check(value, ListOf(Type(dict)))
                for item in value:
                    many = "devices" in item
                    check(item, STORED_MESSAGE_SHAPE_MANY if many else STORED_MESSAGE_SHAPE)
                store.superseded = [StoredMessage.from_record(item) for item in value]
            elif key == "members":
                check(value, MapOf(ListOf(STR), key=_group_id))
                store.members = {int(g): set(m) for g, m in value.items()}
            elif key.startswith("msg/"):
                many = isinstance(value, dict) and "devices" in value
                check(value, STORED_MESSAGE_SHAPE_MANY if many else STORED_MESSAGE_SHAPE)
                stored = StoredMessage.from_record(value)
                _same_key(key, _msg_key(stored.message.message_id))
                store.messages[stored.message.message_id] = stored
            elif key.startswith("conf/"):
                check(value, CONFIRMATION_RECORD_SHAPE)
                record = ConfirmationRecord.from_record(value)
                _same_key(key, _conf_key(record.confirmation.message_id, record.device))
                store.confirmations.setdefault(record.confirmation.message_id, {})[
                    record.device
                ] = record

        load_each(records.items(), load, namespace=namespace, on_bad=on_bad)
        return store


_TIME = Int(0)
#: A stored :class:`Message` (:meth:`Message.to_record`); ranges are checked on construction.
MESSAGE_SHAPE: Final = Fields(
    {"message_id": U32, "text": STR},
    {
        "start_time": U32,
        "duration_in_minutes": U16,
        "importance": Int(0, 3),
        "transmission": Int(0, 3),
        "confirmation_required": BOOL,
        "enhanced_confirmation_required": BOOL,
        "protected": BOOL,
    },
)
#: A stored :class:`Confirmation` (a client's journalled "confirm" entry has this shape).
CONFIRMATION_SHAPE: Final = Fields(
    {"message_id": U32, "confirmation_time": U32},
    {"answer": Opt(BOOL), "response": Opt(BYTES)},
)
#: A stored :class:`StoredMessage` with at most one recipient (its only shape before
#: messages had several; still written for one).
STORED_MESSAGE_SHAPE: Final = Fields(
    {
        "message": MESSAGE_SHAPE,
        "sent_at": _TIME,
        "device": Opt(STR),
        "group": Opt(U16),
        "cancelled_at": Opt(_TIME),
    }
)
#: A stored :class:`StoredMessage` sent to several devices or groups.
STORED_MESSAGE_SHAPE_MANY: Final = Fields(
    {
        "message": MESSAGE_SHAPE,
        "sent_at": _TIME,
        "devices": ListOf(STR),
        "groups": ListOf(U16),
        "cancelled_at": Opt(_TIME),
    }
)
#: A stored :class:`ConfirmationRecord`.
CONFIRMATION_RECORD_SHAPE: Final = Fields(
    {"device": STR, "confirmation": CONFIRMATION_SHAPE, "received_at": _TIME}
)


def _group_id(text: str) -> int:
    group = int(text)
    if not 0 <= group <= 0xFFFF:
        raise ValueError("not a group id")
    return group


def _same_key(key: str, expected: str) -> None:
    if key != expected:
        raise Mismatch("the key does not match the record's identity")


def _sent_order(stored: StoredMessage) -> tuple[int, int]:
    """Newer sorts later (how :meth:`MessageStore.last_message` walks the messages)."""
    return stored.sent_at, stored.message.message_id


def _covers(newer: StoredMessage, older: StoredMessage) -> bool:
    """Whether every recipient of ``older`` is one of ``newer``'s whatever the groups'
    members (its devices among newer's devices, its groups among newer's groups)."""
    if newer.everyone:
        return True
    return not older.everyone and older.devices <= newer.devices and older.groups <= newer.groups


def _msg_key(message_id: int) -> str:
    return f"msg/{message_id:08x}"


def _conf_key(message_id: int, device: str) -> str:
    return f"conf/{message_id:08x}/{device}"


# -- the HAN device's board -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MessageScheduled:
    """A message was accepted and will be shown at ``starts``."""

    message: Message
    starts: int


@dataclass(frozen=True, kw_only=True)
class MessageDisplayed:
    """Show this message now (until ``ends``, None = until changed). For a protected message
    ``text`` is None until the application unlocks it with the PIN."""

    message: Message
    text: str | None
    ends: int | None


@dataclass(frozen=True, kw_only=True)
class MessageReplaced:
    """A message stopped because a newer one started (or arrived with the same id)."""

    message: Message
    by: Message


@dataclass(frozen=True, kw_only=True)
class MessageExpired:
    """A message's duration ran out."""

    message: Message


@dataclass(frozen=True, kw_only=True)
class MessageCancelled:
    """A message was cancelled (Cancel Message, or Cancel All Messages when ``all``)."""

    message: Message
    all: bool = False


BoardEvent = (
    MessageScheduled | MessageDisplayed | MessageReplaced | MessageExpired | MessageCancelled
)


@dataclass(frozen=True, kw_only=True)
class _Held:
    message: Message
    received_at: int
    seq: int
    shown: bool = False
    unlocked: bool = False
    confirmed: Confirmation | None = None
    #: The ESI said this device confirmed it (Extended Message Control bit 0).
    esi_confirmed: bool = False
    #: Who sent it (the server's NWK address and endpoint), if known: its confirmation
    #: goes there.
    sender: tuple[int, int] | None = None

    @property
    def starts(self) -> int:
        return self.message.starts(self.received_at)

    @property
    def ends(self) -> int | None:
        return self.message.ends(self.received_at)

    def to_record(self) -> dict[str, Any]:
        record = {
            "message": self.message.to_record(),
            "received_at": self.received_at,
            "seq": self.seq,
            "shown": self.shown,
            "unlocked": self.unlocked,
            "confirmed": None if self.confirmed is None else self.confirmed.to_record(),
        }
        if self.esi_confirmed:  # only then: the record stays as it was before this field
            record["esi_confirmed"] = True
        if self.sender is not None:  # likewise
            record["sender"] = list(self.sender)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> _Held:
        confirmed = record["confirmed"]
        return cls(
            message=Message.from_record(record["message"]),
            received_at=record["received_at"],
            seq=record["seq"],
            shown=record["shown"],
            unlocked=record["unlocked"],
            confirmed=None if confirmed is None else Confirmation.from_record(confirmed),
            esi_confirmed=record.get("esi_confirmed", False),
            sender=None if (sender := record.get("sender")) is None else (sender[0], sender[1]),
        )


_HELD_SHAPE = Fields(
    {
        "message": MESSAGE_SHAPE,
        "received_at": _TIME,
        "seq": _TIME,
        "shown": BOOL,
        "unlocked": BOOL,
        "confirmed": Opt(CONFIRMATION_SHAPE),
    },
    {"esi_confirmed": BOOL, "sender": TupleOf(U16, Int(0, 0xFF))},
)
_BOARD_SHAPE = Fields(
    {"seq": _TIME, "cancel_alls": ListOf(TupleOf(_TIME, _TIME)), "last_cancel_all": Opt(_TIME)}
)


#: Seconds by which a copy of a held message may move its window and still be the same
#: window (Get Last Message rounds the remaining duration up to the minute, and a copy may be
#: delayed on its way).
RETIME_TOLERANCE = 120
#: Seconds of clock skew between the ESI and the device within which a Cancel All Messages'
#: implementation time is the one already seen (the ESI records its own clock for "now").
CANCEL_ALL_SKEW = 5
#: Pending Cancel All Messages kept beyond the board's capacity although they would remove
#: nothing (:meth:`MessageBoard._bound_cancel_alls`): they only recognise repeats.
IDLE_CANCEL_ALLS = 16


class MessageBoard:
    """A HAN device's messages (SE D.5.3, client side).

    Rules: a message starts at its start time (0 = on receipt) and lasts its duration (0xFFFF =
    until changed); one message is shown at a time, and a message that starts replaces the one
    shown; a message with the id of one held and new content (text, Message Control) replaces
    it; a copy with the same content is the same message, whatever its start encoding (start 0
    with the remaining minutes, or the absolute start): its window is moved to the copy's only
    if they differ by more than :data:`RETIME_TOLERANCE`, and its confirmation and unlocking are
    kept; a message already over on receipt is ignored; Cancel Message removes the message with
    that id; Cancel All Messages removes, at its implementation time (0 = now), every message
    received before the command, and one whose implementation time had passed when it arrived
    (learnt late, from Get Message Cancellation) every message received before that time (the
    device's clock). At most ``capacity`` messages are held; past that, the one that would start
    last is dropped. A confirmation is owed for a message whose Message Control asks for one,
    once, while it is held, unless the ESI says it has it (Extended Message Control bit 0).
    """

    def __init__(self, *, capacity: int = 8) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._held: dict[int, _Held] = {}
        self._seq = 0
        #: Pending Cancel All Messages: (implementation time, sequence received).
        self._cancel_alls: list[tuple[int, int]] = []
        #: Implementation time of the last Cancel All applied or scheduled (for start-up).
        self.last_cancel_all: int | None = None

    # -- queries --------------------------------------------------------------------------

    def held(self) -> list[Message]:
        """Every message held (shown or scheduled), by start."""
        return [h.message for h in sorted(self._held.values(), key=lambda h: (h.starts, h.seq))]

    def current(self) -> Message | None:
        """The message shown now (after the last ``handle_timeout``)."""
        for held in self._held.values():
            if held.shown:
                return held.message
        return None

    def showing(self) -> MessageDisplayed | None:
        """The shown message as the application should show it (text hidden while locked)."""
        for held in self._held.values():
            if held.shown:
                locked = held.message.protected and not held.unlocked
                return MessageDisplayed(
                    message=held.message,
                    text=None if locked else held.message.text,
                    ends=held.ends,
                )
        return None

    def sender_of(self, message_id: int) -> tuple[int, int] | None:
        """The server (NWK address, endpoint) a held message came from; None if not known."""
        held = self._held.get(message_id)
        return None if held is None else held.sender

    def confirmation_of(self, message_id: int) -> Confirmation | None:
        """The confirmation given for a held message, if any."""
        held = self._held.get(message_id)
        return None if held is None else held.confirmed

    def is_confirmed(self, message_id: int) -> bool:
        """Whether a held message is confirmed: here (:meth:`confirm`), or before, as the ESI
        said in a copy of it (Extended Message Control bit 0, SE 1.2 D.5.2.3.1.1.6)."""
        held = self._held.get(message_id)
        return held is not None and (held.confirmed is not None or held.esi_confirmed)

    def next_deadline(self) -> int | None:
        """When :meth:`handle_timeout` next has something to do."""
        times: list[int] = []
        for held in self._held.values():
            if held.shown:
                if held.ends is not None:
                    times.append(held.ends)
            else:
                times.append(held.starts)
        times.extend(when for when, _ in self._cancel_alls)
        return min(times) if times else None

    # -- inputs ---------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def display(
        self,
        message: Message,
        now: int,
        *,
        confirmed: bool = False,
        sender: tuple[int, int] | None = None,
    ) -> list[BoardEvent]:
        """Display Message / Display Protected Message received at ``now``; ``confirmed``:
        its Extended Message Control says this device confirmed it (:func:`confirmed_in_command`);
        ``sender``: the server's NWK address and endpoint it came from, where its confirmation
        goes (:meth:`sender_of`; the last copy's sender for a copy).

        Whatever the message turns out to be (new, a repeat, already over, no room), what else
        fell due by ``now`` is applied too, so the board never lags behind the clock.
        """
        events = self._receive(message, now, confirmed, sender)
        events.extend(self.handle_timeout(now))
        return events

    def _receive(
        self, message: Message, now: int, confirmed: bool, sender: tuple[int, int] | None
    ) -> list[BoardEvent]:
        events: list[BoardEvent] = []
        old = self._held.get(message.message_id)
        if old is not None:
            if _same_content(old.message, message):
                if sender is not None:
                    old = dataclasses.replace(old, sender=sender)
                return self._again(old, message, now, confirmed)
            del self._held[message.message_id]
            if old.shown:
                events.append(MessageReplaced(message=old.message, by=message))
        end = message.ends(now)
        if end is not None and end <= now:
            return events  # already over
        held = _Held(
            message=message,
            received_at=now,
            seq=self._next_seq(),
            esi_confirmed=confirmed,
            sender=sender,
        )
        self._held[message.message_id] = held
        if len(self._held) > self.capacity:
            drop = max(self._held.values(), key=lambda h: (h.starts, h.seq))
            del self._held[drop.message.message_id]
            if drop is held:
                return events
        if held.starts > now:
            events.append(MessageScheduled(message=message, starts=held.starts))
        return events

    def _again(self, old: _Held, message: Message, now: int, confirmed: bool) -> list[BoardEvent]:
        """A copy of a held message (same id, text and Message Control): an identical repeat, or
        the ESI's re-timed answer to Get Last Message. Its window is moved only beyond
        :data:`RETIME_TOLERANCE`; the confirmation and unlocking stay."""
        held = dataclasses.replace(old, esi_confirmed=old.esi_confirmed or confirmed)
        events: list[BoardEvent] = []
        if old.message != message and not _same_window(old, message, now):
            # Re-timed: kept with an absolute start, so the window does not move with the
            # time it was first received (which a late Cancel All Messages compares).
            retimed = dataclasses.replace(message, start_time=message.starts(now))
            held = dataclasses.replace(held, message=retimed)
            if held.starts > now:
                if held.shown:
                    held = dataclasses.replace(held, shown=False)
                    events.append(MessageReplaced(message=old.message, by=retimed))
                events.append(MessageScheduled(message=retimed, starts=held.starts))
        self._held[message.message_id] = held
        return events  # an expiry or a start the new window brings: handle_timeout

    def cancel(self, message_id: int, now: int) -> list[BoardEvent]:
        """Cancel Message (D.5.2.3.2); no events if the id is not held."""
        held = self._held.pop(message_id, None)
        events: list[BoardEvent] = []
        if held is not None:
            events.append(MessageCancelled(message=held.message))
        events.extend(self.handle_timeout(now))
        return events

    def cancel_all(self, implementation_time: int, now: int) -> list[BoardEvent]:
        """Cancel All Messages (D.5.2.3.4) at its implementation time (0 = now).

        At its time it removes every message received before the command. One whose time had
        passed when it arrived (learnt late, the answer to Get Message Cancellation at start-up)
        removes only the messages received before that time, by this device's clock: the ones
        the ESI sent after it are spared. An implementation time within :data:`CANCEL_ALL_SKEW`
        of one already applied or pending is a repeat (the ESI records its own clock for "now")
        and changes nothing.
        """
        when = now if implementation_time == START_NOW else implementation_time
        seen = implementation_time != START_NOW and self._seen_cancel_all(when)
        if self.last_cancel_all is None or when > self.last_cancel_all:
            self.last_cancel_all = when  # the ESI's time for a repeat: asked after it next
        if seen:  # a repeat: nothing new, but what is due now is applied all the same
            return self.handle_timeout(now)
        seq = self._next_seq()
        events: list[BoardEvent] = []
        if when < now:
            for held in sorted(self._held.values(), key=lambda h: h.seq):
                if held.received_at < when:
                    del self._held[held.message.message_id]
                    events.append(MessageCancelled(message=held.message, all=True))
        else:
            self._cancel_alls.append((when, seq))
            self._bound_cancel_alls()
        events.extend(self.handle_timeout(now))
        return events

    def _bound_cancel_alls(self) -> None:
        """Keep at most ``capacity`` + :data:`IDLE_CANCEL_ALLS` pending Cancel All Messages,
        so a flood of them (distinct future times) costs neither memory nor time per command.
        Only a pending one that can still remove a message matters: one with a held message
        received before it and after every pending one that fires earlier (so at most one per
        held message). Of the others, the latest received are kept, only to recognise a
        repeat (:meth:`_seen_cancel_all`)."""
        excess = len(self._cancel_alls) - self.capacity - IDLE_CANCEL_ALLS
        if excess <= 0:
            return
        idle = []
        covered = 0  # messages received before this are removed by an earlier Cancel All
        for when, seq in sorted(self._cancel_alls):
            if not any(covered <= held.seq < seq for held in self._held.values()):
                idle.append((seq, when))
            covered = max(covered, seq)
        for seq, when in sorted(idle)[:excess]:
            self._cancel_alls.remove((when, seq))

    def _seen_cancel_all(self, when: int) -> bool:
        known = [w for w, _ in self._cancel_alls]
        if self.last_cancel_all is not None:
            known.append(self.last_cancel_all)
        return any(abs(when - w) <= CANCEL_ALL_SKEW for w in known)

    def handle_timeout(self, now: int) -> list[BoardEvent]:
        """Apply everything due at ``now``: cancel-alls, expiries, starts."""
        events: list[BoardEvent] = []
        due = sorted(c for c in self._cancel_alls if c[0] <= now)
        for when, seq in due:
            self._cancel_alls.remove((when, seq))
            for held in sorted(self._held.values(), key=lambda h: h.seq):
                if held.seq < seq:
                    del self._held[held.message.message_id]
                    events.append(MessageCancelled(message=held.message, all=True))
        for held in sorted(self._held.values(), key=lambda h: h.seq):
            if held.ends is not None and held.ends <= now:
                del self._held[held.message.message_id]
                events.append(MessageExpired(message=held.message))
        started = [h for h in self._held.values() if not h.shown and h.starts <= now]
        if started:
            # The latest start wins; equal starts: the latest received.
            winner = max(started, key=lambda h: (h.starts, h.seq))
            for held in list(self._held.values()):
                if held is winner:
                    continue
                if held.shown or (not held.shown and held.starts <= now):
                    del self._held[held.message.message_id]
                    events.append(MessageReplaced(message=held.message, by=winner.message))
            winner = dataclasses.replace(winner, shown=True)
            self._held[winner.message.message_id] = winner
            events.append(
                MessageDisplayed(
                    message=winner.message,
                    text=None if winner.message.protected else winner.message.text,
                    ends=winner.ends,
                )
            )
        return events

    def unlock(self, message_id: int) -> MessageDisplayed:
        """The application verified the user's PIN for a protected message: reveal it."""
        held = self._require(message_id)
        if not held.shown:
            raise MessageError(f"message {message_id} is not shown yet")
        self._held[message_id] = dataclasses.replace(held, unlocked=True)
        return MessageDisplayed(message=held.message, text=held.message.text, ends=held.ends)

    def confirm(
        self,
        message_id: int,
        now: int,
        *,
        answer: bool | None = None,
        response: bytes | None = None,
    ) -> Confirmation:
        """The user confirmed a shown message: the Message Confirmation to send (D.5.2.4.2).

        Plain for a message asking for confirmation; a yes/no ``answer`` (and an optional
        ``response`` of up to 20 octets) for one asking for enhanced confirmation.
        """
        held = self._require(message_id)
        message = held.message
        if not message.needs_confirmation:
            raise MessageError(f"message {message_id} does not ask for a confirmation")
        if held.confirmed is not None:
            raise MessageError(f"message {message_id} is already confirmed")
        if held.esi_confirmed:
            raise MessageError(f"message {message_id} is already confirmed (the ESI says so)")
        if not held.shown:
            raise MessageError(f"message {message_id} is not shown yet")
        if message.protected and not held.unlocked:
            raise MessageError(f"message {message_id} is protected and not unlocked")
        if message.enhanced_confirmation_required and answer is None:
            raise MessageError(f"message {message_id} asks for a yes/no answer")
        if not message.enhanced_confirmation_required and (
            answer is not None or response is not None
        ):
            raise MessageError(f"message {message_id} asks for a plain confirmation")
        confirmation = Confirmation(
            message_id=message_id, confirmation_time=now, answer=answer, response=response
        )
        self._held[message_id] = dataclasses.replace(held, confirmed=confirmation)
        return confirmation

    def _require(self, message_id: int) -> _Held:
        held = self._held.get(message_id)
        if held is None:
            raise MessageError(f"no message with id {message_id} is held")
        return held

    # -- persistence ----------------------------------------------------------------------

    def to_records(self) -> dict[str, Any]:
        """The whole state as zse.store records."""
        records: dict[str, Any] = {
            "board": {
                "seq": self._seq,
                "cancel_alls": [list(c) for c in self._cancel_alls],
                "last_cancel_all": self.last_cancel_all,
            }
        }
        for message_id, held in self._held.items():
            records[f"msg/{message_id:08x}"] = held.to_record()
        return records

    @classmethod
    def from_records(
        cls,
        records: Mapping[str, Any],
        *,
        capacity: int = 8,
        namespace: str = "messaging.client",
        on_bad: Callable[[RecordError], None] | None = None,
    ) -> MessageBoard:
        """Inverse of :meth:`to_records`. A wrong-shaped record raises
        :class:`~zse.records.RecordError` naming ``namespace`` and its key; with ``on_bad`` it
        is handed over and skipped, and the others load."""
        board = cls(capacity=capacity)

        def load(key: str, value: Any) -> None:
            if key == "board":
                check(value, _BOARD_SHAPE)
                board._seq = value["seq"]
                board._cancel_alls = [(w, s) for w, s in value["cancel_alls"]]
                board.last_cancel_all = value["last_cancel_all"]
            elif key.startswith("msg/"):
                check(value, _HELD_SHAPE)
                held = _Held.from_record(value)
                _same_key(key, _msg_key(held.message.message_id))
                board._held[held.message.message_id] = held

        load_each(records.items(), load, namespace=namespace, on_bad=on_bad)
        return board


def _same_content(held: Message, copy: Message) -> bool:
    """Whether ``copy`` is ``held`` again: the same id, text, Message Control and command
    (Display or Display Protected Message), whatever its start time and duration."""
    return dataclasses.replace(held, start_time=0, duration_in_minutes=0) == dataclasses.replace(
        copy, start_time=0, duration_in_minutes=0
    )


def _same_window(old: _Held, copy: Message, now: int) -> bool:
    """Whether ``copy`` received at ``now`` describes ``old``'s window within
    :data:`RETIME_TOLERANCE`: the same end (both until changed, or close), and, unless both
    have started (a started message's copy starts "now"), a close start."""
    old_end, new_end = old.ends, copy.ends(now)
    if (old_end is None) != (new_end is None):
        return False
    if old_end is not None and new_end is not None and abs(new_end - old_end) > RETIME_TOLERANCE:
        return False
    old_start, new_start = old.starts, copy.starts(now)
    if old_start <= now and new_start <= now:
        return True
    return abs(new_start - old_start) <= RETIME_TOLERANCE
