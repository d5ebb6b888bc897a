"""Device Management cluster, 0x0708 (SE 1.2 D.10), declared once on zigpy's ZCL.

The server (the ESI, or a meter) tells HAN devices of a change of tenancy or of supplier at an
implementation time, of the site id and the customer id number (CIN), hands out a new
password on request, and sets which events a device logs and pushes (Set / Get / Report Event
Configuration). The SE 1.2/1.4 text (07-5356-19/-21) was out of reach: ids, field order and
sizes follow Wireshark 4.0's ``packet-zbee-zcl-se.c`` Device Management dissector
(``zbee_zcl_se.device_management.*``), read field by field, and Silicon Labs' and Exegin's
public SE headers for the attribute ids; the tests dissect every command with tshark.

Two places where tshark 4.0 reads a field big-endian that every other source (and ZCL's
little-endian rule, ZCL 2.6.1) has little-endian: Request New Password Response's Duration
and Publish Change of Tenancy's Proposed Tenancy Change Control. zse encodes them
little-endian; the tshark tests check the raw octets of those two.
"""

from __future__ import annotations

from typing import Any, Final, Self

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import BaseAttributeDefs, BaseCommandDefs, ZCLAttributeDef

from zse.devmgmt.core import (
    ConfigurationControl,
    EventConfiguration,
    EventLogging,
    PasswordType,
    TenancyChangeControl,
)
from zse.errors import InvalidFrame
from zse.se.ids import (
    DEVICE_MANAGEMENT_CLUSTER,
    DeviceManagementAttribute,
    DeviceManagementClientCommand,
    DeviceManagementServerCommand,
)
from zse.se.types import CharacterString
from zse.zcl._defs import attribute, cluster_id, command

__all__ = [
    "EVENT_CONFIGURATION_RECORD",
    "ConfigurationControl",
    "DeviceManagement",
    "EventConfiguration",
    "EventConfigurationRecord",
    "EventConfigurationRecords",
    "EventLogging",
    "PasswordOctets",
    "PasswordType",
    "TenancyChangeControl",
    "configuration_payload",
    "parse_configuration_payload",
]

#: Octets of one Report Event Configuration record: Event ID (uint16), configuration (map8).
EVENT_CONFIGURATION_RECORD: Final = 3


class PasswordOctets(t.LVBytes):
    """A password (D.10.2.4.3.1.5), an octet string. A secret: its repr and str name only
    its length, and a bad one is refused without its octets in the message."""

    def __repr__(self) -> str:
        return f"<password, {len(self)} octets>"

    __str__ = __repr__

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        if not data:
            raise ValueError("missing the length octet")
        length = data[0]
        if length == 0xFF or len(data) < 1 + length:
            raise ValueError("the password's length octet does not fit the frame")
        return cls(data[1 : 1 + length]), data[1 + length :]


class EventConfigurationRecord(t.Struct):
    """One event's configuration in Report Event Configuration (D.10.2.3.5.1.3)."""

    event_id: t.uint16_t
    configuration: EventConfiguration


class EventConfigurationRecords(t.List[EventConfigurationRecord]):
    """The records of Report Event Configuration, to the end of the payload."""


def configuration_payload(control: ConfigurationControl, value: int | list[int]) -> bytes:
    """The Event Configuration payload of Set Event Configuration for ``control``: a list of
    event ids, an event group id, a log id or a configuration value."""
    if control is ConfigurationControl.APPLY_BY_LIST:
        ids = [int(i) for i in (value if isinstance(value, list) else [value])]
        if len(ids) > 0xFF:
            raise ValueError(f"{len(ids)} event ids, at most 255 in one command")
        return bytes((len(ids),)) + b"".join(t.uint16_t(i).serialize() for i in ids)
    if isinstance(value, list):
        raise ValueError(f"{control.name} takes one value, not a list")
    if control is ConfigurationControl.APPLY_BY_EVENT_GROUP:
        return t.uint16_t(value).serialize()
    return t.uint8_t(value).serialize()


def parse_configuration_payload(control: int, payload: bytes) -> tuple[ConfigurationControl, Any]:
    """Read Set Event Configuration's payload: (control, event ids / group id / log id /
    configuration value). :class:`~zse.errors.InvalidFrame` for an unknown control or a
    payload that does not hold what it announces."""
    try:
        kind = ConfigurationControl(control)
    except ValueError:
        raise InvalidFrame(f"Set Event Configuration: configuration control {control}") from None
    if kind is ConfigurationControl.APPLY_BY_LIST:
        if not payload or len(payload) < 1 + 2 * payload[0]:
            raise InvalidFrame("Set Event Configuration: the event id list does not fit")
        count = payload[0]
        return kind, [
            int.from_bytes(payload[1 + 2 * i : 3 + 2 * i], "little") for i in range(count)
        ]
    size = 2 if kind is ConfigurationControl.APPLY_BY_EVENT_GROUP else 1
    if len(payload) < size:
        raise InvalidFrame(f"Set Event Configuration: {kind.name} needs {size} octets")
    return kind, int.from_bytes(payload[:size], "little")


