"""The retailer headend's decisions, sans-IO: request validation, outcomes, retries, rate limits.

Everything here is fed plain values (a decoded JSON body, the current time) and returns values or
raises :class:`HeadendError`; nothing does I/O. The asyncio service
(:mod:`zse.headend.service`) and the HTTP shell (:mod:`zse.headend.web`) carry the decisions out.

- **Validation** turns a request body into a typed request or a :class:`HeadendError` naming the
  field (HTTP 4xx with a JSON error). Install codes and MAC addresses are read as
  :mod:`zse.installcode` reads them (any printed form); display messages must fit one
  unfragmented unicast Display Message (SE D.5.2.3.1, :func:`zse.messaging.core.max_message_bytes`);
  load control fields are checked as SE D.2.2.3.1.1 says (:meth:`LoadControlEvent.problems`).
- **Outcomes** of a send, per device, and the order they may follow (:data:`RANK`): a later
  report never goes back to an earlier one (a late "delivered" after "started" is ignored).
- **Retries**: a device offline at a send is tried again on a back-off schedule
  (:func:`retry_delay`) until it is delivered, the send ends or the give-up time
  (:data:`GIVE_UP`) has passed (then its outcome is ``expired``); a Cancel its device has
  not acknowledged, alike until its own give-up time counted from the cancel. One function
  decides after each miss (:func:`after_miss`), for the in-process headend and the work
  queue's jobs alike.
- **Rate limits**: a token bucket per retailer (:class:`RateLimiter`).
"""

from __future__ import annotations

import datetime as _dt
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from zse.drlc import START_NOW, LoadControlEvent
from zse.errors import DecodeError, ZseError
from zse.installcode import InstallCode, canonical_eui64
from zse.messaging import Message
from zse.messaging.core import max_message_bytes, text_length, text_problem
from zse.provisioning.lifecycle import MAX_HAN_NAME, LifecycleState, han_name_problem
from zse.se.types import (
    AVERAGE_LOAD_ADJUSTMENT_NOT_USED,
    DUTY_CYCLE_NOT_USED,
    TEMPERATURE_OFFSET_NOT_USED,
)
from zse.time.core import ZIGBEE_EPOCH, from_zigbee

__all__ = [
    "CANCEL_GIVEN_UP",
    "CANCEL_REFUSED",
    "DEVICE_TYPES",
    "GIVEN_UP",
    "GIVE_UP",
    "MAX_LABEL",
    "NOT_REACHED",
    "RANK",
    "REFUSED_IN_USE",
    "GroupRequest",
    "HeadendError",
    "LoadControlRequest",
    "MessageRequest",
    "Miss",
    "Outcome",
    "RateLimiter",
    "Registration",
    "RetryBook",
    "SendKind",
    "Verdict",
    "advance",
    "after_miss",
    "check_device",
    "give_up_at",
    "given_up_detail",
    "moved_detail",
    "outcome_of_report",
    "parse_group",
    "parse_load_control",
    "parse_message",
    "parse_registration",
    "parse_send_id",
    "parse_state",
    "retry_delay",
    "send_window_end",
    "span_text",
    "superseded_by",
    "unix_of_zigbee",
]

#: HAN device types a retailer may register (SE 1.x device descriptions, Annex D).
DEVICE_TYPES = (
    "in-home display",
    "programmable thermostat",
    "load control device",
    "smart appliance",
    "range extender",
    "prepayment terminal",
)
#: Longest label, group name and meter id (characters): the HAN registry's.
MAX_LABEL = MAX_HAN_NAME
#: A retailer group's name (``fullmatch``: ``$`` alone would let a final newline through).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")


