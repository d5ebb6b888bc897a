"""Meter mirroring on the ESI (SE 1.1+, D.3.4) as a sans-IO core at the ZCL frame.

A battery-powered meter (gas, water) sleeps most of the time, so displays cannot read it.
It asks the ESI for a mirror with Request Mirror (D.3.2.3.1.2, sent by the Metering server);
the ESI answers Request Mirror Response (D.3.3.3.1.2) with the endpoint that now mirrors it,
or 0xFFFF when it cannot. The meter then pushes its Metering attributes to that endpoint with
Report Attributes (ZCL 2.5.11) each time it wakes up, and the ESI serves them to anyone who
reads the mirror as if it were the meter. Remove Mirror (D.3.2.3.1.3) frees the endpoint;
Mirror Removed (D.3.3.3.1.3) answers with the endpoint freed, 0xFFFF when there was none.

:class:`MirrorPool` is the state: a fixed set of mirror endpoints (declared at start, as
radios such as EmberZNet take endpoints only before the network is up), their owners by
EUI-64 and the values each mirror holds. A device asking again gets its own mirror back.
:class:`MirrorProtocol` decides at the frame (:class:`zse.zcl.frame.FrameCore`): the
mirroring commands on the ESI's Metering client, and Report Attributes on a mirror endpoint,
taken only from the mirror's owner, as a report (server to client) without a manufacturer
code, on Metering, each record an attribute of :class:`zse.metering.wire.Metering` in its
data type; a report with any bad record is refused whole with a Default Response status.
SE 1.2 notifications (:mod:`zse.metering.notification`): :meth:`MirrorProtocol.configure` takes
the meter's Configure Mirror / Notification Scheme / Notification Flag and Get Notified Message
on its mirror endpoint, and a report is answered with Mirror Report Attribute Response when
the meter asked for it. Nothing here does I/O; :mod:`zse.metering.mirroring` is the asyncio shell.

Data types: each attribute is held and served in its declared SE type (the wire's
``zcl_type``, :func:`zse.metering.protocol.attribute_type_id`): the Formatting bitmaps and
MeteringDeviceType are map8 (0x18, D.3.2.2.4). A meter may report those four as uint8 (0x20)
or enum8 (0x30) instead, as stacks deriving the type from a Python or C type do; one octet
either way, they are taken (:data:`LENIENT_TYPES`). Silicon Labs' meter-mirror plugin writes
what it is sent without checking the type at all; zse still refuses other types.

MeteringDeviceType on a mirror is the mirrored kind (D.3.2.2.4.7: 127 Mirrored Electric, 128
Mirrored Gas, ...): a reported value below 127 is stored plus 127, as the plugin does; a new
mirror holds :data:`UNDEFINED_MIRROR_METER` until its meter reports.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import zigpy.types as t
from zigpy.zcl import foundation

from zse.errors import InvalidFrame
from zse.installcode import parse_eui64
from zse.metering.notification import (
    FLAG_ATTRIBUTES,
    FlagCommands,
    MirrorConfigured,
    MirrorNotifications,
    NotificationFlagsRaised,
    NotifiedMessageRequested,
)
from zse.metering.notification import MAX_FLAG_COMMANDS as _MAX_FLAG_COMMANDS
from zse.metering.notification import MAX_SCHEMES as _MAX_SCHEMES
from zse.metering.protocol import attribute_type_id
from zse.metering.wire import Metering
from zse.se.ids import METERING, MeteringClientCommand, MeteringServerCommand
from zse.se.ids import MeteringAttribute as A
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.frame import Send, Step, ZclMessage
from zse.zcl.reporting import report_payload

__all__ = [
    "LENIENT_TYPES",
    "MIRRORED_ATTRIBUTES",
    "MIRRORED_DEVICE_TYPE_OFFSET",
    "NO_MIRROR",
    "UNDEFINED_MIRROR_METER",
    "MirrorAdded",
    "MirrorPool",
    "MirrorProtocol",
    "MirrorRemoved",
    "MirrorUpdated",
    "metering_type_id",
    "mirror_endpoint",
    "mirror_report_payload",
    "mirrored_value",
]

#: Request Mirror Response / Mirror Removed endpoint when there is none (D.3.3.3.1.2-3).
NO_MIRROR: Final = 0xFFFF
#: What a mirrored meter pushes on each wake-up: summation, status, the Formatting set and
#: the device type (D.3.2.2.1, D.3.2.2.3, D.3.2.2.4).
MIRRORED_ATTRIBUTES: Final = (
    A.CURRENT_SUMM_DELIVERED,
    A.STATUS,
    A.UNIT_OF_MEASURE,
    A.MULTIPLIER,
    A.DIVISOR,
    A.SUMMATION_FORMATTING,
    A.DEMAND_FORMATTING,
    A.HISTORICAL_CONSUMPTION_FORMATTING,
    A.METERING_DEVICE_TYPE,
)
#: MeteringDeviceType of a mirror = the meter's own + 127 (D.3.2.2.4.7: 0 Electric -> 127
#: Mirrored Electric, 1 Gas -> 128 Mirrored Gas, ... 15 -> 142).
MIRRORED_DEVICE_TYPE_OFFSET: Final = 127
#: MeteringDeviceType of a mirror no meter has reported to yet: 0xFE, the "undefined mirror
#: meter" value Silicon Labs' meter-mirror plugin writes on allocation (taken from the
#: range SE reserves, 143-255; not an SE enumeration value).
UNDEFINED_MIRROR_METER: Final = 0xFE
_MAP8: Final = int(foundation.DataTypeId.map8)
#: Attribute -> the other data types a report may carry it in (same octet, held as declared):
#: the map8 Formatting bitmaps and MeteringDeviceType sent as uint8 or enum8.
LENIENT_TYPES: Final[Mapping[int, frozenset[int]]] = dict.fromkeys(
    (
        A.SUMMATION_FORMATTING,
        A.DEMAND_FORMATTING,
        A.HISTORICAL_CONSUMPTION_FORMATTING,
        A.METERING_DEVICE_TYPE,
    ),
    frozenset({int(foundation.DataTypeId.uint8), int(foundation.DataTypeId.enum8)}),
)
_STATUS = foundation.Status
_REPORT: Final = foundation.GeneralCommand.Report_Attributes


@dataclass(frozen=True, kw_only=True)
class MirrorAdded:
    """A meter has a mirror; ``new`` is False when it asked again for the one it had."""

    device: t.EUI64
    endpoint: int
    new: bool


@dataclass(frozen=True, kw_only=True)
class MirrorRemoved:
    """A meter's mirror was freed."""

    device: t.EUI64
    endpoint: int


