# ruff: noqa: F405
"""The Smart Energy vocabulary: every id, enumeration, bitmap and sentinel zse uses, once.

The floor of the package: it imports only :mod:`zigpy.types`, so the sans-IO cores, the wire
definitions and the shells all name SE values from here (SE 07-5356, ZCL 07-5123).
"""

from zse.se.ids import *  # noqa: F403
from zse.se.types import *  # noqa: F403

__all__ = [
    "ALL_DEVICE_CLASSES",
    "AVERAGE_LOAD_ADJUSTMENT_NOT_USED",
    "BASIC",
    "DRLC",
    "DUTY_CYCLE_NOT_USED",
    "ESI_DEVICE_ID",
    "IN_HOME_DISPLAY",
    "KEY_ESTABLISHMENT",
    "KE_SUITE_ATTRIBUTE",
    "LOAD_CONTROL_DEVICE",
    "MESSAGING",
    "METERING",
    "PRICE",
    "PROGRAMMABLE_THERMOSTAT",
    "SET_POINT_NOT_USED",
    "SE_PROFILE_ID",
    "SIGNATURE_SIZE",
    "TEMPERATURE_OFFSET_NOT_USED",
    "TIME",
    "AlternateCostUnit",
    "CancelControl",
    "CharacterString",
    "CriticalityLevel",
    "DeviceClass",
    "DrlcAttribute",
    "DrlcClientCommand",
    "DrlcServerCommand",
    "EventControl",
    "EventStatus",
    "ExtendedMessageControl",
    "GetCurrentPriceOptions",
    "KeyEstablishmentClientCommand",
    "KeyEstablishmentServerCommand",
    "KeyEstablishmentSuite",
    "MessageConfirmationControl",
    "MessageControl",
    "MessageImportance",
    "MessageTransmission",
    "MessagingClientCommand",
    "MessagingServerCommand",
    "PriceAcknowledgementControl",
    "PriceClientCommand",
    "PriceControl",
    "PriceServerCommand",
    "SignatureType",
    "TerminateStatus",
    "TimeAttribute",
]