class HeadendError(ZseError):
    """A request the headend refuses: ``status`` (HTTP), the ``field`` at fault (or None) and
    a message that never carries a secret (an install code is named, never quoted)."""

    def __init__(self, status: int, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message

    def to_json(self) -> dict[str, Any]:
        """The JSON error body: ``{"error": {"status", "field", "message"}}``."""
        return {"error": {"status": self.status, "field": self.field, "message": self.message}}


def _bad(field_name: str, message: str) -> HeadendError:
    return HeadendError(422, f"{field_name}: {message}", field=field_name)


def _object(body: object) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise HeadendError(400, "the request body must be a JSON object", field="body")
    return body


def _only(body: Mapping[str, Any], required: Iterable[str], optional: Iterable[str]) -> None:
    required, optional = tuple(required), tuple(optional)
    for name in required:
        if name not in body:
            raise _bad(name, "missing")
    for name in body:
        if name not in required and name not in optional:
            key = str(name)  # a hostile key may be any length: quoted as a value is, and so
            # is one that would not show as it is (empty, spaces at an end)
            plain = key and key.strip() == key and len(key) <= SHOWN and key.isprintable()
            raise _bad(key if plain else shown(key), "unknown field")


def _text(body: Mapping[str, Any], name: str, *, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise _bad(name, "must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: not text any wire or database carries
        raise _bad(name, "must be text (it holds an unpaired surrogate)") from None
    return value


#: Characters of a value a message quotes (a hostile one may be any length).
SHOWN = 40


def shown(value: object, limit: int = SHOWN) -> str:
    """``value`` as a message quotes it: its repr (an int as it is), cut to ``limit``
    characters and "…" (a meter id of 100 KB, an integer of 4,300 digits)."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    text = str(value) if is_int else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _int(body: Mapping[str, Any], name: str, low: int, high: int, default: int) -> int:
    if name not in body:
        return default
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, "must be an integer")
    if not low <= value <= high:
        raise _bad(name, f"must be {low} to {high}, got {shown(value)}")
    return value


def _bool(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise _bad(name, "must be true or false")
    return value


def _name(body: Mapping[str, Any], name: str) -> str:
    value = _text(body, name)
    if not _NAME.fullmatch(value):
        raise _bad(
            name, "1-64 letters, digits, space, '.', '_' or '-', starting with one of the first two"
        )
    return value


# -- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Registration:
    """A HAN device to register: its MAC (canonical EUI-64), install code (canonical printed
    form, a secret: not in reprs), meter, device type and label."""

    eui64: str
    install_code: str = field(repr=False)
    meter: str
    device_type: str
    label: str = ""


def parse_registration(body: object, *, meters: Iterable[str]) -> Registration:
    """A registration from ``{"mac", "install_code", "meter", "device_type", "label"?}``."""
    body = _object(body)
    _only(body, ("mac", "install_code", "meter", "device_type"), ("label",))
    eui64, meter, device_type, label = _device_fields(body, meters)
    try:
        code = str(InstallCode.parse(_text(body, "install_code")))
    except DecodeError as exc:
        # the parser's message names the problem (length, CRC), never the whole code
        raise _bad("install_code", str(exc)) from None
    return Registration(
        eui64=eui64, install_code=code, meter=meter, device_type=device_type, label=label
    )


def check_device(body: object, *, meters: Iterable[str]) -> None:
    """Check a registration's fields other than the install code (the portal asks for the
    code on a screen of its own)."""
    body = _object(body)
    _only(body, ("mac", "meter", "device_type"), ("label",))
    _device_fields(body, meters)


def _device_fields(body: Mapping[str, Any], meters: Iterable[str]) -> tuple[str, str, str, str]:
    try:
        eui64 = canonical_eui64(_text(body, "mac"))
    except DecodeError as exc:
        raise _bad("mac", str(exc)) from None
    meter = _text(body, "meter")
    if meter not in set(meters):
        raise HeadendError(404, f"meter: no meter {shown(meter)}", field="meter")
    device_type = _text(body, "device_type")
    if device_type not in DEVICE_TYPES:
        raise _bad("device_type", "one of " + ", ".join(DEVICE_TYPES))
    label = _text(body, "label", default="")
    problem = han_name_problem(label)
    if problem is not None:
        raise _bad("label", problem)
    return eui64, meter, device_type, label


def parse_send_id(text: str) -> int:
    """A send's id as a path gives it: ASCII digits only (``int()`` also reads ``+1``,
    ``1_0`` and other scripts' digits); :class:`HeadendError` 404 naming ``id``."""
    if not (0 < len(text) <= 18 and text.isascii() and text.isdigit()):
        raise HeadendError(404, "no such send", field="id")
    return int(text)


@dataclass(frozen=True, kw_only=True)
class GroupRequest:
    """A retailer's group: a name and the meters it covers."""

    name: str
    meters: tuple[str, ...]


def parse_group(body: object, *, meters: Iterable[str]) -> GroupRequest:
    """A group from ``{"name", "meters": [...]}``; each meter must exist."""
    body = _object(body)
    _only(body, ("name", "meters"), ())
    name = _name(body, "name")
    given = body["meters"]
    if not isinstance(given, list) or not all(isinstance(m, str) for m in given):
        raise _bad("meters", "must be a list of meter ids")
    known = set(meters)
    for meter in given:
        if meter not in known:
            raise HeadendError(404, f"meters: no meter {shown(meter)}", field="meters")
    return GroupRequest(name=name, meters=tuple(sorted(set(given))))


def parse_state(value: str) -> LifecycleState:
    """A lifecycle state from its printed name (``meter ready``, ``meter-ready``...)."""

    def plain(text: str) -> str:
        return text.replace("-", " ").replace("_", " ").lower()

    for state in LifecycleState:
        if plain(state.value) == plain(value):
            return state
    raise _bad("state", "one of " + ", ".join(s.value for s in LifecycleState))


class SendKind(enum.Enum):
    """What a by-group send carries."""

    MESSAGE = "message"
    LOAD_CONTROL = "load-control"


@dataclass(frozen=True, kw_only=True)
class MessageRequest:
    """Send Display Message by Group: the message's fields as given (SE D.5.2.3.1)."""

    group: str
    text: str
    duration_minutes: int = 0xFFFF
    importance: int = 0
    confirmation_required: bool = False

    def message(self, message_id: int) -> Message:
        """The display message, starting now."""
        return Message(
            message_id=message_id,
            text=self.text,
            duration_in_minutes=self.duration_minutes,
            importance=self.importance,
            confirmation_required=self.confirmation_required,
        )


def parse_message(body: object) -> MessageRequest:
    """A message send from ``{"group", "text", "duration_minutes"?, "importance"?,
    "confirmation_required"?}``; the text must fit one unfragmented unicast frame."""
    body = _object(body)
    _only(body, ("group", "text"), ("duration_minutes", "importance", "confirmation_required"))
    text = _text(body, "text")
    limit = max_message_bytes(group=False)
    if not text:
        raise _bad("text", "empty")
    if text_length(text) > limit:
        raise HeadendError(
            413, f"text: {text_length(text)} octets, at most {limit} (SE D.5.2.3.1)", field="text"
        )
    problem = text_problem(text)  # the rule Message itself keeps (a 422 here, not a 500 later)
    if problem is not None:
        raise _bad("text", problem)
    return MessageRequest(
        group=_name(body, "group"),
        text=text,
        duration_minutes=_int(body, "duration_minutes", 1, 0xFFFF, 0xFFFF),
        importance=_int(body, "importance", 0, 3, 0),
        confirmation_required=_bool(body, "confirmation_required"),
    )


#: Load control fields a request may give: name -> (low, high, default); the wire's "not used"
#: sentinels are the defaults (SE D.2.2.3.1.1).
_LCE_FIELDS: dict[str, tuple[int, int, int]] = {
    "device_class": (1, 0xFFFF, 0x0FFF),
    "duration_minutes": (1, 1440, 60),
    "criticality_level": (1, 0x0F, 1),
    "duty_cycle": (0, 100, DUTY_CYCLE_NOT_USED),
    "average_load_adjustment_percentage": (-100, 100, AVERAGE_LOAD_ADJUSTMENT_NOT_USED),
    "cooling_temperature_offset": (0, 0xFE, TEMPERATURE_OFFSET_NOT_USED),
    "heating_temperature_offset": (0, 0xFE, TEMPERATURE_OFFSET_NOT_USED),
    "start_delay_minutes": (0, 1440, 0),
}


@dataclass(frozen=True, kw_only=True)
class LoadControlRequest:
    """Send Load Control Event by Group: the event's fields (SE D.2.2.3.1)."""

    group: str
    fields: Mapping[str, int]

    def event(self, issuer_event_id: int, now: int) -> LoadControlEvent:
        """The Load Control Event; a start delay becomes an absolute start time (ZigBee
        UTCTime ``now`` plus the delay), none means start now."""
        values = dict(self.fields)
        delay = values.pop("start_delay_minutes")
        duration = values.pop("duration_minutes")
        return LoadControlEvent(
            issuer_event_id=issuer_event_id,
            start_time=now + 60 * delay if delay else START_NOW,
            duration_in_minutes=duration,
            **values,
        )


def parse_load_control(body: object) -> LoadControlRequest:
    """A load control send from ``{"group", "duration_minutes", "criticality_level", ...}``:
    every field in its range (D.2.2.3.1.1), and at least one control (duty cycle, load
    adjustment or a temperature offset)."""
    body = _object(body)
    _only(body, ("group",), _LCE_FIELDS)
    group = _name(body, "group")
    values = {name: _int(body, name, *limits) for name, limits in _LCE_FIELDS.items()}
    controls = (
        "duty_cycle",
        "average_load_adjustment_percentage",
        "cooling_temperature_offset",
        "heating_temperature_offset",
    )
    if not any(name in body for name in controls):
        raise _bad("duty_cycle", "give a control: " + ", ".join(controls))
    return LoadControlRequest(group=group, fields=values)


# -- times ------------------------------------------------------------------------------------


def iso_zigbee(time: int) -> str:
    """ZigBee UTCTime (seconds since 2000-01-01 UTC) as ISO 8601 UTC, to the second."""
    return from_zigbee(time).isoformat(timespec="seconds").replace("+00:00", "Z")


def iso_unix(time: float) -> str:
    """Unix time (seconds since 1970-01-01 UTC) as ISO 8601 UTC, to the millisecond."""
    moment = _dt.datetime.fromtimestamp(time, _dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def unix_of_zigbee(time: int) -> float:
    """ZigBee UTCTime (the ZCL's seconds since 2000-01-01 UTC) as Unix time (seconds
    since 1970-01-01 UTC): the one epoch of the API's history entries, whichever way the
    meters are served. Plain arithmetic: no value overflows it."""
    return float(ZIGBEE_EPOCH + time)


# -- outcomes ---------------------------------------------------------------------------------


class Outcome(enum.Enum):
    """One device's outcome of a send (what the ESI saw and what the device reported)."""

    PENDING = "pending"  # not sent yet
    SKIPPED = "skipped"  # not METER_READY when sent
    OFFLINE = "offline"  # not acknowledged: retried later (the ESI keeps the send)
    DELIVERED = "delivered"  # acknowledged by the device
    CONFIRMED = "confirmed"  # Message Confirmation (D.5.2.4.2)
    RECEIVED = "received"  # Report Event Status: received (D.2.3.3.1.1.2)
    STARTED = "started"
    COMPLETED = "completed"
    OPTED_OUT = "opted out"
    REJECTED = "rejected"
    #: Cancelled by the retailer (``detail``: whether the device was told, :data:`CANCEL_TOLD`
    #: ...), or superseded (Report Event Status 0x07, "superseded by send N"); also a copy
    #: over (its window ended) before its device could be reached again: not sent, and not
    #: retried (``detail`` says why).
    CANCELLED = "cancelled"
    #: Given up: the device was not reached (offline, or not METER READY) within the
    #: headend's give-up time of the send (``detail`` says since when and why); not tried
    #: again. The ESI still holds the send, so the device's later reports move it on, and a
    #: cancel cancels it.
    EXPIRED = "expired"


#: A cancelled copy's ``detail``: the device acknowledged the Cancel (D.5.2.3.2 / D.2.2.3.2).
CANCEL_TOLD = "cancel acknowledged by the device"
#: A cancelled copy's ``detail``: its device was never sent the send, so there is nothing to
#: take back (the same words as the work queue's).
CANCEL_UNSENT = "cancelled before it was sent"
#: A cancelled copy's ``detail`` while its Cancel has not reached the device: sent again on
#: the back-off (``next_try`` set) until it does, the send's window is over
#: (:data:`CANCEL_OVER`) or the cancel's give-up time has passed (:data:`CANCEL_GIVEN_UP`).
CANCEL_AGAIN = "cancel not acknowledged by the device ({why}): sent again"
#: A cancelled copy's ``detail`` when the send's window ended before the Cancel reached the
#: device: nothing left on it to take back.
CANCEL_OVER = "the device was not told of the cancel before the send was over ({why})"
#: A cancelled copy's ``detail`` when its device is de-provisioned before it was told.
CANCEL_GONE = "the device was not told of the cancel: it was de-provisioned"
#: A cancelled copy's ``detail`` over gateways when its meter's gateway refused the Cancel
#: command (``why``: its reason; a damaged cancel job set aside, alike): not sent again.
CANCEL_REFUSED = "the cancel was refused ({why}): not sent again"


#: The order outcomes move in: a device's outcome only moves to a higher rank (OFFLINE and
#: SKIPPED share a rank: a skipped device that comes online is tried like an offline one).
#: EXPIRED ranks above them (a given-up copy is not tried again) and below everything the
#: device may still report: the ESI still holds the send for it (SE D.5.2.4.1 Get Last
#: Message, D.2.2.4.1 Get Scheduled Events), so a late report replaces it.
RANK: dict[Outcome, int] = {
    Outcome.PENDING: 0,
    Outcome.SKIPPED: 1,
    Outcome.OFFLINE: 1,
    Outcome.EXPIRED: 2,
    Outcome.DELIVERED: 3,
    Outcome.CONFIRMED: 4,
    Outcome.RECEIVED: 4,
    Outcome.STARTED: 5,
    Outcome.OPTED_OUT: 6,
    Outcome.REJECTED: 6,
    Outcome.COMPLETED: 7,
    Outcome.CANCELLED: 8,
}

#: Report Event Status values (SE D.2.3.3.1.1.2, zse.se.types.EventStatus) -> outcome.
_REPORTS = {
    0x01: Outcome.RECEIVED,
    0x02: Outcome.STARTED,
    0x03: Outcome.COMPLETED,
    0x04: Outcome.OPTED_OUT,
    0x06: Outcome.CANCELLED,
    0x07: Outcome.CANCELLED,  # superseded
    0x08: Outcome.COMPLETED,
    0x09: Outcome.COMPLETED,
    0x0A: Outcome.COMPLETED,
}


#: How a copy refused by its ESI for its issuer event id begins (the ESI holds that id from
#: another source with other content, SE D.2.2.3.1.1.1): final, never sent again (a resend
#: would send the ESI's event of that id, the other source's).
REFUSED_IN_USE = "refused: issuer_event_id: "


def refused(field: str, reason: object) -> str:
    """The detail of a copy its ESI refused, naming the ``field`` at fault as a gateway's
    bridge answers it (``refused: <field>: <reason>``, at most 200 characters)."""
    return f"refused: {field}: {reason}"[:200]


def outcome_of_report(event_status: int) -> Outcome:
    """The outcome a Report Event Status value means (rejections: REJECTED)."""
    return _REPORTS.get(event_status, Outcome.REJECTED)


def advance(current: Outcome, reported: Outcome) -> Outcome | None:
    """The outcome after ``reported`` arrives for a device at ``current``, or None when it
    changes nothing (an older or equal report, arriving late or twice)."""
    if reported is current:
        return None
    if RANK[reported] < RANK[current]:
        return None
    if RANK[reported] == RANK[current] and current is not Outcome.SKIPPED:
        return None
    return reported


#: The outcomes of a copy that has not reached its device (yet): its detail says why (the
#: ESI's or gateway's answer, "no APS acknowledgement from 0x1A2B after 4 attempts";
#: "de-provisioned before it was sent"; "given up: ..."), true only while the copy is in one
#: of them.
NOT_REACHED = frozenset({Outcome.PENDING, Outcome.SKIPPED, Outcome.OFFLINE, Outcome.EXPIRED})


def moved_detail(before: Outcome, detail: str, said: Outcome, words: str = "") -> str:
    """A copy's detail once ``said`` comes on it (:func:`advance` decides its outcome), the
    copy at ``before`` saying ``detail``, so that outcome and detail agree; ``words``: what
    came says of itself (an ESI's or gateway's answer, a work queue's row), "" for a device's
    report or confirmation, which says nothing but its outcome.

    ``said`` behind the copy (an answer to a try that the device's confirmation or report
    overtook, "no APS acknowledgement" its acknowledgement lost): the copy's own detail, the
    answer only counts a try. Otherwise ``words`` if any (the last try's answer); else the
    copy's own detail if it had reached the device, and none if it had not (:data:`NOT_REACHED`):
    why it was not reached no longer holds once the device reports on it."""
    if RANK[said] < RANK[before]:
        return detail
    if words:
        return words
    return "" if before in NOT_REACHED else detail


#: Retry schedule for offline devices: seconds after each failed attempt (the last repeats).
RETRY_SCHEDULE = (30.0, 60.0, 120.0, 300.0, 900.0)


def retry_delay(attempts: int, *, now: float = 0.0, deadline: float | None = None) -> float:
    """Seconds to wait after ``attempts`` failed deliveries before the next try; with a
    ``deadline`` (the end of the send's window, its give-up time), no later than just after
    it (at ``now``), so that last try finds it passed and ends the copy."""
    delay = RETRY_SCHEDULE[min(max(attempts, 1), len(RETRY_SCHEDULE)) - 1]
    if deadline is not None:
        delay = min(delay, max(deadline - now, 0.0) + 1.0)
    return delay


#: Seconds after a send is made that a device not reached yet is given up (its outcome
#: ``expired``), and after a cancel is made that a device not told of it is (its copy stays
#: ``cancelled``, :data:`CANCEL_GIVEN_UP`): three days, unless ``[sends] give_up_days`` says
#: otherwise.
GIVE_UP = 3 * 86_400.0
#: An expired copy's ``detail``.
GIVEN_UP = "given up: not reached within {span} of the send (last try: {why})"
#: A cancelled copy's ``detail`` (and its cancel job's, over gateways) when its device was not
#: told of the cancel within the give-up time of the cancel: the Cancel is not sent again.
CANCEL_GIVEN_UP = (
    "given up: the device was not told of the cancel within {span} of it (last try: {why})"
)


def span_text(seconds: float) -> str:
    """``seconds`` as a person reads a span: in days from a day, else in hours."""
    if seconds >= 86_400:
        return f"{seconds / 86_400:g} days"
    return f"{seconds / 3600:g} hours"


def give_up_at(span: float, *, created: float, cancelled_at: float | None = None) -> float:
    """When a device not reached is given up: ``span`` seconds after the send was made
    (``created``), or, once it is cancelled, after the cancel was made (``cancelled_at``):
    the Cancel has a give-up time of its own, however old the send (on any one clock)."""
    return (created if cancelled_at is None else cancelled_at) + span


class Verdict(enum.Enum):
    """What follows a try that did not reach a device (:func:`after_miss`)."""

    #: Tried again after :attr:`Miss.delay` seconds.
    AGAIN = "again"
    #: Its give-up time has passed: not tried again (a send's copy ``expired``, a Cancel
    #: given up, :data:`CANCEL_GIVEN_UP`).
    GIVEN_UP = "given up"
    #: A Cancel whose send's window has ended: nothing is left on the device to take back
    #: (:data:`CANCEL_OVER`).
    OVER = "over"


@dataclass(frozen=True, kw_only=True)
class Miss:
    """The decision after a try that did not reach a device: the :class:`Verdict`, the
    tries in a row that did not reach it (this one counted: the back-off's step) and, for
    :attr:`Verdict.AGAIN`, the seconds until the next try."""

    verdict: Verdict
    failures: int
    delay: float = 0.0


def after_miss(
    failures: int,
    *,
    now: float,
    give_up_at: float | None,
    window_end: float | None = None,
    cancel: bool = False,
) -> Miss:
    """What follows a try at ``now`` that did not reach a device (offline, not METER READY,
    its meter not answering), after ``failures`` such tries in a row: the one rule of the
    in-process headend (:class:`~zse.headend.service.Headend`) and of the work queue's
    delivery and cancel jobs (:mod:`zse.headend.queue`, :mod:`zse.headend.control`), all
    times on one clock.

    - A Cancel (``cancel``) whose send's window has ended (``window_end``, None: an "until
      changed" message, D.5.2.3.1.1.4) is :attr:`~Verdict.OVER`; a send's copy is tried once
      more just after its end instead, where the ESI finds what is left of it (SE D.5.2.4.1).
    - At or after ``give_up_at`` (None: never, a job enqueued before give-up times) it is
      :attr:`~Verdict.GIVEN_UP`.
    - Otherwise :attr:`~Verdict.AGAIN` after :func:`retry_delay`, no later than just after
      the earlier of the window's end and the give-up time still ahead, so that try decides
      (a window already over caps nothing: a copy past it is on the back-off, not tried
      every second).

    A device never reached is so tried at most ``len(RETRY_SCHEDULE) + span / 900 + 2``
    times (the window's end may add one), the last no later than one second after its
    give-up time."""
    failures = max(failures, 0) + 1
    if cancel and window_end is not None and now >= window_end:
        return Miss(verdict=Verdict.OVER, failures=failures)
    if give_up_at is not None and now >= give_up_at:
        return Miss(verdict=Verdict.GIVEN_UP, failures=failures)
    ends = [t for t in (window_end, give_up_at) if t is not None and t > now]
    deadline = min(ends) if ends else None
    delay = retry_delay(failures, now=now, deadline=deadline)
    return Miss(verdict=Verdict.AGAIN, failures=failures, delay=delay)


def given_up_detail(span: float, why: str, *, cancel: bool = False) -> str:
    """The ``detail`` of a copy given up (:attr:`Verdict.GIVEN_UP`) ``span`` seconds after
    its send (``expired``, :data:`GIVEN_UP`) or its cancel (:data:`CANCEL_GIVEN_UP`), the
    last try's answer ``why``."""
    return (CANCEL_GIVEN_UP if cancel else GIVEN_UP).format(span=span_text(span), why=why)


def send_window_end(kind: SendKind, request: Mapping[str, Any], created: int) -> int | None:
    """When a send created at ``created`` (ZigBee UTCTime) is over, or None if never: a
    message after its duration (0xFFFF: until changed, D.5.2.3.1.1.4), a load control event
    after its start delay and duration (D.2.2.3.1.1)."""
    if kind is SendKind.MESSAGE:
        minutes = int(request.get("duration_minutes", 0xFFFF))
        return None if minutes == 0xFFFF else created + 60 * minutes
    delay = int(request.get("start_delay_minutes", 0))
    return created + 60 * (delay + int(request["duration_minutes"]))


def superseded_by(
    send: int, created: int, request: Mapping[str, Any], newer: Iterable[tuple[int, int, Any]]
) -> str:
    """The ``detail`` of a load control event superseded on a device (Report Event Status
    0x07, D.2.3.3.1.1.2): the first of ``newer`` (send id, created, request: the retailer's
    later load control sends to that device) whose window overlaps this one's."""
    start = created + 60 * int(request.get("start_delay_minutes", 0))
    end = start + 60 * int(request["duration_minutes"])
    for other, other_created, other_request in sorted(newer, key=lambda n: n[0]):
        other_start = other_created + 60 * int(other_request.get("start_delay_minutes", 0))
        other_end = other_start + 60 * int(other_request["duration_minutes"])
        if other > send and other_start < end and start < other_end:
            return f"superseded by send {other}"
    return "superseded by a newer event"


# -- rate limits --------------------------------------------------------------------------------


#: The longest wait :meth:`RateLimiter.take` says (seconds).
MAX_WAIT = 86_400.0


class RateLimiter:
    """A token bucket per retailer: ``rate`` requests a second on average, bursts of ``burst``.

    :meth:`take` is fed the time (any monotonic seconds) and says how long to wait when the
    bucket is empty (HTTP 429 with ``Retry-After``)."""

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.rate, self.burst = float(rate), burst
        self._buckets: dict[str, tuple[float, float]] = {}  # retailer -> (tokens, at)

    def take(self, retailer: str, now: float) -> float | None:
        """Take one token for ``retailer``: None if allowed, else the seconds to wait."""
        tokens, at = self._buckets.get(retailer, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[retailer] = (tokens - 1.0, now)
            return None
        self._buckets[retailer] = (tokens, now)
        # at most a day (a tiny rate's wait overflows to infinity: no Retry-After then)
        return min((1.0 - tokens) / self.rate, MAX_WAIT)


class RetryBook:
    """When each offline device of a send is tried again: a sans-IO core for one
    :class:`~zse.zcl.timer.Timer` (time in the loop's seconds)."""

    def __init__(self) -> None:
        self._due: dict[tuple[int, str], float] = {}

    def schedule(self, send: int, device: str, at: float) -> None:
        """Try ``device``'s copy of ``send`` again at ``at`` (an earlier time wins)."""
        key = (send, device)
        self._due[key] = min(at, self._due.get(key, at))

    def drop(self, send: int, device: str | None = None) -> None:
        """Stop retrying one device of a send, or (``device`` None) the whole send."""
        for key in [k for k in self._due if k[0] == send and device in (None, k[1])]:
            del self._due[key]

    def pending(self) -> list[tuple[int, str]]:
        """Every (send, device) waiting for a retry."""
        return sorted(self._due)

    def next_deadline(self) -> float | None:
        """The earliest retry, or None."""
        return min(self._due.values(), default=None)

    def handle_timeout(self, now: float) -> list[tuple[int, str]]:
        """The (send, device) pairs due at ``now``, removed from the book."""
        due = sorted(k for k, at in self._due.items() if at <= now)
        for key in due:
            del self._due[key]
        return due
