"""Device Management at the ZCL frame (SE 1.2 D.10): the ESI's server core and a HAN device's
client core, sans-IO. Fed decoded frames and ``now``; they return a
:class:`~zse.zcl.frame.Step` (frames to send, events, the Default Response status).

Server (:class:`DeviceManagementServerProtocol`): answers Get Change of Tenancy / Supplier /
Site ID / CIN with the publication held (NOT_FOUND when none), Request New Password with the
password of that type (NOT_FOUND when none; INVALID_FIELD for a type that is not 1-4), and
tells Report Event Configuration (:class:`EventConfigurationReported`, held nowhere).

Client (:class:`DeviceManagementClientProtocol`): keeps what the server publishes
(:class:`~zse.devmgmt.core.Kept`) and tells each new issue (:class:`TenancyChanged`,
:class:`SupplierChanged`, :class:`SiteIdUpdated`, :class:`CinUpdated`,
:class:`PasswordReceived`), and when a change takes effect
(:class:`~zse.devmgmt.core.TenancyTakesEffect`, :class:`~zse.devmgmt.core.SupplierTakesEffect`);
applies Set Event Configuration to its :class:`~zse.devmgmt.core.EventConfigurations` at
its Start Date/Time and answers Get Event Configuration with Report Event Configuration.

Set Event Configuration's Start Date/Time follows the rule of the utility's timed commands
(:mod:`zse.schedule`): 0 or a time not after ``now`` applies it when received; a later one
waits (:attr:`DeviceManagementClientProtocol.waiting`, at most
:data:`MAX_WAITING_CONFIGURATIONS`, one more refused INSUFFICIENT_SPACE) and is applied once
at its time; 0xFFFFFFFF cancels the waiting one of the same issuer event id; the same issue
again replaces it. Each applies in turn (they may touch different event ids: none drops
another). The SE text of D.10.2.4.5 was out of reach: the 0 / 0xFFFFFFFF reading is that of
the other SE 1.2 commands with a start time (Silicon Labs' servers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from zigpy.zcl import foundation

from zse.devmgmt.core import (
    ChangeOfSupplier,
    ChangeOfTenancy,
    CustomerId,
    DeviceManagementError,
    EventConfigurations,
    Item,
    Kept,
    Password,
    Published,
    SiteId,
    SupplierTakesEffect,
    TenancyTakesEffect,
)
from zse.devmgmt.wire import (
    ConfigurationControl,
    DeviceManagement,
    EventConfigurationRecord,
    PasswordOctets,
    PasswordType,
    TenancyChangeControl,
    configuration_payload,
    parse_configuration_payload,
)
from zse.errors import InvalidFrame
from zse.records import STR, U8, U32, ListOf, Mismatch, TupleOf, check
from zse.schedule import ScheduleFull, schedule, take_due
from zse.se.ids import DEVICE_MANAGEMENT_CLUSTER, DeviceManagementAttribute
from zse.se.ids import DeviceManagementClientCommand as ToClient
from zse.se.ids import DeviceManagementServerCommand as ToServer
from zse.se.types import CharacterString
from zse.zcl.codec import encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage

__all__ = [
    "ALL_EVENTS",
    "MAX_WAITING_CONFIGURATIONS",
    "CinUpdated",
    "DeviceManagementClientProtocol",
    "DeviceManagementServerProtocol",
    "EventConfigurationChanged",
    "EventConfigurationReported",
    "PasswordReceived",
    "PasswordRequested",
    "SiteIdUpdated",
    "SupplierChanged",
    "TenancyChanged",
    "WaitingConfiguration",
    "attribute_type_id",
    "attribute_values",
    "payload_of",
    "waiting_from_records",
    "waiting_records",
]

#: Get Event Configuration's event id asking for every configured event (zse's reading: the
#: 0xFFFF "all" of SE's other id fields; the SE text was out of reach).
ALL_EVENTS: Final = 0xFFFF
#: Report Event Configuration records in one command: 3 octets each, well inside one frame.
_RECORDS_PER_REPORT = 24

_C = DeviceManagement.ClientCommandDefs
_S = DeviceManagement.ServerCommandDefs


def payload_of(item: Item) -> tuple[int, bytes]:
    """The command id and payload publishing ``item``."""
    if isinstance(item, ChangeOfTenancy):
        return ToClient.PUBLISH_CHANGE_OF_TENANCY, encode_command(
            _C.publish_change_of_tenancy.schema(
                provider_id=item.provider_id,
                issuer_event_id=item.issuer_event_id,
                tariff_type=item.tariff_type,
                implementation_date_time=item.implementation_time,
                proposed_tenancy_change_control=item.control,
            )
        )
    if isinstance(item, ChangeOfSupplier):
        return ToClient.PUBLISH_CHANGE_OF_SUPPLIER, encode_command(
            _C.publish_change_of_supplier.schema(
                current_provider_id=item.current_provider_id,
                issuer_event_id=item.issuer_event_id,
                tariff_type=item.tariff_type,
                proposed_provider_id=item.proposed_provider_id,
                provider_change_implementation_time=item.implementation_time,
                provider_change_control=item.control,
                proposed_provider_name=CharacterString(item.provider_name),
                proposed_provider_contact_details=CharacterString(item.contact_details),
            )
        )
    if isinstance(item, SiteId):
        return ToClient.UPDATE_SITE_ID, encode_command(
            _C.update_site_id.schema(
                issuer_event_id=item.issuer_event_id,
                site_id_time=item.time,
                provider_id=item.provider_id,
                site_id=CharacterString(item.site_id),
            )
        )
    return ToClient.UPDATE_CIN, encode_command(
        _C.update_cin.schema(
            issuer_event_id=item.issuer_event_id,
            cin_implementation_time=item.time,
            provider_id=item.provider_id,
            customer_id_number=CharacterString(item.cin),
        )
    )


_A = DeviceManagementAttribute


def attribute_type_id(attr_id: int) -> int:
    """The ZCL data type id of a Device Management server attribute, from its wire
    definition."""
    python_type = DeviceManagement.attributes[attr_id].type
    return int(foundation.DataType.from_python_type(python_type).type_id)


def _octets(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def attribute_values(published: Published, now: int) -> dict[int, Any]:
    """The server attributes (D.10.2.2) that follow from what is published, by id: the
    Supplier Control set from the change of supplier (Provider ID / Name / Contact Details
    are the proposed provider's once its implementation time came; before, the current
    provider's id and an empty name and contact details, which nothing publishes), the Tenancy
    Control set from the change of tenancy."""
    values: dict[int, Any] = {}
    tenancy, supplier = published.tenancy, published.supplier
    if tenancy is not None:
        values[_A.PROVIDER_ID] = tenancy.provider_id
        values[_A.CHANGE_OF_TENANCY_UPDATE_DATE_TIME] = tenancy.implementation_time
        values[_A.PROPOSED_TENANCY_CHANGE_CONTROL] = tenancy.control
    if supplier is not None:
        values[_A.PROPOSED_PROVIDER_ID] = supplier.proposed_provider_id
        values[_A.PROPOSED_PROVIDER_NAME] = supplier.provider_name.encode(
            "utf-8", "surrogateescape"
        )
        values[_A.PROPOSED_PROVIDER_CHANGE_DATE_TIME] = supplier.implementation_time
        values[_A.PROPOSED_PROVIDER_CHANGE_CONTROL] = supplier.control
        values[_A.PROPOSED_PROVIDER_CONTACT_DETAILS] = _octets(supplier.contact_details)
        if supplier.implementation_time <= now:
            values[_A.PROVIDER_ID] = supplier.proposed_provider_id
            values[_A.PROVIDER_NAME] = values[_A.PROPOSED_PROVIDER_NAME]
            values[_A.PROVIDER_CONTACT_DETAILS] = values[_A.PROPOSED_PROVIDER_CONTACT_DETAILS]
        else:  # the current provider's name and contact details are not published
            values[_A.PROVIDER_ID] = supplier.current_provider_id
            values[_A.PROVIDER_NAME] = b""
            values[_A.PROVIDER_CONTACT_DETAILS] = b""
    return values


def _password_payload(password: Password) -> bytes:
    return encode_command(
        _C.request_new_password_response.schema(
            issuer_event_id=password.issuer_event_id,
            implementation_date_time=password.implementation_time,
            duration_in_minutes=password.duration_in_minutes,
            password_type=password.password_type,
            password=PasswordOctets(password.value),
        )
    )


@dataclass(frozen=True, kw_only=True)
class PasswordRequested:
    """A device sent Request New Password (D.10.2.3.3); ``answered``: a password of that type
    was held and sent. Never holds the password."""

    source_nwk: int
    source_ieee: Any
    password_type: int
    answered: bool


@dataclass(frozen=True, kw_only=True)
class EventConfigurationReported:
    """Report Event Configuration from a device (D.10.2.3.5): its (event id, configuration)
    pairs, command ``command_index`` of ``total_commands``."""

    source_nwk: int
    source_ieee: Any
    command_index: int
    total_commands: int
    configurations: tuple[tuple[int, int], ...]


@dataclass(frozen=True, kw_only=True)
class TenancyChanged:
    """A new change of tenancy (D.10.2.4.1) a device was told; ``control`` is the Proposed
    Tenancy Change Control, named bit by bit. It takes effect at ``change.
    implementation_time`` (then :class:`~zse.devmgmt.core.TenancyTakesEffect`)."""

    change: ChangeOfTenancy
    control: TenancyChangeControl


@dataclass(frozen=True, kw_only=True)
class SupplierChanged:
    """A new change of supplier (D.10.2.4.2) a device was told."""

    change: ChangeOfSupplier


@dataclass(frozen=True, kw_only=True)
class SiteIdUpdated:
    """Update SiteID (D.10.2.4.4) a device was told."""

    site: SiteId


@dataclass(frozen=True, kw_only=True)
class CinUpdated:
    """Update CIN (D.10.2.4.7) a device was told."""

    customer: CustomerId


@dataclass(frozen=True, kw_only=True)
class PasswordReceived:
    """Request New Password Response (D.10.2.4.3): the password (its repr shows no octets)."""

    password: Password


LOGGER = logging.getLogger(__name__)
#: Set Event Configuration commands kept waiting for their Start Date/Time.
MAX_WAITING_CONFIGURATIONS: Final = 8
_WAITING_SHAPE = ListOf(TupleOf(U32, U32, U8, U8, STR))


@dataclass(frozen=True, kw_only=True)
class WaitingConfiguration:
    """A Set Event Configuration (D.10.2.4.5) waiting for ``when`` (its Start Date/Time,
    UTC): the command's fields, the payload as received (checked when received)."""

    issuer_event_id: int
    when: int
    configuration: int
    control: int
    payload: bytes
    #: The command names no provider: one issuer (:mod:`zse.schedule` keys by both).
    provider_id: int = 0

    def apply(self, configurations: EventConfigurations) -> EventConfigurationChanged:
        """Apply it: the event; :class:`DeviceManagementError` past the bound."""
        control, value = parse_configuration_payload(self.control, self.payload)
        changed = configurations.apply(control, value, self.configuration)
        return EventConfigurationChanged(
            issuer_event_id=self.issuer_event_id,
            event_ids=tuple(changed),
            configuration=self.configuration,
        )


def waiting_records(waiting: list[WaitingConfiguration]) -> list[list[Any]]:
    """The waiting commands as a stored record."""
    return [
        [w.issuer_event_id, w.when, w.configuration, w.control, w.payload.hex()] for w in waiting
    ]


def waiting_from_records(value: Any) -> list[WaitingConfiguration]:
    """The waiting commands of :func:`waiting_records`, checked (:class:`Mismatch`)."""
    check(value, _WAITING_SHAPE)
    waiting = []
    for issuer, when, configuration, control, payload in value:
        try:
            octets = bytes.fromhex(payload)
            parse_configuration_payload(control, octets)
        except (ValueError, InvalidFrame):
            raise Mismatch("a waiting event configuration does not read") from None
        waiting.append(WaitingConfiguration(
            issuer_event_id=issuer, when=when, configuration=configuration,
            control=control, payload=octets,
        ))  # fmt: skip
    waiting.sort(key=lambda w: (w.when, w.issuer_event_id))
    return waiting[:MAX_WAITING_CONFIGURATIONS]


@dataclass(frozen=True, kw_only=True)
class EventConfigurationChanged:
    """Set Event Configuration (D.10.2.4.5) changed these event ids to ``configuration``."""

    issuer_event_id: int
    event_ids: tuple[int, ...]
    configuration: int


class DeviceManagementServerProtocol:
    """The ESI's Device Management server at the ZCL frame; :attr:`published` is its state."""

    def __init__(self, published: Published | None = None) -> None:
        self.published = Published() if published is None else published

    def next_deadline(self) -> int | None:
        return None

    def handle_timeout(self, now: int) -> Step:
        return Step()

    def publish(self, item: Item, to: Destination | None = None) -> Step:
        """Record ``item`` (:class:`~zse.devmgmt.core.StaleIssue` for an older issue) and,
        with ``to``, send it there."""
        self.published.publish(item)
        return Step(sends=() if to is None else (self.send(item, to),))

    @staticmethod
    def send(item: Item, to: Destination) -> Send:
        command_id, payload = payload_of(item)
        return Send(
            cluster_id=DEVICE_MANAGEMENT_CLUSTER, command_id=command_id, payload=payload, to=to
        )

    def held(self) -> list[Item]:
        """What a device joining is told: tenancy, supplier, site id, CIN (those held)."""
        p = self.published
        return [i for i in (p.tenancy, p.supplier, p.site_id, p.cin) if i is not None]

    @staticmethod
    def set_event_configuration(
        to: Destination,
        *,
        issuer_event_id: int,
        configuration: int,
        control: ConfigurationControl,
        value: int | list[int],
        start_time: int = 0,
    ) -> Send:
        """Set Event Configuration (D.10.2.4.5) for a device."""
        payload = encode_command(
            _C.set_event_configuration.schema(
                issuer_event_id=issuer_event_id,
                start_date_time=start_time,
                event_configuration=configuration,
                configuration_control=control,
                event_configuration_payload=configuration_payload(control, value),
            )
        )
        return Send(
            cluster_id=DEVICE_MANAGEMENT_CLUSTER,
            command_id=ToClient.SET_EVENT_CONFIGURATION,
            payload=payload,
            to=to,
        )

    @staticmethod
    def get_event_configuration(to: Destination, event_id: int = ALL_EVENTS) -> Send:
        """Get Event Configuration (D.10.2.4.6): the device answers with Report Event
        Configuration."""
        return Send(
            cluster_id=DEVICE_MANAGEMENT_CLUSTER,
            command_id=ToClient.GET_EVENT_CONFIGURATION,
            payload=encode_command(_C.get_event_configuration.schema(event_id=event_id)),
            to=to,
            answers=frozenset({ToServer.REPORT_EVENT_CONFIGURATION}),
        )

    def screen(self, msg: ZclMessage) -> Step | None:
        """A frame a server sent: left alone (no answer)."""
        return Step() if msg.from_server else None

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Answer a Get command or Request New Password; tell Report Event Configuration."""
        screened = self.screen(msg)
        if screened is not None:
            return screened
        if msg.command_id == ToServer.REQUEST_NEW_PASSWORD:
            return self._password(msg, command)
        if msg.command_id == ToServer.REPORT_EVENT_CONFIGURATION:
            event = EventConfigurationReported(
                source_nwk=msg.src_nwk,
                source_ieee=msg.src_ieee,
                command_index=int(command.command_index),
                total_commands=int(command.total_commands),
                configurations=tuple(
                    (int(r.event_id), int(r.configuration)) for r in command.event_configurations
                ),
            )
            return Step(events=(event,), status=foundation.Status.SUCCESS)
        return self._answer(msg)

    def _answer(self, msg: ZclMessage) -> Step:
        p = self.published
        held: dict[int, Item | None] = {
            ToServer.GET_CHANGE_OF_TENANCY: p.tenancy,
            ToServer.GET_CHANGE_OF_SUPPLIER: p.supplier,
            ToServer.GET_SITE_ID: p.site_id,
            ToServer.GET_CIN: p.cin,
        }
        if msg.command_id in held:
            item = held[msg.command_id]
            if item is None:
                return Step(status=foundation.Status.NOT_FOUND)
            command_id, payload = payload_of(item)
            return Step(
                sends=(
                    Send(
                        cluster_id=DEVICE_MANAGEMENT_CLUSTER,
                        command_id=command_id,
                        payload=payload,
                        reply_to=msg,
                    ),
                )
            )
        return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)

    def _password(self, msg: ZclMessage, command: Any) -> Step:
        p = self.published
        kind = int(command.password_type)
        if kind not in tuple(PasswordType):
            return Step(status=foundation.Status.INVALID_FIELD)
        password = p.passwords.get(kind)
        asked = PasswordRequested(
            source_nwk=msg.src_nwk,
            source_ieee=msg.src_ieee,
            password_type=kind,
            answered=password is not None,
        )
        if password is None:
            return Step(events=(asked,), status=foundation.Status.NOT_FOUND)
        reply = Send(
            cluster_id=DEVICE_MANAGEMENT_CLUSTER,
            command_id=ToClient.REQUEST_NEW_PASSWORD_RESPONSE,
            payload=_password_payload(password),
            reply_to=msg,
        )
        return Step(sends=(reply,), events=(asked,))


def _request(command_id: int, payload: bytes, server: Destination, answer: int) -> Send:
    return Send(
        cluster_id=DEVICE_MANAGEMENT_CLUSTER,
        command_id=command_id,
        payload=payload,
        to=server,
        answers=frozenset({answer}),
    )


class DeviceManagementClientProtocol:
    """A HAN device's Device Management client at the ZCL frame: :attr:`kept` is what it was
    told, :attr:`configurations` its event configuration."""

    def __init__(self, configurations: EventConfigurations | None = None) -> None:
        self.kept = Kept()
        self.configurations = EventConfigurations() if configurations is None else configurations
        #: Set Event Configuration commands waiting for their time, by time then issue.
        self.waiting: list[WaitingConfiguration] = []
        #: :attr:`waiting` changed since the shell last stored it.
        self.waiting_changed = False

    def next_deadline(self) -> int | None:
        times = [self.kept.next_deadline(), self.waiting[0].when if self.waiting else None]
        return min((t for t in times if t is not None), default=None)

    def handle_timeout(self, now: int) -> Step:
        """The changes of tenancy / supplier taking effect, then the event configurations
        due, each applied once."""
        events: list[Any] = list(self.kept.handle_timeout(now))
        due, self.waiting = take_due(self.waiting, now)
        if due:
            self.waiting_changed = True
        for waiting in due:
            try:
                events.append(waiting.apply(self.configurations))
            except DeviceManagementError as exc:  # the table filled up meanwhile
                LOGGER.warning(
                    "Set Event Configuration %d not applied at its time: %s",
                    waiting.issuer_event_id,
                    exc,
                )
        return Step(events=tuple(events))

    # -- requests -----------------------------------------------------------------------------

    @staticmethod
    def get_change_of_tenancy(server: Destination) -> Send:
        return _request(
            ToServer.GET_CHANGE_OF_TENANCY, b"", server, ToClient.PUBLISH_CHANGE_OF_TENANCY
        )

    @staticmethod
    def get_change_of_supplier(server: Destination) -> Send:
        return _request(
            ToServer.GET_CHANGE_OF_SUPPLIER, b"", server, ToClient.PUBLISH_CHANGE_OF_SUPPLIER
        )

    @staticmethod
    def get_site_id(server: Destination) -> Send:
        return _request(ToServer.GET_SITE_ID, b"", server, ToClient.UPDATE_SITE_ID)

    @staticmethod
    def get_cin(server: Destination) -> Send:
        return _request(ToServer.GET_CIN, b"", server, ToClient.UPDATE_CIN)

    @staticmethod
    def request_new_password(server: Destination, password_type: int) -> Send:
        return _request(
            ToServer.REQUEST_NEW_PASSWORD,
            encode_command(_S.request_new_password.schema(password_type=password_type)),
            server,
            ToClient.REQUEST_NEW_PASSWORD_RESPONSE,
        )

    # -- received -----------------------------------------------------------------------------

    def screen(self, msg: ZclMessage) -> Step | None:
        """A frame a client sent: left alone."""
        return None if msg.from_server else Step()

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        screened = self.screen(msg)
        if screened is not None:
            return screened
        try:
            return self._receive(msg, command, now)
        except (InvalidFrame, DeviceManagementError, ValueError):
            return Step(status=foundation.Status.INVALID_FIELD)

    def _receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        cid = msg.command_id
        event: Any
        if cid == ToClient.REQUEST_NEW_PASSWORD_RESPONSE:
            password = Password(
                password_type=int(command.password_type),
                issuer_event_id=int(command.issuer_event_id),
                value=bytes(command.password),
                implementation_time=int(command.implementation_date_time),
                duration_in_minutes=int(command.duration_in_minutes),
            )
            return Step(events=(PasswordReceived(password=password),))
        if cid == ToClient.SET_EVENT_CONFIGURATION:
            return self._set_configuration(command, now)
        if cid == ToClient.GET_EVENT_CONFIGURATION:
            return self._report_configuration(msg, int(command.event_id))
        item = _item(cid, command)
        if item is None:
            return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)
        if not self.kept.take(item):  # a repeat, or an older issue: nothing new
            return Step(events=tuple(self.kept.handle_timeout(now)))
        if isinstance(item, ChangeOfTenancy):
            event = TenancyChanged(change=item, control=item.controls)
        elif isinstance(item, ChangeOfSupplier):
            event = SupplierChanged(change=item)
        elif isinstance(item, SiteId):
            event = SiteIdUpdated(site=item)
        else:
            event = CinUpdated(customer=item)
        due: list[TenancyTakesEffect | SupplierTakesEffect] = self.kept.handle_timeout(now)
        return Step(events=(event, *due))

    def _set_configuration(self, command: Any, now: int) -> Step:
        """Set Event Configuration: applied now, or kept for its Start Date/Time (see the
        module)."""
        change = WaitingConfiguration(
            issuer_event_id=int(command.issuer_event_id),
            when=int(command.start_date_time),
            configuration=int(command.event_configuration),
            control=int(command.configuration_control),
            payload=bytes(command.event_configuration_payload),
        )
        try:
            parse_configuration_payload(change.control, change.payload)
        except InvalidFrame:
            return Step(status=foundation.Status.MALFORMED_COMMAND)
        try:
            waiting, now_applied = schedule(
                self.waiting, change, now, bound=MAX_WAITING_CONFIGURATIONS, setting=False
            )
        except ScheduleFull:
            return Step(status=foundation.Status.INSUFFICIENT_SPACE)
        if not now_applied:
            self.waiting_changed |= waiting != self.waiting
            self.waiting = waiting
            return Step(status=foundation.Status.SUCCESS)
        try:
            event = change.apply(self.configurations)
        except DeviceManagementError:
            return Step(status=foundation.Status.INSUFFICIENT_SPACE)
        self.waiting_changed |= waiting != self.waiting
        self.waiting = waiting
        return Step(events=(event,), status=foundation.Status.SUCCESS)

    def _report_configuration(self, msg: ZclMessage, event_id: int) -> Step:
        records = self.configurations.records(None if event_id == ALL_EVENTS else event_id)
        if not records:
            return Step(status=foundation.Status.NOT_FOUND)
        size = _RECORDS_PER_REPORT  # 3 octets each (EVENT_CONFIGURATION_RECORD): one frame
        chunks = [records[i : i + size] for i in range(0, len(records), size)]
        sends = tuple(
            Send(
                cluster_id=DEVICE_MANAGEMENT_CLUSTER,
                command_id=ToServer.REPORT_EVENT_CONFIGURATION,
                payload=encode_command(
                    _S.report_event_configuration.schema(
                        command_index=index,
                        total_commands=len(chunks),
                        event_configurations=[
                            EventConfigurationRecord(event_id=e, configuration=c) for e, c in chunk
                        ],
                    )
                ),
                reply_to=msg,
            )
            for index, chunk in enumerate(chunks)
        )
        return Step(sends=sends)


def _item(command_id: int, command: Any) -> Item | None:
    """The publication a server command carries, None for another command."""
    if command_id == ToClient.PUBLISH_CHANGE_OF_TENANCY:
        return ChangeOfTenancy(
            provider_id=int(command.provider_id),
            issuer_event_id=int(command.issuer_event_id),
            tariff_type=int(command.tariff_type),
            implementation_time=int(command.implementation_date_time),
            control=int(command.proposed_tenancy_change_control),
        )
    if command_id == ToClient.PUBLISH_CHANGE_OF_SUPPLIER:
        return ChangeOfSupplier(
            current_provider_id=int(command.current_provider_id),
            issuer_event_id=int(command.issuer_event_id),
            tariff_type=int(command.tariff_type),
            proposed_provider_id=int(command.proposed_provider_id),
            implementation_time=int(command.provider_change_implementation_time),
            control=int(command.provider_change_control),
            provider_name=str(command.proposed_provider_name),
            contact_details=str(command.proposed_provider_contact_details),
        )
    if command_id == ToClient.UPDATE_SITE_ID:
        return SiteId(
            issuer_event_id=int(command.issuer_event_id),
            provider_id=int(command.provider_id),
            site_id=str(command.site_id),
            time=int(command.site_id_time),
        )
    if command_id == ToClient.UPDATE_CIN:
        return CustomerId(
            issuer_event_id=int(command.issuer_event_id),
            provider_id=int(command.provider_id),
            cin=str(command.customer_id_number),
            time=int(command.cin_implementation_time),
        )
    return None