@dataclass(frozen=True, kw_only=True)
class MirrorUpdated:
    """A meter pushed attribute values to its mirror: (attribute id, value as the mirror
    holds it, :func:`mirrored_value`) in report order."""

    device: t.EUI64
    endpoint: int
    attributes: tuple[tuple[int, int], ...]


def metering_type_id(attr_id: int) -> int | None:
    """The declared ZCL data type id of a Metering server attribute (the wire's, as
    :func:`~zse.metering.protocol.attribute_type_id`), None when unknown."""
    if attr_id not in Metering.attributes:
        return None
    return attribute_type_id(attr_id)


def _accepted(attr_id: int, type_id: int) -> int | None:
    """The declared type a record of ``attr_id`` in ``type_id`` is held as: the declared
    type itself, or one of :data:`LENIENT_TYPES`; None when the type is not accepted."""
    declared = metering_type_id(attr_id)
    if declared is not None and (type_id == declared or type_id in LENIENT_TYPES.get(attr_id, ())):
        return declared
    return None


def mirrored_value(attr_id: int, value: int) -> int:
    """What a mirror holds for a reported value: MeteringDeviceType 0-126 (the meter's own
    kind) becomes its mirrored kind, plus 127 (D.3.2.2.4.7); anything else is kept."""
    if attr_id == A.METERING_DEVICE_TYPE and value < MIRRORED_DEVICE_TYPE_OFFSET:
        return value + MIRRORED_DEVICE_TYPE_OFFSET
    return value


