"""Metering cluster, 0x0702 (SE D.3): what a meter and an in-home display use.

The attribute sets a display reads (Reading Information, TOU tier summations, Meter Status,
Formatting, Historical Consumption, Load Profile Configuration) and the commands both ways:
Get Profile / Get Profile Response, Request Fast Poll Mode / Response, and mirroring
(Request Mirror / Response, Remove Mirror / Mirror Removed), and SE 1.2 supply control
(:mod:`zse.metering.supply`: Change Supply, Local Change Supply, Set Supply Status, Set
Uncontrolled Flow Threshold, Reset Load Limit Counter, Supply Status Response, and the supply
attributes). zigpy's definitions
(``zigpy.zcl.clusters.smartenergy.Metering``) are used where they are right, each checked
against the SE id in :mod:`zse.se.ids` when this module is imported; where zse differs
(docs/metering.md): Get Profile carries its interval channel as an enum, Get Profile Response
its status and interval period as enums and its intervals counted by NumberOfPeriodsDelivered
(zigpy's plain list would take trailing bytes as intervals), and the SE 1.2 day / week / month
consumption zigpy lacks are added. Formatting values into numbers and text:
:mod:`zse.metering.formatting`.
"""

from __future__ import annotations

from typing import Any, Final, cast

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.clusters.smartenergy import Metering as ZigpyMetering
from zigpy.zcl.clusters.smartenergy import ProfileIntervalPeriod, SupplyStatus
from zigpy.zcl.foundation import (
    BaseAttributeDefs,
    BaseCommandDefs,
    CommandSchema,
    ZCLAttributeDef,
    ZCLCommandDef,
)

from zse.metering.snapshot_types import (
    MeterSnapshotCause,
    Samples,
    SampleType,
    ScheduleAnswers,
    SnapshotConfirmation,
    SnapshotPayloadType,
    SnapshotSchedules,
    SnapshotSubPayload,
)
from zse.se.ids import (
    MAX_TIER,
    METERING,
    MeteringClientCommand,
    MeteringServerCommand,
    tier_summation_attribute,
)
from zse.se.ids import MeteringAttribute as A
from zse.se.types import GetProfileStatus, IntervalChannel
from zse.zcl._defs import attribute, cluster_id, command

__all__ = [
    "CommandIds",
    "ConfigureNotificationFlag",
    "GetProfileResponse",
    "Intervals",
    "Metering",
    "NotificationFlags",
]


def _zigpy(attr: A) -> ZCLAttributeDef:
    """zigpy's definition of ``attr``, refused unless it carries the SE id."""
    definition: ZCLAttributeDef = getattr(ZigpyMetering.AttributeDefs, attr.name.lower())
    if int(definition.id) != attr:
        raise ImportError(f"zigpy's Metering {attr.name.lower()} is 0x{definition.id:04X}")
    return definition


def _uint24(attr: A) -> ZCLAttributeDef:
    return attribute(attr, t.uint24_t, "r")


def _uint32(attr: A) -> ZCLAttributeDef:
    return attribute(attr, t.uint32_t, "r")


class Intervals(t.List[t.uint24_t]):
    """Get Profile Response intervals (D.3.2.3.1.1.5): uint24 each, most recent first;
    0xFFFFFF marks an interval not captured. As many as NumberOfPeriodsDelivered."""


def _periods(response: Any) -> int:
    return int(response.number_of_periods_delivered)


class GetProfileResponse(CommandSchema):
    """Get Profile Response (D.3.2.3.1.1)."""

    end_time: t.UTCTime
    status: GetProfileStatus
    profile_interval_period: ProfileIntervalPeriod
    number_of_periods_delivered: t.uint8_t
    intervals: Intervals = t.StructField(length=_periods)  # type: ignore[assignment]


class NotificationFlags(t.List[t.uint32_t]):
    """Mirror Report Attribute Response flags (SE 1.2): one uint32 per NotificationFlags
    attribute the scheme carries, to the end of the payload (Wireshark's
    ``packet-zbee-zcl-se.c``; Silicon Labs' meter-mirror plugin sends one for scheme A, five
    for scheme B)."""


