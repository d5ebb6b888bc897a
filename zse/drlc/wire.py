"""Demand Response and Load Control cluster, 0x0701 (SE D.2).

The ESI (server) sends load control events and cancellations; a HAN device (client) reports
event status and asks for scheduled events. The client's attributes configure how it is
targeted and how it randomizes. The "not used" sentinels are in :mod:`zse.se.types`.
"""

from __future__ import annotations

from typing import Final

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import BaseAttributeDefs, BaseCommandDefs

from zse.se.ids import DRLC, DrlcAttribute, DrlcClientCommand, DrlcServerCommand
from zse.se.types import (
    SIGNATURE_SIZE,
    CancelControl,
    CriticalityLevel,
    DeviceClass,
    EventControl,
    SignatureType,
)
from zse.zcl._defs import attribute, cluster_id, command

__all__ = ["Drlc", "Signature"]


class Signature(t.FixedList, item_type=t.uint8_t, length=SIGNATURE_SIZE):  # type: ignore[type-arg]
    """The 42-byte signature of Report Event Status (D.2.3.3.1.1.11).

    Read and written as one block of bytes rather than 42 ``uint8_t`` items (the per-item
    path was a third of a report's cost at scale, ``benchmarks/drlc_scale.py``); the items
    are plain ints 0..255. Errors are zigpy's: ``ValueError`` for a wrong length or value.
    """

    def serialize(self) -> bytes:
        """The 42 bytes."""
        if len(self) != SIGNATURE_SIZE:
            raise ValueError(f"a signature is {SIGNATURE_SIZE} bytes, got {len(self)}")
        return bytes(self)

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Signature, bytes]:
        """The signature at the start of ``data`` and what follows it."""
        if len(data) < SIGNATURE_SIZE:
            raise ValueError(f"a signature is {SIGNATURE_SIZE} bytes, {len(data)} remain")
        return cls(data[:SIGNATURE_SIZE]), data[SIGNATURE_SIZE:]


class Drlc(Cluster):
    """Demand Response and Load Control (SE D.2); attach explicitly, it is not registered."""

    cluster_id = cluster_id(DRLC)
    name = "Demand Response and Load Control"
    ep_attribute = "smartenergy_drlc"
    _skip_registry = True

    class AttributeDefs(BaseAttributeDefs):
        """Client-side attributes (D.2.3.2): how a HAN device is targeted and randomizes."""

        utility_enrollment_group: Final = attribute(
            DrlcAttribute.UTILITY_ENROLLMENT_GROUP, t.uint8_t, "rw"
        )
        start_randomization_minutes: Final = attribute(
            DrlcAttribute.START_RANDOMIZATION_MINUTES, t.uint8_t, "rw"
        )
        duration_randomization_minutes: Final = attribute(
            DrlcAttribute.DURATION_RANDOMIZATION_MINUTES, t.uint8_t, "rw"
        )
        device_class_value: Final = attribute(DrlcAttribute.DEVICE_CLASS_VALUE, DeviceClass, "rw")

    class ServerCommandDefs(BaseCommandDefs):
        """Commands the ESI receives (D.2.3.3)."""

        report_event_status: Final = command(
            DrlcServerCommand.REPORT_EVENT_STATUS,
            {
                "issuer_event_id": t.uint32_t,
                "event_status": t.uint8_t,  # an EventStatus (zse.se.types), strict in the core
                "event_status_time": t.UTCTime,
                "criticality_level_applied": CriticalityLevel,
                "cooling_temperature_set_point_applied": t.int16s,
                "heating_temperature_set_point_applied": t.int16s,
                "average_load_adjustment_percentage_applied": t.int8s,
                "duty_cycle_applied": t.uint8_t,
                "event_control": EventControl,
                "signature_type": SignatureType,
                "signature": Signature,
            },
        )
        get_scheduled_events: Final = command(
            DrlcServerCommand.GET_SCHEDULED_EVENTS,
            {
                "start_time": t.UTCTime,
                "number_of_events": t.uint8_t,
                "issuer_event_id?": t.uint32_t,  # SE 1.2b
            },
        )

    class ClientCommandDefs(BaseCommandDefs):
        """Commands the ESI sends (D.2.2.3)."""

        load_control_event: Final = command(
            DrlcClientCommand.LOAD_CONTROL_EVENT,
            {
                "issuer_event_id": t.uint32_t,
                "device_class": DeviceClass,
                "utility_enrollment_group": t.uint8_t,
                "start_time": t.UTCTime,
                "duration_in_minutes": t.uint16_t,
                "criticality_level": CriticalityLevel,
                "cooling_temperature_offset": t.uint8_t,
                "heating_temperature_offset": t.uint8_t,
                "cooling_temperature_set_point": t.int16s,
                "heating_temperature_set_point": t.int16s,
                "average_load_adjustment_percentage": t.int8s,
                "duty_cycle": t.uint8_t,
                "event_control": EventControl,
            },
        )
        cancel_load_control_event: Final = command(
            DrlcClientCommand.CANCEL_LOAD_CONTROL_EVENT,
            {
                "issuer_event_id": t.uint32_t,
                "device_class": DeviceClass,
                "utility_enrollment_group": t.uint8_t,
                "cancel_control": CancelControl,
                "effective_time": t.UTCTime,
            },
        )
        cancel_all_load_control_events: Final = command(
            DrlcClientCommand.CANCEL_ALL_LOAD_CONTROL_EVENTS, {"cancel_control": CancelControl}
        )