_TENANCY = {
    "provider_id": t.uint32_t,
    "issuer_event_id": t.uint32_t,
    "tariff_type": t.uint8_t,
    "implementation_date_time": t.UTCTime,
    "proposed_tenancy_change_control": TenancyChangeControl,
}
_SUPPLIER = {
    "current_provider_id": t.uint32_t,
    "issuer_event_id": t.uint32_t,
    "tariff_type": t.uint8_t,
    "proposed_provider_id": t.uint32_t,
    "provider_change_implementation_time": t.UTCTime,
    "provider_change_control": t.bitmap32,
    "proposed_provider_name": CharacterString,
    "proposed_provider_contact_details": CharacterString,
}
_PASSWORD = {
    "issuer_event_id": t.uint32_t,
    "implementation_date_time": t.UTCTime,
    "duration_in_minutes": t.uint16_t,
    "password_type": t.uint8_t,
    "password": PasswordOctets,
}
_SITE_ID = {
    "issuer_event_id": t.uint32_t,
    "site_id_time": t.UTCTime,
    "provider_id": t.uint32_t,
    "site_id": CharacterString,
}
_CIN = {
    "issuer_event_id": t.uint32_t,
    "cin_implementation_time": t.UTCTime,
    "provider_id": t.uint32_t,
    "customer_id_number": CharacterString,
}
_SET_EVENT_CONFIGURATION = {
    "issuer_event_id": t.uint32_t,
    "start_date_time": t.UTCTime,
    "event_configuration": EventConfiguration,
    "configuration_control": t.uint8_t,
    # parse_configuration_payload reads it by the control
    "event_configuration_payload": t.Bytes,
}

_A = DeviceManagementAttribute


def _attributes() -> dict[str, ZCLAttributeDef]:
    types: dict[int, type] = {
        _A.PROVIDER_ID: t.uint32_t,
        _A.PROVIDER_NAME: t.LVBytes,
        _A.PROVIDER_CONTACT_DETAILS: t.LVBytes,
        _A.PROPOSED_PROVIDER_ID: t.uint32_t,
        _A.PROPOSED_PROVIDER_NAME: t.LVBytes,
        _A.PROPOSED_PROVIDER_CHANGE_DATE_TIME: t.UTCTime,
        _A.PROPOSED_PROVIDER_CHANGE_CONTROL: t.bitmap32,
        _A.PROPOSED_PROVIDER_CONTACT_DETAILS: t.LVBytes,
        _A.RECEIVED_PROVIDER_ID: t.uint32_t,
        _A.RECEIVED_PROVIDER_NAME: t.LVBytes,
        _A.RECEIVED_PROVIDER_CONTACT_DETAILS: t.LVBytes,
        _A.RECEIVED_PROPOSED_PROVIDER_ID: t.uint32_t,
        _A.RECEIVED_PROPOSED_PROVIDER_NAME: t.LVBytes,
        _A.RECEIVED_PROPOSED_PROVIDER_CHANGE_DATE_TIME: t.UTCTime,
        _A.RECEIVED_PROPOSED_PROVIDER_CHANGE_CONTROL: t.bitmap32,
        _A.RECEIVED_PROPOSED_PROVIDER_CONTACT_DETAILS: t.LVBytes,
        _A.CHANGE_OF_TENANCY_UPDATE_DATE_TIME: t.UTCTime,
        _A.PROPOSED_TENANCY_CHANGE_CONTROL: t.bitmap32,
        _A.WAN_STATUS: t.enum8,
        _A.LOW_MEDIUM_THRESHOLD: t.uint32_t,
        _A.MEDIUM_HIGH_THRESHOLD: t.uint32_t,
    }
    return {a.name.lower(): attribute(a, types[a], "r") for a in DeviceManagementAttribute}


class DeviceManagement(Cluster):
    """Device Management (SE 1.2 D.10); attach explicitly, it is not in zigpy's registry."""

    cluster_id = cluster_id(DEVICE_MANAGEMENT_CLUSTER)
    name = "Device Management"
    ep_attribute = "smartenergy_device_management"
    _skip_registry = True

    #: The server attributes (D.10.2.2) a display reads.
    AttributeDefs = type("AttributeDefs", (BaseAttributeDefs,), _attributes())  # type: ignore[assignment]

    class ServerCommandDefs(BaseCommandDefs):
        """Commands the server receives (D.10.2.3)."""

        get_change_of_tenancy: Final = command(
            DeviceManagementServerCommand.GET_CHANGE_OF_TENANCY, {}
        )
        get_change_of_supplier: Final = command(
            DeviceManagementServerCommand.GET_CHANGE_OF_SUPPLIER, {}
        )
        request_new_password: Final = command(
            DeviceManagementServerCommand.REQUEST_NEW_PASSWORD, {"password_type": t.uint8_t}
        )
        get_site_id: Final = command(DeviceManagementServerCommand.GET_SITE_ID, {})
        report_event_configuration: Final = command(
            DeviceManagementServerCommand.REPORT_EVENT_CONFIGURATION,
            {
                "command_index": t.uint8_t,
                "total_commands": t.uint8_t,
                "event_configurations": EventConfigurationRecords,
            },
        )
        get_cin: Final = command(DeviceManagementServerCommand.GET_CIN, {})

    class ClientCommandDefs(BaseCommandDefs):
        """Commands the server sends (D.10.2.4)."""

        publish_change_of_tenancy: Final = command(
            DeviceManagementClientCommand.PUBLISH_CHANGE_OF_TENANCY, _TENANCY
        )
        publish_change_of_supplier: Final = command(
            DeviceManagementClientCommand.PUBLISH_CHANGE_OF_SUPPLIER, _SUPPLIER
        )
        request_new_password_response: Final = command(
            DeviceManagementClientCommand.REQUEST_NEW_PASSWORD_RESPONSE, _PASSWORD
        )
        update_site_id: Final = command(DeviceManagementClientCommand.UPDATE_SITE_ID, _SITE_ID)
        set_event_configuration: Final = command(
            DeviceManagementClientCommand.SET_EVENT_CONFIGURATION, _SET_EVENT_CONFIGURATION
        )
        get_event_configuration: Final = command(
            DeviceManagementClientCommand.GET_EVENT_CONFIGURATION, {"event_id": t.uint16_t}
        )
        update_cin: Final = command(DeviceManagementClientCommand.UPDATE_CIN, _CIN)