def mirror_report_payload(values: Mapping[int, int]) -> bytes:
    """The meter's side: Report Attributes (ZCL 2.5.11.1) carrying ``values`` (attribute id
    -> value) in the Metering wire's data types; ``ValueError`` for an attribute the wire
    does not have."""
    type_ids = {}
    for attr_id in values:
        type_id = metering_type_id(attr_id)
        if type_id is None:
            raise ValueError(f"0x{attr_id:04X} is not a Metering attribute")
        type_ids[attr_id] = type_id
    return report_payload(values.items(), type_ids)


def mirror_endpoint(command_id: int, payload: bytes) -> int | None:
    """The meter's side: the endpoint a Request Mirror Response or Mirror Removed carries
    (D.3.3.3.1.2-3), None for 0xFFFF; :class:`~zse.errors.InvalidFrame` when it does not
    decode."""
    command, _ = decode_command(Metering, command_id, payload, from_server=False)
    if command_id == MeteringServerCommand.REQUEST_MIRROR_RESPONSE:
        endpoint = int(command.endpoint_id)
    elif command_id == MeteringServerCommand.MIRROR_REMOVED:
        endpoint = int(command.removed_endpoint_id)
    else:
        raise InvalidFrame(f"Metering command 0x{command_id:02X} carries no mirror endpoint")
    return None if endpoint == NO_MIRROR else endpoint


#: A mirror endpoint as :meth:`MirrorPool.hold` gives it: owner (None: free), values, notes.
MirrorHeld = tuple[t.EUI64 | None, dict[int, tuple[int, int]], MirrorNotifications | None]