class CommandIds(t.List[t.uint8_t]):
    """Configure Notification Flag command ids, as many as its number of commands."""


def _commands(flag: Any) -> int:
    return int(flag.number_of_commands)


class ConfigureNotificationFlag(CommandSchema):
    """Configure Notification Flag (SE 1.2; fields as the brief's sources list them: Wireshark
    4.0 does not dissect it)."""

    issuer_event_id: t.uint32_t
    notification_scheme: t.uint8_t
    notification_flag_attribute_id: t.uint16_t
    cluster_id: t.uint16_t
    manufacturer_code: t.uint16_t
    number_of_commands: t.uint8_t
    command_ids: CommandIds = t.StructField(length=_commands)  # type: ignore[assignment]


class _TiersAboveFifteen(BaseAttributeDefs):
    """CurrentTierNSummationDelivered / Received for tiers 16-48 (SE 1.2, D.3.2.2.2), uint48
    as tiers 1-15 are; zigpy has tiers 1-15 only (ids:
    :func:`zse.se.ids.tier_summation_attribute`)."""


for _tier in range(16, MAX_TIER + 1):
    for _received, _name in ((False, "delivered"), (True, "received")):
        setattr(
            _TiersAboveFifteen,
            f"current_tier{_tier}_summ_{_name}",
            attribute(tier_summation_attribute(_tier, received=_received), t.uint48_t, "r"),
        )