class MirrorPool:
    """The mirror endpoints, their owners and the values they hold.

    ``endpoints`` is the fixed pool (each 1-240, ZigBee application endpoints). Values are
    kept by attribute id as (ZCL data type id, value).
    """

    def __init__(self, endpoints: Iterable[int]) -> None:
        self.endpoints: tuple[int, ...] = tuple(endpoints)
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ValueError(f"mirror endpoints repeated: {self.endpoints}")
        for endpoint in self.endpoints:
            if not 1 <= endpoint <= 240:
                raise ValueError(f"mirror endpoint {endpoint} is not an application endpoint")
        self._owners: dict[int, t.EUI64] = {}
        self._values: dict[int, dict[int, tuple[int, int]]] = {ep: {} for ep in self.endpoints}
        self._notes: dict[int, MirrorNotifications] = {}

    def owner(self, endpoint: int) -> t.EUI64 | None:
        """The device ``endpoint`` mirrors, None when free (or not a mirror endpoint)."""
        return self._owners.get(endpoint)

    def endpoint_of(self, device: t.EUI64) -> int | None:
        """The endpoint mirroring ``device``, None when it has no mirror."""
        for endpoint, owner in self._owners.items():
            if owner == device:
                return endpoint
        return None

    @property
    def free(self) -> int:
        """How many mirror endpoints are free."""
        return len(self.endpoints) - len(self._owners)

    def allocate(self, device: t.EUI64) -> tuple[int | None, bool]:
        """The endpoint mirroring ``device`` (its own if it has one, else the first free one)
        and whether it is new; (None, False) when the pool is full. A new mirror holds
        MeteringDeviceType :data:`UNDEFINED_MIRROR_METER` until its meter reports one."""
        held = self.endpoint_of(device)
        if held is not None:
            return held, False
        for endpoint in self.endpoints:
            if endpoint not in self._owners:
                self._owners[endpoint] = device
                self._values[endpoint] = {A.METERING_DEVICE_TYPE: (_MAP8, UNDEFINED_MIRROR_METER)}
                self._notes[endpoint] = MirrorNotifications()
                return endpoint, True
        return None, False

    def remove(self, device: t.EUI64) -> int | None:
        """Free ``device``'s mirror and forget its values; the endpoint, None if none."""
        endpoint = self.endpoint_of(device)
        if endpoint is not None:
            del self._owners[endpoint]
            self._values[endpoint] = {}
            self._notes.pop(endpoint, None)
        return endpoint

    def notifications(self, endpoint: int) -> MirrorNotifications:
        """The SE 1.2 notification settings and flags of an owned mirror (``KeyError`` for a
        free one)."""
        if endpoint not in self._owners:
            raise KeyError(f"endpoint {endpoint} mirrors no device")
        return self._notes.setdefault(endpoint, MirrorNotifications())

    def hold(self, endpoint: int) -> MirrorHeld:
        """Mirror ``endpoint`` as it is now (owner, values, notifications), for
        :meth:`put_back`."""
        notes = self._notes.get(endpoint)
        values = dict(self._values.get(endpoint, {}))
        return self._owners.get(endpoint), values, None if notes is None else copy.deepcopy(notes)

    def put_back(self, endpoint: int, held: MirrorHeld) -> None:
        """Mirror ``endpoint`` as :meth:`hold` gave it before a change (its store write
        failed: nothing changed)."""
        owner, values, notes = held
        if owner is None:
            self._owners.pop(endpoint, None)
        else:
            self._owners[endpoint] = owner
        self._values[endpoint] = values
        if notes is None:
            self._notes.pop(endpoint, None)
        else:
            self._notes[endpoint] = notes

    def values(self, endpoint: int) -> Mapping[int, tuple[int, int]]:
        """What the mirror at ``endpoint`` holds: attribute id -> (data type id, value)."""
        return self._values.get(endpoint, {})

    def store(self, endpoint: int, records: Iterable[tuple[int, int, int]]) -> None:
        """Hold (attribute id, data type id, value) records on an owned mirror, each in its
        declared type (:data:`LENIENT_TYPES`) and MeteringDeviceType as the mirrored kind
        (:func:`mirrored_value`); ``ValueError`` for a record in a type not accepted."""
        if endpoint not in self._owners:
            raise KeyError(f"endpoint {endpoint} mirrors no device")
        held = []
        for attr_id, type_id, value in records:
            declared = _accepted(attr_id, type_id)
            if declared is None:
                raise ValueError(f"0x{attr_id:04X} in type 0x{type_id:02X} is not mirrored")
            held.append((attr_id, declared, mirrored_value(attr_id, value)))
        for attr_id, declared, value in held:
            self._values[endpoint][attr_id] = (declared, value)

    def record(self, endpoint: int) -> dict[str, Any] | None:
        """What persists of one mirror endpoint (None: free)."""
        owner = self._owners.get(endpoint)
        if owner is None:
            return None
        values = {f"{a:04x}": [ty, v] for a, (ty, v) in sorted(self._values[endpoint].items())}
        record: dict[str, Any] = {"device": str(owner), "values": values}
        notes = self._notes.get(endpoint)
        if notes is not None and notes != MirrorNotifications():
            record["notify"] = notes.record()
        return record

    def restore(self, endpoint: int, record: Mapping[str, Any]) -> None:
        """Take back one mirror endpoint from :meth:`record`'s output; ``ValueError`` (and
        nothing changed) when it is not one."""
        if endpoint not in self._values:
            raise ValueError(f"endpoint {endpoint} is not in the mirror pool")
        try:
            text = record["device"]
            if not isinstance(text, str):
                raise TypeError("the device is not an EUI-64")
            device = parse_eui64(text)
            values: dict[int, tuple[int, int]] = {}
            for key, (type_id, value) in record["values"].items():
                attr_id = int(key, 16)
                # a record written before zse held the declared types has uint8 / enum8
                declared = _accepted(attr_id, type_id) if type(type_id) is int else None
                if declared is None or type(value) is not int:
                    raise ValueError(f"mirror value {key} is not a Metering attribute")
                values[attr_id] = (declared, mirrored_value(attr_id, value))
            # a record written before SE 1.2 notifications has none
            notify = record.get("notify")
            notes = MirrorNotifications() if notify is None else MirrorNotifications.restore(notify)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a mirror record ({type(exc).__name__})") from None
        if self.endpoint_of(device) not in (None, endpoint):
            raise ValueError(f"{device} is mirrored twice")
        self._owners[endpoint] = device
        self._values[endpoint] = values
        self._notes[endpoint] = notes


def _report_records(payload: bytes) -> list[tuple[int, int, int]]:
    """The (attribute id, data type id, value) records of Report Attributes (ZCL 2.5.11.1);
    ``ValueError`` when the payload is empty, cut short or names an unknown type."""
    records = []
    rest = bytes(payload)
    while rest:
        try:
            attribute, rest = foundation.Attribute.deserialize(rest)
        except (ValueError, KeyError, IndexError) as exc:
            raise ValueError(f"bad attribute report record: {exc}") from None
        value = attribute.value.value
        if not isinstance(value, int):
            raise ValueError(f"attribute 0x{attribute.attrid:04X} is not a number")
        records.append((int(attribute.attrid), int(attribute.value.type), int(value)))
    if not records:
        raise ValueError("Report Attributes without a record")
    return records


def _check(records: Iterable[tuple[int, int, int]]) -> _STATUS:
    """SUCCESS when every record is a Metering attribute in its declared data type (or one
    of :data:`LENIENT_TYPES`)."""
    for attr_id, type_id, _ in records:
        if metering_type_id(attr_id) is None:
            return _STATUS.UNSUPPORTED_ATTRIBUTE
        if _accepted(attr_id, type_id) is None:
            return _STATUS.INVALID_DATA_TYPE
    return _STATUS.SUCCESS


class MirrorProtocol:
    """The ESI's mirroring at the ZCL frame: :meth:`receive` takes the mirroring commands on
    the ESI's Metering client endpoint, :meth:`report` Report Attributes on a mirror
    endpoint. Each :class:`~zse.zcl.frame.Step` that changes :attr:`pool` carries a
    :class:`MirrorAdded`, :class:`MirrorRemoved` or :class:`MirrorUpdated` event, for the
    shell to persist before it sends the answer. Nothing is timed."""

    def __init__(self, pool: MirrorPool) -> None:
        self.pool = pool

    def next_deadline(self) -> int | None:
        """Always None: mirroring keeps no timer."""
        return None

    def handle_timeout(self, now: int) -> Step:
        """Nothing is ever due."""
        return Step()

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Answer Request Mirror (Request Mirror Response: the endpoint, or 0xFFFF when the
        pool is full or the sender's EUI-64 is unknown) and Remove Mirror (Mirror Removed:
        the endpoint freed, or 0xFFFF). Anything else on Metering: UNSUP_CLUSTER_COMMAND.

        Both are a meter's unicast request to its ESI, answered to that meter alone (D.3.2.3.1.2,
        D.3.2.3.1.3), under the meter's link key (SE 5.4.6: a group or broadcast frame cannot
        be APS-encrypted, so nothing vouches for its sender). One sent to a group or broadcast
        is ignored: no mirror allocated or freed, no answer (ZCL 2.5.12.2: no Default Response
        to a group or broadcast either)."""
        if msg.group is not None or msg.broadcast:
            return Step()
        if not msg.from_server or msg.command_id not in (
            MeteringClientCommand.REQUEST_MIRROR,
            MeteringClientCommand.REMOVE_MIRROR,
        ):
            return Step(status=_STATUS.UNSUP_CLUSTER_COMMAND)
        device = msg.src_ieee
        events: tuple[Any, ...] = ()
        if msg.command_id == MeteringClientCommand.REQUEST_MIRROR:
            endpoint, new = (None, False) if device is None else self.pool.allocate(device)
            if endpoint is not None and device is not None:
                events = (MirrorAdded(device=device, endpoint=endpoint, new=new),)
            answer = MeteringServerCommand.REQUEST_MIRROR_RESPONSE
        else:
            endpoint = None if device is None else self.pool.remove(device)
            if endpoint is not None and device is not None:
                events = (MirrorRemoved(device=device, endpoint=endpoint),)
            answer = MeteringServerCommand.MIRROR_REMOVED
        payload = (NO_MIRROR if endpoint is None else endpoint).to_bytes(2, "little")
        send = Send(cluster_id=METERING, command_id=answer, payload=payload, reply_to=msg)
        return Step(sends=(send,), events=events)

    def _refusal(self, msg: ZclMessage) -> foundation.Status | None:
        """Why a frame on a mirror endpoint is not a report the mirror takes, or None."""
        if msg.is_cluster_command or msg.command_id != _REPORT:
            return _STATUS.UNSUP_GENERAL_COMMAND
        if msg.cluster_id != METERING:
            return _STATUS.UNREPORTABLE_ATTRIBUTE
        if not msg.from_server:
            return _STATUS.FAILURE
        if msg.manufacturer is not None:
            return _STATUS.UNSUP_MANUF_GENERAL_COMMAND
        owner = self.pool.owner(msg.dst_ep)
        if owner is None or owner != msg.src_ieee:
            return _STATUS.NOT_AUTHORIZED
        return None

    def report(self, msg: ZclMessage, now: int) -> Step:
        """Take Report Attributes sent to mirror endpoint ``msg.dst_ep`` into the mirror.

        Refused (nothing stored, the Default Response status): not Metering
        (UNREPORTABLE_ATTRIBUTE), not from a server (FAILURE), manufacturer-specific
        (UNSUP_MANUF_GENERAL_COMMAND), not from the mirror's owner (NOT_AUTHORIZED), a payload
        that does not parse (MALFORMED_COMMAND), an attribute the Metering wire does not have
        (UNSUPPORTED_ATTRIBUTE) or in another data type than its declared one or, for the
        map8 Formatting bitmaps and MeteringDeviceType, uint8 / enum8 (INVALID_DATA_TYPE).
        What is stored is in the declared type, MeteringDeviceType as the mirrored kind."""
        refused = self._refusal(msg)
        if refused is not None:
            return Step(status=refused)
        owner = self.pool.owner(msg.dst_ep)
        assert owner is not None
        try:
            records = _report_records(msg.payload)
        except ValueError:
            return Step(status=_STATUS.MALFORMED_COMMAND)
        status = _check(records)
        if status != _STATUS.SUCCESS:
            return Step(status=status)
        self.pool.store(msg.dst_ep, records)
        pairs = tuple((attr_id, mirrored_value(attr_id, value)) for attr_id, _, value in records)
        updated = MirrorUpdated(device=owner, endpoint=msg.dst_ep, attributes=pairs)
        answer = _mirror_response(msg, self.pool.notifications(msg.dst_ep))
        if answer is not None:  # SE 1.2: this answers the report, no Default Response
            return Step(sends=(answer,), events=(updated,))
        return Step(events=(updated,), status=_STATUS.SUCCESS)

    def configure(self, msg: ZclMessage, now: int) -> Step:
        """Take the meter's SE 1.2 notification commands sent to its mirror endpoint
        ``msg.dst_ep``: Configure Mirror, Configure Notification Scheme, Configure
        Notification Flag (kept, :class:`~zse.metering.notification.MirrorConfigured`) and
        Get Notified Message (the bits it names cleared,
        :class:`~zse.metering.notification.NotifiedMessageRequested`); each answered by a
        Default Response. Refused: a group or broadcast frame (ignored, as Request Mirror),
        another command or one to the meter (UNSUP_CLUSTER_COMMAND), not from the mirror's
        owner (NOT_AUTHORIZED), a payload that does not decode (MALFORMED_COMMAND), a flag
        attribute other than 0x0000-0x0007 (INVALID_VALUE), a ninth scheme or seventeenth
        flag configuration (INSUFFICIENT_SPACE)."""
        if msg.group is not None or msg.broadcast:
            return Step()  # ignored, as a Request Mirror to many (nothing vouches for it)
        if not msg.from_server or msg.command_id not in _CONFIGURING:
            return Step(status=_STATUS.UNSUP_CLUSTER_COMMAND)
        owner = self.pool.owner(msg.dst_ep)
        if owner is None or owner != msg.src_ieee:
            return Step(status=_STATUS.NOT_AUTHORIZED)
        try:
            command, _ = decode_command(Metering, msg.command_id, msg.payload, from_server=True)
        except InvalidFrame:
            return Step(status=_STATUS.MALFORMED_COMMAND)
        notes = self.pool.notifications(msg.dst_ep)
        if msg.command_id == MeteringClientCommand.GET_NOTIFIED_MESSAGE:
            return _notified(owner, msg.dst_ep, notes, command)
        status = _configure(notes, msg.command_id, command)
        event = MirrorConfigured(
            device=owner,
            endpoint=msg.dst_ep,
            command_id=msg.command_id,
            reporting=notes.reporting,
            scheme=notes.scheme,
            reporting_interval=notes.reporting_interval,
        )
        return Step(events=(event,) if status == _STATUS.SUCCESS else (), status=status)

    def notify(
        self, device: t.EUI64, attribute: int, flags: int, *, clear: bool = False
    ) -> NotificationFlagsRaised:
        """The application raises (``clear``: clears) ``flags`` in notification flag
        ``attribute`` of ``device``'s mirror; the meter learns them from the next Mirror
        Report Attribute Response (or by reading the mirror's client attribute). ``KeyError``
        when the device has no mirror, ``ValueError`` for a bad attribute or flags."""
        endpoint = self.pool.endpoint_of(device)
        if endpoint is None:
            raise KeyError(f"{device} has no mirror")
        notes = self.pool.notifications(endpoint)
        held = notes.clear_flags(attribute, flags) if clear else notes.raise_flags(attribute, flags)
        return NotificationFlagsRaised(
            device=device, endpoint=endpoint, attribute=attribute, flags=held
        )


#: The meter's notification commands a mirror endpoint takes (SE 1.2).
_CONFIGURING: Final = frozenset(
    {
        MeteringClientCommand.CONFIGURE_MIRROR,
        MeteringClientCommand.CONFIGURE_NOTIFICATION_SCHEME,
        MeteringClientCommand.CONFIGURE_NOTIFICATION_FLAG,
        MeteringClientCommand.GET_NOTIFIED_MESSAGE,
    }
)


def _mirror_response(msg: ZclMessage, notes: MirrorNotifications) -> Send | None:
    """Mirror Report Attribute Response to the report ``msg`` when the meter asked for one."""
    flags = notes.response_flags()
    if flags is None:
        return None
    definition = Metering.ServerCommandDefs.mirror_report_attribute_response
    payload = encode_command(
        definition.schema(notification_scheme=notes.scheme, notification_flags=list(flags))
    )
    return Send(
        cluster_id=METERING,
        command_id=MeteringServerCommand.MIRROR_REPORT_ATTRIBUTE_RESPONSE,
        payload=payload,
        reply_to=msg,
    )


def _configure(notes: MirrorNotifications, command_id: int, command: Any) -> _STATUS:
    """Apply Configure Mirror / Notification Scheme / Notification Flag to ``notes``."""
    if command_id == MeteringClientCommand.CONFIGURE_MIRROR:
        notes.issuer_event_id = int(command.issuer_event_id)
        notes.reporting_interval = int(command.reporting_interval)
        notes.reporting = bool(command.mirror_notification_reporting)
        notes.scheme = int(command.notification_scheme)
        return _STATUS.SUCCESS
    if command_id == MeteringClientCommand.CONFIGURE_NOTIFICATION_SCHEME:
        scheme = int(command.notification_scheme)
        if scheme not in notes.orders and len(notes.orders) >= _MAX_SCHEMES:
            return _STATUS.INSUFFICIENT_SPACE
        notes.orders[scheme] = int(command.notification_flag_order)
        return _STATUS.SUCCESS
    key = (int(command.notification_scheme), int(command.notification_flag_attribute_id))
    if key[1] not in FLAG_ATTRIBUTES:
        return _STATUS.INVALID_VALUE
    if key not in notes.commands and len(notes.commands) >= _MAX_FLAG_COMMANDS:
        return _STATUS.INSUFFICIENT_SPACE
    notes.commands[key] = FlagCommands(
        int(command.cluster_id),
        int(command.manufacturer_code),
        tuple(int(c) for c in command.command_ids),
    )
    return _STATUS.SUCCESS


def _notified(owner: t.EUI64, endpoint: int, notes: MirrorNotifications, command: Any) -> Step:
    """Get Notified Message: the bits it names are cleared, the application told which of
    them were set and what Configure Notification Flag said they stand for."""
    attribute = int(command.notification_flag_attribute_id)
    if attribute not in FLAG_ATTRIBUTES:
        return Step(status=_STATUS.INVALID_VALUE)
    asked = int(command.notification_flags)
    held = notes.flags.get(attribute, 0)
    notes.clear_flags(attribute, asked)
    scheme = int(command.notification_scheme)
    event = NotifiedMessageRequested(
        device=owner,
        endpoint=endpoint,
        scheme=scheme,
        attribute=attribute,
        flags=asked & held,
        commands=notes.commands.get((scheme, attribute)),
    )
    return Step(events=(event,), status=_STATUS.SUCCESS)