class Metering(Cluster):
    """Metering (SE D.3); attach explicitly, it is not in zigpy's registry (zigpy's own is)."""

    cluster_id = cluster_id(METERING)
    name = "Metering"
    ep_attribute = "smartenergy_metering"
    _skip_registry = True

    class AttributeDefs(_TiersAboveFifteen):
        """Server attributes (D.3.2.2), zigpy's where it has them."""

        # Reading Information (D.3.2.2.1)
        current_summ_delivered: Final = _zigpy(A.CURRENT_SUMM_DELIVERED)
        current_summ_received: Final = _zigpy(A.CURRENT_SUMM_RECEIVED)
        current_max_demand_delivered: Final = _zigpy(A.CURRENT_MAX_DEMAND_DELIVERED)
        current_max_demand_received: Final = _zigpy(A.CURRENT_MAX_DEMAND_RECEIVED)
        dft_summ: Final = _zigpy(A.DFT_SUMM)
        daily_freeze_time: Final = _zigpy(A.DAILY_FREEZE_TIME)
        power_factor: Final = _zigpy(A.POWER_FACTOR)
        reading_snapshot_time: Final = _zigpy(A.READING_SNAPSHOT_TIME)
        current_max_demand_delivered_time: Final = _zigpy(A.CURRENT_MAX_DEMAND_DELIVERED_TIME)
        current_max_demand_received_time: Final = _zigpy(A.CURRENT_MAX_DEMAND_RECEIVED_TIME)
        default_update_period: Final = _zigpy(A.DEFAULT_UPDATE_PERIOD)
        fast_poll_update_period: Final = _zigpy(A.FAST_POLL_UPDATE_PERIOD)
        # TOU Information (D.3.2.2.2)
        current_tier1_summ_delivered: Final = _zigpy(A.CURRENT_TIER1_SUMM_DELIVERED)
        current_tier1_summ_received: Final = _zigpy(A.CURRENT_TIER1_SUMM_RECEIVED)
        current_tier2_summ_delivered: Final = _zigpy(A.CURRENT_TIER2_SUMM_DELIVERED)
        current_tier2_summ_received: Final = _zigpy(A.CURRENT_TIER2_SUMM_RECEIVED)
        current_tier3_summ_delivered: Final = _zigpy(A.CURRENT_TIER3_SUMM_DELIVERED)
        current_tier3_summ_received: Final = _zigpy(A.CURRENT_TIER3_SUMM_RECEIVED)
        current_tier4_summ_delivered: Final = _zigpy(A.CURRENT_TIER4_SUMM_DELIVERED)
        current_tier4_summ_received: Final = _zigpy(A.CURRENT_TIER4_SUMM_RECEIVED)
        current_tier5_summ_delivered: Final = _zigpy(A.CURRENT_TIER5_SUMM_DELIVERED)
        current_tier5_summ_received: Final = _zigpy(A.CURRENT_TIER5_SUMM_RECEIVED)
        current_tier6_summ_delivered: Final = _zigpy(A.CURRENT_TIER6_SUMM_DELIVERED)
        current_tier6_summ_received: Final = _zigpy(A.CURRENT_TIER6_SUMM_RECEIVED)
        current_tier7_summ_delivered: Final = _zigpy(A.CURRENT_TIER7_SUMM_DELIVERED)
        current_tier7_summ_received: Final = _zigpy(A.CURRENT_TIER7_SUMM_RECEIVED)
        current_tier8_summ_delivered: Final = _zigpy(A.CURRENT_TIER8_SUMM_DELIVERED)
        current_tier8_summ_received: Final = _zigpy(A.CURRENT_TIER8_SUMM_RECEIVED)
        current_tier9_summ_delivered: Final = _zigpy(A.CURRENT_TIER9_SUMM_DELIVERED)
        current_tier9_summ_received: Final = _zigpy(A.CURRENT_TIER9_SUMM_RECEIVED)
        current_tier10_summ_delivered: Final = _zigpy(A.CURRENT_TIER10_SUMM_DELIVERED)
        current_tier10_summ_received: Final = _zigpy(A.CURRENT_TIER10_SUMM_RECEIVED)
        current_tier11_summ_delivered: Final = _zigpy(A.CURRENT_TIER11_SUMM_DELIVERED)
        current_tier11_summ_received: Final = _zigpy(A.CURRENT_TIER11_SUMM_RECEIVED)
        current_tier12_summ_delivered: Final = _zigpy(A.CURRENT_TIER12_SUMM_DELIVERED)
        current_tier12_summ_received: Final = _zigpy(A.CURRENT_TIER12_SUMM_RECEIVED)
        current_tier13_summ_delivered: Final = _zigpy(A.CURRENT_TIER13_SUMM_DELIVERED)
        current_tier13_summ_received: Final = _zigpy(A.CURRENT_TIER13_SUMM_RECEIVED)
        current_tier14_summ_delivered: Final = _zigpy(A.CURRENT_TIER14_SUMM_DELIVERED)
        current_tier14_summ_received: Final = _zigpy(A.CURRENT_TIER14_SUMM_RECEIVED)
        current_tier15_summ_delivered: Final = _zigpy(A.CURRENT_TIER15_SUMM_DELIVERED)
        current_tier15_summ_received: Final = _zigpy(A.CURRENT_TIER15_SUMM_RECEIVED)
        # Meter Status (D.3.2.2.3)
        status: Final = _zigpy(A.STATUS)
        # Formatting (D.3.2.2.4)
        unit_of_measure: Final = _zigpy(A.UNIT_OF_MEASURE)
        multiplier: Final = _zigpy(A.MULTIPLIER)
        divisor: Final = _zigpy(A.DIVISOR)
        summation_formatting: Final = _zigpy(A.SUMMATION_FORMATTING)
        demand_formatting: Final = _zigpy(A.DEMAND_FORMATTING)
        historical_consumption_formatting: Final = _zigpy(A.HISTORICAL_CONSUMPTION_FORMATTING)
        metering_device_type: Final = _zigpy(A.METERING_DEVICE_TYPE)
        # Historical Consumption (D.3.2.2.5)
        instantaneous_demand: Final = _zigpy(A.INSTANTANEOUS_DEMAND)
        currentday_consumption_delivered: Final = _zigpy(A.CURRENTDAY_CONSUMPTION_DELIVERED)
        currentday_consumption_received: Final = _zigpy(A.CURRENTDAY_CONSUMPTION_RECEIVED)
        previousday_consumption_delivered: Final = _zigpy(A.PREVIOUSDAY_CONSUMPTION_DELIVERED)
        previousday_consumption_received: Final = _zigpy(A.PREVIOUSDAY_CONSUMPTION_RECEIVED)
        cur_part_profile_int_start_time_delivered: Final = _zigpy(
            A.CUR_PART_PROFILE_INT_START_TIME_DELIVERED
        )
        cur_part_profile_int_start_time_received: Final = _zigpy(
            A.CUR_PART_PROFILE_INT_START_TIME_RECEIVED
        )
        cur_part_profile_int_value_delivered: Final = _zigpy(A.CUR_PART_PROFILE_INT_VALUE_DELIVERED)
        cur_part_profile_int_value_received: Final = _zigpy(A.CUR_PART_PROFILE_INT_VALUE_RECEIVED)
        current_day_max_demand: Final = _zigpy(A.CURRENT_DAY_MAX_DEMAND)
        previous_day_max_demand: Final = _zigpy(A.PREVIOUS_DAY_MAX_DEMAND)
        # SE 1.2 day / week / month consumption (D.3.2.2.5), not in zigpy
        previous_day2_consumption_delivered: Final = _uint24(A.PREVIOUS_DAY2_CONSUMPTION_DELIVERED)
        previous_day2_consumption_received: Final = _uint24(A.PREVIOUS_DAY2_CONSUMPTION_RECEIVED)
        previous_day3_consumption_delivered: Final = _uint24(A.PREVIOUS_DAY3_CONSUMPTION_DELIVERED)
        previous_day3_consumption_received: Final = _uint24(A.PREVIOUS_DAY3_CONSUMPTION_RECEIVED)
        previous_day4_consumption_delivered: Final = _uint24(A.PREVIOUS_DAY4_CONSUMPTION_DELIVERED)
        previous_day4_consumption_received: Final = _uint24(A.PREVIOUS_DAY4_CONSUMPTION_RECEIVED)
        previous_day5_consumption_delivered: Final = _uint24(A.PREVIOUS_DAY5_CONSUMPTION_DELIVERED)
        previous_day5_consumption_received: Final = _uint24(A.PREVIOUS_DAY5_CONSUMPTION_RECEIVED)
        previous_day6_consumption_delivered: Final = _uint24(A.PREVIOUS_DAY6_CONSUMPTION_DELIVERED)
        previous_day6_consumption_received: Final = _uint24(A.PREVIOUS_DAY6_CONSUMPTION_RECEIVED)
        previous_day7_consumption_delivered: Final = _uint24(A.PREVIOUS_DAY7_CONSUMPTION_DELIVERED)
        previous_day7_consumption_received: Final = _uint24(A.PREVIOUS_DAY7_CONSUMPTION_RECEIVED)
        previous_day8_consumption_delivered: Final = _uint24(A.PREVIOUS_DAY8_CONSUMPTION_DELIVERED)
        previous_day8_consumption_received: Final = _uint24(A.PREVIOUS_DAY8_CONSUMPTION_RECEIVED)
        current_week_consumption_delivered: Final = _uint24(A.CURRENT_WEEK_CONSUMPTION_DELIVERED)
        current_week_consumption_received: Final = _uint24(A.CURRENT_WEEK_CONSUMPTION_RECEIVED)
        previous_week_consumption_delivered: Final = _uint24(A.PREVIOUS_WEEK_CONSUMPTION_DELIVERED)
        previous_week_consumption_received: Final = _uint24(A.PREVIOUS_WEEK_CONSUMPTION_RECEIVED)
        previous_week2_consumption_delivered: Final = _uint24(
            A.PREVIOUS_WEEK2_CONSUMPTION_DELIVERED
        )
        previous_week2_consumption_received: Final = _uint24(A.PREVIOUS_WEEK2_CONSUMPTION_RECEIVED)
        previous_week3_consumption_delivered: Final = _uint24(
            A.PREVIOUS_WEEK3_CONSUMPTION_DELIVERED
        )
        previous_week3_consumption_received: Final = _uint24(A.PREVIOUS_WEEK3_CONSUMPTION_RECEIVED)
        previous_week4_consumption_delivered: Final = _uint24(
            A.PREVIOUS_WEEK4_CONSUMPTION_DELIVERED
        )
        previous_week4_consumption_received: Final = _uint24(A.PREVIOUS_WEEK4_CONSUMPTION_RECEIVED)
        previous_week5_consumption_delivered: Final = _uint24(
            A.PREVIOUS_WEEK5_CONSUMPTION_DELIVERED
        )
        previous_week5_consumption_received: Final = _uint24(A.PREVIOUS_WEEK5_CONSUMPTION_RECEIVED)
        current_month_consumption_delivered: Final = _uint32(A.CURRENT_MONTH_CONSUMPTION_DELIVERED)
        current_month_consumption_received: Final = _uint32(A.CURRENT_MONTH_CONSUMPTION_RECEIVED)
        previous_month_consumption_delivered: Final = _uint32(
            A.PREVIOUS_MONTH_CONSUMPTION_DELIVERED
        )
        previous_month_consumption_received: Final = _uint32(A.PREVIOUS_MONTH_CONSUMPTION_RECEIVED)
        previous_month2_consumption_delivered: Final = _uint32(
            A.PREVIOUS_MONTH2_CONSUMPTION_DELIVERED
        )
        previous_month2_consumption_received: Final = _uint32(
            A.PREVIOUS_MONTH2_CONSUMPTION_RECEIVED
        )
        previous_month3_consumption_delivered: Final = _uint32(
            A.PREVIOUS_MONTH3_CONSUMPTION_DELIVERED
        )
        previous_month3_consumption_received: Final = _uint32(
            A.PREVIOUS_MONTH3_CONSUMPTION_RECEIVED
        )
        previous_month4_consumption_delivered: Final = _uint32(
            A.PREVIOUS_MONTH4_CONSUMPTION_DELIVERED
        )
        previous_month4_consumption_received: Final = _uint32(
            A.PREVIOUS_MONTH4_CONSUMPTION_RECEIVED
        )
        previous_month5_consumption_delivered: Final = _uint32(
            A.PREVIOUS_MONTH5_CONSUMPTION_DELIVERED
        )
        previous_month5_consumption_received: Final = _uint32(
            A.PREVIOUS_MONTH5_CONSUMPTION_RECEIVED
        )
        previous_month6_consumption_delivered: Final = _uint32(
            A.PREVIOUS_MONTH6_CONSUMPTION_DELIVERED
        )
        previous_month6_consumption_received: Final = _uint32(
            A.PREVIOUS_MONTH6_CONSUMPTION_RECEIVED
        )
        previous_month7_consumption_delivered: Final = _uint32(
            A.PREVIOUS_MONTH7_CONSUMPTION_DELIVERED
        )
        previous_month7_consumption_received: Final = _uint32(
            A.PREVIOUS_MONTH7_CONSUMPTION_RECEIVED
        )
        previous_month8_consumption_delivered: Final = _uint32(
            A.PREVIOUS_MONTH8_CONSUMPTION_DELIVERED
        )
        previous_month8_consumption_received: Final = _uint32(
            A.PREVIOUS_MONTH8_CONSUMPTION_RECEIVED
        )
        previous_month9_consumption_delivered: Final = _uint32(
            A.PREVIOUS_MONTH9_CONSUMPTION_DELIVERED
        )
        previous_month9_consumption_received: Final = _uint32(
            A.PREVIOUS_MONTH9_CONSUMPTION_RECEIVED
        )
        previous_month10_consumption_delivered: Final = _uint32(
            A.PREVIOUS_MONTH10_CONSUMPTION_DELIVERED
        )
        previous_month10_consumption_received: Final = _uint32(
            A.PREVIOUS_MONTH10_CONSUMPTION_RECEIVED
        )
        previous_month11_consumption_delivered: Final = _uint32(
            A.PREVIOUS_MONTH11_CONSUMPTION_DELIVERED
        )
        previous_month11_consumption_received: Final = _uint32(
            A.PREVIOUS_MONTH11_CONSUMPTION_RECEIVED
        )
        previous_month12_consumption_delivered: Final = _uint32(
            A.PREVIOUS_MONTH12_CONSUMPTION_DELIVERED
        )
        previous_month12_consumption_received: Final = _uint32(
            A.PREVIOUS_MONTH12_CONSUMPTION_RECEIVED
        )
        previous_month13_consumption_delivered: Final = _uint32(
            A.PREVIOUS_MONTH13_CONSUMPTION_DELIVERED
        )
        previous_month13_consumption_received: Final = _uint32(
            A.PREVIOUS_MONTH13_CONSUMPTION_RECEIVED
        )
        historical_freeze_time: Final = attribute(A.HISTORICAL_FREEZE_TIME, t.uint16_t, "r")
        # Load Profile Configuration (D.3.2.2.6)
        max_number_of_periods_delivered: Final = _zigpy(A.MAX_NUMBER_OF_PERIODS_DELIVERED)
        # SE 1.2 supply control (zse.metering.supply): Supply Status (D.3.2.2.1), the Supply
        # Limit set (D.3.2.2.7) and the Supply Control set (0x0B00); types as Silicon Labs'
        # metering server writes them and Exegin's attribute list (the SE 1.2 text out of reach)
        supply_status: Final = _zigpy(A.SUPPLY_STATUS)
        load_limit_supply_state: Final = attribute(A.LOAD_LIMIT_SUPPLY_STATE, SupplyStatus, "r")
        load_limit_counter: Final = attribute(A.LOAD_LIMIT_COUNTER, t.uint8_t, "r")
        supply_tamper_state: Final = attribute(A.SUPPLY_TAMPER_STATE, SupplyStatus, "r")
        supply_depletion_state: Final = attribute(A.SUPPLY_DEPLETION_STATE, SupplyStatus, "r")
        supply_uncontrolled_flow_state: Final = attribute(
            A.SUPPLY_UNCONTROLLED_FLOW_STATE, SupplyStatus, "r"
        )
        proposed_change_supply_implementation_time: Final = attribute(
            A.PROPOSED_CHANGE_SUPPLY_IMPLEMENTATION_TIME, t.UTCTime, "r"
        )
        proposed_change_supply_status: Final = attribute(
            A.PROPOSED_CHANGE_SUPPLY_STATUS, SupplyStatus, "r"
        )
        uncontrolled_flow_threshold: Final = attribute(
            A.UNCONTROLLED_FLOW_THRESHOLD, t.uint16_t, "r"
        )
        uncontrolled_flow_threshold_unit_of_measure: Final = attribute(
            A.UNCONTROLLED_FLOW_THRESHOLD_UNIT_OF_MEASURE, t.enum8, "r"
        )
        uncontrolled_flow_multiplier: Final = attribute(
            A.UNCONTROLLED_FLOW_MULTIPLIER, t.uint16_t, "r"
        )
        uncontrolled_flow_divisor: Final = attribute(A.UNCONTROLLED_FLOW_DIVISOR, t.uint16_t, "r")
        flow_stabilisation_period: Final = attribute(A.FLOW_STABILISATION_PERIOD, t.uint8_t, "r")
        flow_measurement_period: Final = attribute(A.FLOW_MEASUREMENT_PERIOD, t.uint16_t, "r")

    class ServerCommandDefs(BaseCommandDefs):
        """Commands the meter receives, generated by the client (D.3.3.3.1)."""

        get_profile: Final = command(
            MeteringServerCommand.GET_PROFILE,
            {
                "interval_channel": IntervalChannel,
                "end_time": t.UTCTime,
                "number_of_periods": t.uint8_t,
            },
        )
        request_mirror_response: Final = command(
            MeteringServerCommand.REQUEST_MIRROR_RESPONSE, {"endpoint_id": t.uint16_t}
        )
        mirror_removed: Final = command(
            MeteringServerCommand.MIRROR_REMOVED, {"removed_endpoint_id": t.uint16_t}
        )
        request_fast_poll_mode: Final = command(
            MeteringServerCommand.REQUEST_FAST_POLL_MODE,
            {"fast_poll_update_period": t.uint8_t, "duration": t.uint8_t},
        )
        # SE 1.2 mirror notifications: the mirror's answer to a report (zse.metering.notification)
        mirror_report_attribute_response: Final = command(
            MeteringServerCommand.MIRROR_REPORT_ATTRIBUTE_RESPONSE,
            {"notification_scheme": t.uint8_t, "notification_flags": NotificationFlags},
        )
        # SE 1.2 supply control (zse.metering.supply); fields as zigpy, Wireshark master,
        # Silicon Labs and zsmartsystems give them (the SE 1.2 text out of reach)
        reset_load_limit_counter: Final = command(
            MeteringServerCommand.RESET_LOAD_LIMIT_COUNTER,
            {"provider_id": t.uint32_t, "issuer_event_id": t.uint32_t},
        )
        change_supply: Final = command(
            MeteringServerCommand.CHANGE_SUPPLY,
            {
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "request_date_time": t.UTCTime,
                "implementation_date_time": t.UTCTime,
                "proposed_supply_status": SupplyStatus,
                "supply_control_bits": t.bitmap8,
            },
        )
        local_change_supply: Final = command(
            MeteringServerCommand.LOCAL_CHANGE_SUPPLY, {"proposed_supply_status": SupplyStatus}
        )
        set_supply_status: Final = command(
            MeteringServerCommand.SET_SUPPLY_STATUS,
            {
                "issuer_event_id": t.uint32_t,
                "supply_tamper_state": t.enum8,
                "supply_depletion_state": t.enum8,
                "supply_uncontrolled_flow_state": t.enum8,
                "load_limit_supply_state": t.enum8,
            },
        )
        set_uncontrolled_flow_threshold: Final = command(
            MeteringServerCommand.SET_UNCONTROLLED_FLOW_THRESHOLD,
            {
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "uncontrolled_flow_threshold": t.uint16_t,
                "unit_of_measure": t.enum8,
                "multiplier": t.uint16_t,
                "divisor": t.uint16_t,
                "stabilisation_period": t.uint8_t,
                "measurement_period": t.uint16_t,
            },
        )
        # SE 1.2 snapshots and sampling (zse.metering.snapshot_types says from where)
        schedule_snapshot: Final = command(
            MeteringServerCommand.SCHEDULE_SNAPSHOT,
            {
                "issuer_event_id": t.uint32_t,
                "command_index": t.uint8_t,
                "total_number_of_commands": t.uint8_t,
                "schedules": SnapshotSchedules,
            },
        )
        take_snapshot: Final = command(
            MeteringServerCommand.TAKE_SNAPSHOT, {"snapshot_cause": MeterSnapshotCause}
        )
        get_snapshot: Final = command(
            MeteringServerCommand.GET_SNAPSHOT,
            {
                "earliest_start_time": t.UTCTime,
                "latest_end_time": t.UTCTime,
                "snapshot_offset": t.uint8_t,
                "snapshot_cause": MeterSnapshotCause,
            },
        )
        start_sampling: Final = command(
            MeteringServerCommand.START_SAMPLING,
            {
                "issuer_event_id": t.uint32_t,
                "start_sampling_time": t.UTCTime,
                "sample_type": SampleType,
                "sample_request_interval": t.uint16_t,
                "max_number_of_samples": t.uint16_t,
            },
        )
        get_sampled_data: Final = command(
            MeteringServerCommand.GET_SAMPLED_DATA,
            {
                "sample_id": t.uint16_t,
                "earliest_sample_time": t.UTCTime,
                "sample_type": SampleType,
                "number_of_samples": t.uint16_t,
            },
        )

    class ClientCommandDefs(BaseCommandDefs):
        """Commands the meter sends (D.3.2.3.1)."""

        get_profile_response: Final = ZCLCommandDef(
            id=cast(t.uint8_t, MeteringClientCommand.GET_PROFILE_RESPONSE),
            schema=GetProfileResponse,
        )
        request_mirror: Final = command(MeteringClientCommand.REQUEST_MIRROR, {})
        remove_mirror: Final = command(MeteringClientCommand.REMOVE_MIRROR, {})
        request_fast_poll_mode_response: Final = command(
            MeteringClientCommand.REQUEST_FAST_POLL_MODE_RESPONSE,
            {"applied_update_period": t.uint8_t, "fast_poll_mode_end_time": t.UTCTime},
        )
        # SE 1.2 mirror notifications, a BOMD to its mirror (zse.metering.notification); field
        # order and sizes as Wireshark's packet-zbee-zcl-se.c dissects them
        configure_mirror: Final = command(
            MeteringClientCommand.CONFIGURE_MIRROR,
            {
                "issuer_event_id": t.uint32_t,
                "reporting_interval": t.uint24_t,
                "mirror_notification_reporting": t.Bool,
                "notification_scheme": t.uint8_t,
            },
        )
        configure_notification_scheme: Final = command(
            MeteringClientCommand.CONFIGURE_NOTIFICATION_SCHEME,
            {
                "issuer_event_id": t.uint32_t,
                "notification_scheme": t.uint8_t,
                "notification_flag_order": t.bitmap32,
            },
        )
        configure_notification_flag: Final = ZCLCommandDef(
            id=cast(t.uint8_t, MeteringClientCommand.CONFIGURE_NOTIFICATION_FLAG),
            schema=ConfigureNotificationFlag,
        )
        get_notified_message: Final = command(
            MeteringClientCommand.GET_NOTIFIED_MESSAGE,
            {
                "notification_scheme": t.uint8_t,
                "notification_flag_attribute_id": t.uint16_t,
                "notification_flags": t.bitmap32,
            },
        )
        # SE 1.2 supply control (zse.metering.supply)
        supply_status_response: Final = command(
            MeteringClientCommand.SUPPLY_STATUS_RESPONSE,
            {
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "implementation_date_time": t.UTCTime,
                "supply_status": SupplyStatus,
            },
        )
        # SE 1.2 snapshots and sampling (zse.metering.snapshot_types says from where)
        schedule_snapshot_response: Final = command(
            MeteringClientCommand.SCHEDULE_SNAPSHOT_RESPONSE,
            {"issuer_event_id": t.uint32_t, "answers": ScheduleAnswers},
        )
        take_snapshot_response: Final = command(
            MeteringClientCommand.TAKE_SNAPSHOT_RESPONSE,
            {"snapshot_id": t.uint32_t, "snapshot_confirmation": SnapshotConfirmation},
        )
        publish_snapshot: Final = command(
            MeteringClientCommand.PUBLISH_SNAPSHOT,
            {
                "snapshot_id": t.uint32_t,
                "snapshot_time": t.UTCTime,
                "total_snapshots_found": t.uint8_t,
                "command_index": t.uint8_t,
                "total_number_of_commands": t.uint8_t,
                "snapshot_cause": MeterSnapshotCause,
                "snapshot_payload_type": SnapshotPayloadType,
                "snapshot_sub_payload": SnapshotSubPayload,
            },
        )
        get_sampled_data_response: Final = command(
            MeteringClientCommand.GET_SAMPLED_DATA_RESPONSE,
            {
                "sample_id": t.uint16_t,
                "sample_start_time": t.UTCTime,
                "sample_type": SampleType,
                "sample_request_interval": t.uint16_t,
                "number_of_samples": t.uint16_t,
                "samples": Samples,
            },
        )
        start_sampling_response: Final = command(
            MeteringClientCommand.START_SAMPLING_RESPONSE, {"sample_id": t.uint16_t}
        )
