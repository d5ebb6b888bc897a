"""Smart Energy identifiers, declared once: profile, device, cluster, command and attribute ids.

Values are those of the ZigBee Smart Energy Standard (07-5356, SE 1.x) and the ZigBee Cluster
Library (07-5123, ZCL); each group cites its clause. Command ids follow zigpy's naming of the
two directions: ``...ServerCommand`` is a command the server *receives* (client to server),
``...ClientCommand`` one the server *sends* (server to client).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

__all__ = [
    "BASIC",
    "CALENDAR",
    "CONSUMPTION_PERIODS",
    "COST_CONSUMPTION_PERIODS",
    "CREDIT_PAYMENTS_NAMED",
    "DEVICE_MANAGEMENT",
    "DEVICE_MANAGEMENT_CLUSTER",
    "DRLC",
    "ESI_DEVICE_ID",
    "EVENTS",
    "IN_HOME_DISPLAY",
    "KEY_ESTABLISHMENT",
    "KE_SUITE_ATTRIBUTE",
    "LOAD_CONTROL_DEVICE",
    "MAX_TIER",
    "MESSAGING",
    "METERING",
    "METERING_DEVICE",
    "PREPAYMENT",
    "PREPAYMENT_TERMINAL",
    "PRICE",
    "PROGRAMMABLE_THERMOSTAT",
    "SE_PROFILE_ID",
    "SMART_APPLIANCE",
    "TIME",
    "TUNNELING",
    "ZSE_MANUFACTURER_CODE",
    "CalendarAttribute",
    "CalendarClientCommand",
    "CalendarServerCommand",
    "DeviceManagementAttribute",
    "DeviceManagementClientCommand",
    "DeviceManagementServerCommand",
    "DrlcAttribute",
    "DrlcClientCommand",
    "DrlcServerCommand",
    "EventsClientCommand",
    "EventsServerCommand",
    "KeyEstablishmentClientCommand",
    "KeyEstablishmentServerCommand",
    "MessagingClientCommand",
    "MessagingServerCommand",
    "MeteringAttribute",
    "MeteringClientCommand",
    "MeteringServerCommand",
    "PrepaymentAttribute",
    "PrepaymentClientCommand",
    "PrepaymentServerCommand",
    "PriceAttribute",
    "PriceClientCommand",
    "PriceServerCommand",
    "TimeAttribute",
    "TunnelingAttribute",
    "TunnelingClientCommand",
    "TunnelingServerCommand",
    "aux_switch_label_attribute",
    "block_price_attribute",
    "block_threshold_attribute",
    "consumption_attribute",
    "cost_consumption_attribute",
    "credit_payment_attributes",
    "debt_attribute",
    "received_block_threshold_attribute",
    "received_tier_label_attribute",
    "tier_label_attribute",
    "tier_summation_attribute",
    "top_up_attribute",
]

#: The Smart Energy application profile id (SE 5.1).
SE_PROFILE_ID: Final = 0x0109

#: The manufacturer code of zse's manufacturer-specific commands and clusters (the installer's
#: handover, the hand-held terminal's carrier; ZCL 2.4.1.1.3): 0xFFF1, the code test devices
#: use, as a placeholder; a deployment sets its own assigned code.
ZSE_MANUFACTURER_CODE: Final = 0xFFF1

# --- Device ids (SE 5.7, table 5.13) -----------------------------------------------------------

#: Energy Service Interface.
ESI_DEVICE_ID: Final = 0x0500
#: Metering Device: what a meter's mirror on the ESI is (SE 1.x table 5-13, as ZBOSS's SE
#: device ids have it; D.3.4).
METERING_DEVICE: Final = 0x0501
#: Programmable Communicating Thermostat (PCT).
PROGRAMMABLE_THERMOSTAT: Final = 0x0503
#: Load Control Device.
LOAD_CONTROL_DEVICE: Final = 0x0504
#: In-Premise Display (the spec's name for an in-home display).
IN_HOME_DISPLAY: Final = 0x0502
#: Smart Appliance.
SMART_APPLIANCE: Final = 0x0505
#: Prepayment Terminal.
PREPAYMENT_TERMINAL: Final = 0x0506
#: Device Management (SE 1.1's name; SE 1.2's table calls 0x0507 Physical Device).
DEVICE_MANAGEMENT: Final = 0x0507

# --- Cluster ids (ZCL 3.2 / 3.12; SE Annex C.3, D.2-D.5) ------------------------------------------

#: Basic (ZCL 3.2).
BASIC: Final = 0x0000
#: Time (ZCL 3.12).
TIME: Final = 0x000A
#: Trust Center Keep-Alive (SE 1.2 5.4.2.2.3.4; served by the ESI, read by joined devices).
KEEP_ALIVE: Final = 0x0025
#: Price (SE D.4).
PRICE: Final = 0x0700
#: Demand Response and Load Control (SE D.2).
DRLC: Final = 0x0701
#: Simple Metering (SE D.3).
METERING: Final = 0x0702
#: Messaging (SE D.5).
MESSAGING: Final = 0x0703
#: Tunneling (SE D.6).
TUNNELING: Final = 0x0704
#: Key Establishment (SE C.3).
KEY_ESTABLISHMENT: Final = 0x0800

# --- Commands ----------------------------------------------------------------------------------


class PriceServerCommand(IntEnum):
    """Price commands the server receives (SE D.4.2.3)."""

    GET_CURRENT_PRICE = 0x00
    GET_SCHEDULED_PRICES = 0x01
    PRICE_ACKNOWLEDGEMENT = 0x02
    GET_BLOCK_PERIODS = 0x03
    GET_CONVERSION_FACTOR = 0x04
    GET_CALORIFIC_VALUE = 0x05
    # SE 1.2 (D.4.2.3.7-16); ids as Wireshark's Price dissector numbers them
    GET_TARIFF_INFORMATION = 0x06
    GET_PRICE_MATRIX = 0x07
    GET_BLOCK_THRESHOLDS = 0x08
    GET_CO2_VALUE = 0x09
    GET_TIER_LABELS = 0x0A
    GET_BILLING_PERIOD = 0x0B
    GET_CONSOLIDATED_BILL = 0x0C
    CPP_EVENT_RESPONSE = 0x0D
    GET_CREDIT_PAYMENT = 0x0E
    GET_CURRENCY_CONVERSION = 0x0F
    GET_TARIFF_CANCELLATION = 0x10


class PriceClientCommand(IntEnum):
    """Price commands the server sends (SE D.4.2.4)."""

    PUBLISH_PRICE = 0x00
    PUBLISH_BLOCK_PERIOD = 0x01
    PUBLISH_CONVERSION_FACTOR = 0x02
    PUBLISH_CALORIFIC_VALUE = 0x03
    # SE 1.2 (D.4.2.4.5-15); ids as Wireshark's Price dissector numbers them
    PUBLISH_TARIFF_INFORMATION = 0x04
    PUBLISH_PRICE_MATRIX = 0x05
    PUBLISH_BLOCK_THRESHOLDS = 0x06
    PUBLISH_CO2_VALUE = 0x07
    PUBLISH_TIER_LABELS = 0x08
    PUBLISH_BILLING_PERIOD = 0x09
    PUBLISH_CONSOLIDATED_BILL = 0x0A
    PUBLISH_CPP_EVENT = 0x0B
    PUBLISH_CREDIT_PAYMENT = 0x0C
    PUBLISH_CURRENCY_CONVERSION = 0x0D
    CANCEL_TARIFF = 0x0E


class DrlcServerCommand(IntEnum):
    """DRLC commands the server (ESI) receives (SE D.2.3.3)."""

    REPORT_EVENT_STATUS = 0x00
    GET_SCHEDULED_EVENTS = 0x01


class DrlcClientCommand(IntEnum):
    """DRLC commands the server (ESI) sends (SE D.2.2.3)."""

    LOAD_CONTROL_EVENT = 0x00
    CANCEL_LOAD_CONTROL_EVENT = 0x01
    CANCEL_ALL_LOAD_CONTROL_EVENTS = 0x02


class MessagingServerCommand(IntEnum):
    """Messaging commands the server receives (SE D.5.2.4)."""

    GET_LAST_MESSAGE = 0x00
    MESSAGE_CONFIRMATION = 0x01
    GET_MESSAGE_CANCELLATION = 0x02


class MessagingClientCommand(IntEnum):
    """Messaging commands the server sends (SE D.5.2.3)."""

    DISPLAY_MESSAGE = 0x00
    CANCEL_MESSAGE = 0x01
    DISPLAY_PROTECTED_MESSAGE = 0x02
    CANCEL_ALL_MESSAGES = 0x03


class MeteringServerCommand(IntEnum):
    """Metering commands the server (the meter) receives, the client's (SE D.3.3.3.1)."""

    GET_PROFILE = 0x00
    REQUEST_MIRROR_RESPONSE = 0x01
    MIRROR_REMOVED = 0x02
    REQUEST_FAST_POLL_MODE = 0x03
    # SE 1.2 snapshots and sampling; ids as Wireshark's Metering dissector numbers them
    SCHEDULE_SNAPSHOT = 0x04
    TAKE_SNAPSHOT = 0x05
    GET_SNAPSHOT = 0x06
    START_SAMPLING = 0x07
    GET_SAMPLED_DATA = 0x08
    # SE 1.2 mirror notifications (ids as Wireshark's packet-zbee-zcl-se.c)
    MIRROR_REPORT_ATTRIBUTE_RESPONSE = 0x09
    # supply control (SE 1.2 D.3.3.3.1; ids as Wireshark's zbee_zcl_met_srv_rx_cmd_names)
    RESET_LOAD_LIMIT_COUNTER = 0x0A
    CHANGE_SUPPLY = 0x0B
    LOCAL_CHANGE_SUPPLY = 0x0C
    SET_SUPPLY_STATUS = 0x0D
    SET_UNCONTROLLED_FLOW_THRESHOLD = 0x0E


class MeteringClientCommand(IntEnum):
    """Metering commands the server (the meter) sends (SE D.3.2.3.1)."""

    GET_PROFILE_RESPONSE = 0x00
    REQUEST_MIRROR = 0x01
    REMOVE_MIRROR = 0x02
    REQUEST_FAST_POLL_MODE_RESPONSE = 0x03
    # SE 1.2 snapshots and sampling; ids as Wireshark's Metering dissector numbers them
    SCHEDULE_SNAPSHOT_RESPONSE = 0x04
    TAKE_SNAPSHOT_RESPONSE = 0x05
    PUBLISH_SNAPSHOT = 0x06
    GET_SAMPLED_DATA_RESPONSE = 0x07
    START_SAMPLING_RESPONSE = 0x0D
    # SE 1.2 mirror notifications (ids as Wireshark's packet-zbee-zcl-se.c)
    CONFIGURE_MIRROR = 0x08
    CONFIGURE_NOTIFICATION_SCHEME = 0x09
    CONFIGURE_NOTIFICATION_FLAG = 0x0A
    GET_NOTIFIED_MESSAGE = 0x0B
    # supply control (SE 1.2 D.3.2.3.1; Wireshark's zbee_zcl_met_srv_tx_cmd_names)
    SUPPLY_STATUS_RESPONSE = 0x0C


class TunnelingServerCommand(IntEnum):
    """Tunneling commands the server receives (SE 1.2 D.6.2.4; ids as Wireshark's
    ``packet-zbee-zcl-se.c`` dissects them)."""

    REQUEST_TUNNEL = 0x00
    CLOSE_TUNNEL = 0x01
    TRANSFER_DATA = 0x02
    TRANSFER_DATA_ERROR = 0x03
    ACK_TRANSFER_DATA = 0x04
    READY_DATA = 0x05
    GET_SUPPORTED_TUNNEL_PROTOCOLS = 0x06


class TunnelingClientCommand(IntEnum):
    """Tunneling commands the server sends (SE 1.2 D.6.2.5)."""

    REQUEST_TUNNEL_RESPONSE = 0x00
    TRANSFER_DATA = 0x01
    TRANSFER_DATA_ERROR = 0x02
    ACK_TRANSFER_DATA = 0x03
    READY_DATA = 0x04
    SUPPORTED_TUNNEL_PROTOCOLS_RESPONSE = 0x05
    TUNNEL_CLOSURE_NOTIFICATION = 0x06


class KeyEstablishmentServerCommand(IntEnum):
    """Key Establishment commands the responder (server) receives (SE C.3.1.3)."""

    INITIATE_KEY_ESTABLISHMENT_REQUEST = 0x00
    EPHEMERAL_DATA_REQUEST = 0x01
    CONFIRM_KEY_DATA_REQUEST = 0x02
    TERMINATE_KEY_ESTABLISHMENT = 0x03


class KeyEstablishmentClientCommand(IntEnum):
    """Key Establishment commands the responder (server) sends (SE C.3.1.4)."""

    INITIATE_KEY_ESTABLISHMENT_RESPONSE = 0x00
    EPHEMERAL_DATA_RESPONSE = 0x01
    CONFIRM_KEY_DATA_RESPONSE = 0x02
    TERMINATE_KEY_ESTABLISHMENT = 0x03


# --- Attributes --------------------------------------------------------------------------------

#: KeyEstablishmentSuite, on both sides of Key Establishment (SE C.3.1.1.1, C.3.2.1.1).
KE_SUITE_ATTRIBUTE: Final = 0x0000


class TunnelingAttribute(IntEnum):
    """Tunneling server attributes (SE 1.2 D.6.2.2)."""

    CLOSE_TUNNEL_TIMEOUT = 0x0000


class DrlcAttribute(IntEnum):
    """DRLC client attributes (SE D.2.3.2)."""

    UTILITY_ENROLLMENT_GROUP = 0x0000
    START_RANDOMIZATION_MINUTES = 0x0001
    DURATION_RANDOMIZATION_MINUTES = 0x0002
    DEVICE_CLASS_VALUE = 0x0003


class TimeAttribute(IntEnum):
    """Time cluster attributes (ZCL 3.12.2.2)."""

    TIME = 0x0000
    TIME_STATUS = 0x0001
    TIME_ZONE = 0x0002
    DST_START = 0x0003
    DST_END = 0x0004
    DST_SHIFT = 0x0005
    STANDARD_TIME = 0x0006
    LOCAL_TIME = 0x0007
    LAST_SET_TIME = 0x0008
    VALID_UNTIL_TIME = 0x0009


class MeteringAttribute(IntEnum):
    """Metering server attributes a meter and a display use (SE D.3.2.2).

    Names are zigpy's (``zigpy.zcl.clusters.smartenergy.Metering``) where zigpy has the
    attribute; the SE 1.2 day/week/month consumption (D.3.2.2.5) zigpy lacks are named after
    the spec.
    """

    # Reading Information set (D.3.2.2.1)
    CURRENT_SUMM_DELIVERED = 0x0000
    CURRENT_SUMM_RECEIVED = 0x0001
    CURRENT_MAX_DEMAND_DELIVERED = 0x0002
    CURRENT_MAX_DEMAND_RECEIVED = 0x0003
    DFT_SUMM = 0x0004
    DAILY_FREEZE_TIME = 0x0005
    POWER_FACTOR = 0x0006
    READING_SNAPSHOT_TIME = 0x0007
    CURRENT_MAX_DEMAND_DELIVERED_TIME = 0x0008
    CURRENT_MAX_DEMAND_RECEIVED_TIME = 0x0009
    DEFAULT_UPDATE_PERIOD = 0x000A
    FAST_POLL_UPDATE_PERIOD = 0x000B
    SUPPLY_STATUS = 0x0014  # SE 1.2, supply control (zse.metering.supply)
    # TOU Information set (D.3.2.2.2): tier N delivered 0x0100 + 2(N-1), received + 1
    CURRENT_TIER1_SUMM_DELIVERED = 0x0100
    CURRENT_TIER1_SUMM_RECEIVED = 0x0101
    CURRENT_TIER2_SUMM_DELIVERED = 0x0102
    CURRENT_TIER2_SUMM_RECEIVED = 0x0103
    CURRENT_TIER3_SUMM_DELIVERED = 0x0104
    CURRENT_TIER3_SUMM_RECEIVED = 0x0105
    CURRENT_TIER4_SUMM_DELIVERED = 0x0106
    CURRENT_TIER4_SUMM_RECEIVED = 0x0107
    CURRENT_TIER5_SUMM_DELIVERED = 0x0108
    CURRENT_TIER5_SUMM_RECEIVED = 0x0109
    CURRENT_TIER6_SUMM_DELIVERED = 0x010A
    CURRENT_TIER6_SUMM_RECEIVED = 0x010B
    CURRENT_TIER7_SUMM_DELIVERED = 0x010C
    CURRENT_TIER7_SUMM_RECEIVED = 0x010D
    CURRENT_TIER8_SUMM_DELIVERED = 0x010E
    CURRENT_TIER8_SUMM_RECEIVED = 0x010F
    CURRENT_TIER9_SUMM_DELIVERED = 0x0110
    CURRENT_TIER9_SUMM_RECEIVED = 0x0111
    CURRENT_TIER10_SUMM_DELIVERED = 0x0112
    CURRENT_TIER10_SUMM_RECEIVED = 0x0113
    CURRENT_TIER11_SUMM_DELIVERED = 0x0114
    CURRENT_TIER11_SUMM_RECEIVED = 0x0115
    CURRENT_TIER12_SUMM_DELIVERED = 0x0116
    CURRENT_TIER12_SUMM_RECEIVED = 0x0117
    CURRENT_TIER13_SUMM_DELIVERED = 0x0118
    CURRENT_TIER13_SUMM_RECEIVED = 0x0119
    CURRENT_TIER14_SUMM_DELIVERED = 0x011A
    CURRENT_TIER14_SUMM_RECEIVED = 0x011B
    CURRENT_TIER15_SUMM_DELIVERED = 0x011C
    CURRENT_TIER15_SUMM_RECEIVED = 0x011D
    # Meter Status set (D.3.2.2.3)
    STATUS = 0x0200
    # Formatting set (D.3.2.2.4)
    UNIT_OF_MEASURE = 0x0300
    MULTIPLIER = 0x0301
    DIVISOR = 0x0302
    SUMMATION_FORMATTING = 0x0303
    DEMAND_FORMATTING = 0x0304
    HISTORICAL_CONSUMPTION_FORMATTING = 0x0305
    METERING_DEVICE_TYPE = 0x0306
    # Historical Consumption set (D.3.2.2.5)
    INSTANTANEOUS_DEMAND = 0x0400
    CURRENTDAY_CONSUMPTION_DELIVERED = 0x0401
    CURRENTDAY_CONSUMPTION_RECEIVED = 0x0402
    PREVIOUSDAY_CONSUMPTION_DELIVERED = 0x0403
    PREVIOUSDAY_CONSUMPTION_RECEIVED = 0x0404
    CUR_PART_PROFILE_INT_START_TIME_DELIVERED = 0x0405
    CUR_PART_PROFILE_INT_START_TIME_RECEIVED = 0x0406
    CUR_PART_PROFILE_INT_VALUE_DELIVERED = 0x0407
    CUR_PART_PROFILE_INT_VALUE_RECEIVED = 0x0408
    # the day's highest demand (SE 1.2; int24, zigpy's and zsmartsystems' declaration)
    CURRENT_DAY_MAX_DEMAND = 0x040D
    PREVIOUS_DAY_MAX_DEMAND = 0x040E
    PREVIOUS_DAY2_CONSUMPTION_DELIVERED = 0x0420
    PREVIOUS_DAY2_CONSUMPTION_RECEIVED = 0x0421
    PREVIOUS_DAY3_CONSUMPTION_DELIVERED = 0x0422
    PREVIOUS_DAY3_CONSUMPTION_RECEIVED = 0x0423
    PREVIOUS_DAY4_CONSUMPTION_DELIVERED = 0x0424
    PREVIOUS_DAY4_CONSUMPTION_RECEIVED = 0x0425
    PREVIOUS_DAY5_CONSUMPTION_DELIVERED = 0x0426
    PREVIOUS_DAY5_CONSUMPTION_RECEIVED = 0x0427
    PREVIOUS_DAY6_CONSUMPTION_DELIVERED = 0x0428
    PREVIOUS_DAY6_CONSUMPTION_RECEIVED = 0x0429
    PREVIOUS_DAY7_CONSUMPTION_DELIVERED = 0x042A
    PREVIOUS_DAY7_CONSUMPTION_RECEIVED = 0x042B
    PREVIOUS_DAY8_CONSUMPTION_DELIVERED = 0x042C
    PREVIOUS_DAY8_CONSUMPTION_RECEIVED = 0x042D
    CURRENT_WEEK_CONSUMPTION_DELIVERED = 0x0430
    CURRENT_WEEK_CONSUMPTION_RECEIVED = 0x0431
    PREVIOUS_WEEK_CONSUMPTION_DELIVERED = 0x0432
    PREVIOUS_WEEK_CONSUMPTION_RECEIVED = 0x0433
    PREVIOUS_WEEK2_CONSUMPTION_DELIVERED = 0x0434
    PREVIOUS_WEEK2_CONSUMPTION_RECEIVED = 0x0435
    PREVIOUS_WEEK3_CONSUMPTION_DELIVERED = 0x0436
    PREVIOUS_WEEK3_CONSUMPTION_RECEIVED = 0x0437
    PREVIOUS_WEEK4_CONSUMPTION_DELIVERED = 0x0438
    PREVIOUS_WEEK4_CONSUMPTION_RECEIVED = 0x0439
    PREVIOUS_WEEK5_CONSUMPTION_DELIVERED = 0x043A
    PREVIOUS_WEEK5_CONSUMPTION_RECEIVED = 0x043B
    CURRENT_MONTH_CONSUMPTION_DELIVERED = 0x0440
    CURRENT_MONTH_CONSUMPTION_RECEIVED = 0x0441
    PREVIOUS_MONTH_CONSUMPTION_DELIVERED = 0x0442
    PREVIOUS_MONTH_CONSUMPTION_RECEIVED = 0x0443
    PREVIOUS_MONTH2_CONSUMPTION_DELIVERED = 0x0444
    PREVIOUS_MONTH2_CONSUMPTION_RECEIVED = 0x0445
    PREVIOUS_MONTH3_CONSUMPTION_DELIVERED = 0x0446
    PREVIOUS_MONTH3_CONSUMPTION_RECEIVED = 0x0447
    PREVIOUS_MONTH4_CONSUMPTION_DELIVERED = 0x0448
    PREVIOUS_MONTH4_CONSUMPTION_RECEIVED = 0x0449
    PREVIOUS_MONTH5_CONSUMPTION_DELIVERED = 0x044A
    PREVIOUS_MONTH5_CONSUMPTION_RECEIVED = 0x044B
    PREVIOUS_MONTH6_CONSUMPTION_DELIVERED = 0x044C
    PREVIOUS_MONTH6_CONSUMPTION_RECEIVED = 0x044D
    PREVIOUS_MONTH7_CONSUMPTION_DELIVERED = 0x044E
    PREVIOUS_MONTH7_CONSUMPTION_RECEIVED = 0x044F
    PREVIOUS_MONTH8_CONSUMPTION_DELIVERED = 0x0450
    PREVIOUS_MONTH8_CONSUMPTION_RECEIVED = 0x0451
    PREVIOUS_MONTH9_CONSUMPTION_DELIVERED = 0x0452
    PREVIOUS_MONTH9_CONSUMPTION_RECEIVED = 0x0453
    PREVIOUS_MONTH10_CONSUMPTION_DELIVERED = 0x0454
    PREVIOUS_MONTH10_CONSUMPTION_RECEIVED = 0x0455
    PREVIOUS_MONTH11_CONSUMPTION_DELIVERED = 0x0456
    PREVIOUS_MONTH11_CONSUMPTION_RECEIVED = 0x0457
    PREVIOUS_MONTH12_CONSUMPTION_DELIVERED = 0x0458
    PREVIOUS_MONTH12_CONSUMPTION_RECEIVED = 0x0459
    PREVIOUS_MONTH13_CONSUMPTION_DELIVERED = 0x045A
    PREVIOUS_MONTH13_CONSUMPTION_RECEIVED = 0x045B
    # when the day, week and month turn, local hours and minutes (uint16; after
    # PreviousMonth13ConsumptionReceived in ZBOSS's zb_zcl_metering.h)
    HISTORICAL_FREEZE_TIME = 0x045C
    # Load Profile Configuration set (D.3.2.2.6)
    MAX_NUMBER_OF_PERIODS_DELIVERED = 0x0500
    # SE 1.2 supply control (zse.metering.supply): Supply Limit set (D.3.2.2.7) and Supply
    # Control set (0x0B00); ids as Wireshark's and Exegin's Metering attribute lists
    LOAD_LIMIT_SUPPLY_STATE = 0x0605
    LOAD_LIMIT_COUNTER = 0x0606
    SUPPLY_TAMPER_STATE = 0x0607
    SUPPLY_DEPLETION_STATE = 0x0608
    SUPPLY_UNCONTROLLED_FLOW_STATE = 0x0609
    PROPOSED_CHANGE_SUPPLY_IMPLEMENTATION_TIME = 0x0B00
    PROPOSED_CHANGE_SUPPLY_STATUS = 0x0B01
    UNCONTROLLED_FLOW_THRESHOLD = 0x0B10
    UNCONTROLLED_FLOW_THRESHOLD_UNIT_OF_MEASURE = 0x0B11
    UNCONTROLLED_FLOW_MULTIPLIER = 0x0B12
    UNCONTROLLED_FLOW_DIVISOR = 0x0B13
    FLOW_STABILISATION_PERIOD = 0x0B14
    FLOW_MEASUREMENT_PERIOD = 0x0B15


class PriceAttribute(IntEnum):
    """Price server attributes (SE 1.2 D.4.2.2): the first of each numbered run, and the Block
    Period (D.4.2.2.3), Commodity (D.4.2.2.4), Tariff Information and Billing Information
    sets (delivered), the Credit Payment set and the received sets. The numbered runs are
    :func:`tier_label_attribute`, :func:`block_threshold_attribute`,
    :func:`block_price_attribute` and their received and credit payment kin; ids as
    Wireshark's Price dissector names them (0x8703, which it does not name, as
    zsmartsystems' ``0700_Price.xml`` does)."""

    TIER1_PRICE_LABEL = 0x0000
    BLOCK1_THRESHOLD = 0x0100
    BLOCK_THRESHOLD_COUNT = 0x010F
    START_OF_BLOCK_PERIOD = 0x0200
    BLOCK_PERIOD_DURATION = 0x0201
    THRESHOLD_MULTIPLIER = 0x0202
    THRESHOLD_DIVISOR = 0x0203
    BLOCK_PERIOD_DURATION_TYPE = 0x0204
    COMMODITY_TYPE = 0x0300
    STANDING_CHARGE = 0x0301
    CONVERSION_FACTOR = 0x0302
    CONVERSION_FACTOR_TRAILING_DIGIT = 0x0303
    CALORIFIC_VALUE = 0x0304
    CALORIFIC_VALUE_UNIT = 0x0305
    CALORIFIC_VALUE_TRAILING_DIGIT = 0x0306
    NO_TIER_BLOCK1_PRICE = 0x0400
    # Tariff Information set (SE 1.2 D.4.2.2.7, delivered)
    TARIFF_LABEL = 0x0610
    NUMBER_OF_PRICE_TIERS_IN_USE = 0x0611
    NUMBER_OF_BLOCK_THRESHOLDS_IN_USE = 0x0612
    TIER_BLOCK_MODE = 0x0613
    UNIT_OF_MEASURE = 0x0615
    CURRENCY = 0x0616
    PRICE_TRAILING_DIGIT = 0x0617
    TARIFF_RESOLUTION_PERIOD = 0x0619
    CO2 = 0x0620
    CO2_UNIT = 0x0621
    CO2_TRAILING_DIGIT = 0x0622
    # Billing Information set (SE 1.2 D.4.2.2.8, delivered)
    CURRENT_BILLING_PERIOD_START = 0x0700
    CURRENT_BILLING_PERIOD_DURATION = 0x0701
    LAST_BILLING_PERIOD_START = 0x0702
    LAST_BILLING_PERIOD_DURATION = 0x0703
    LAST_BILLING_PERIOD_CONSOLIDATED_BILL = 0x0704
    # Credit Payment set (SE 1.2): the payments are :func:`credit_payment_attributes`
    CREDIT_PAYMENT_DUE_DATE = 0x0800
    CREDIT_PAYMENT_STATUS = 0x0801
    CREDIT_PAYMENT_OVERDUE_AMOUNT = 0x0802
    # The received sets (SE 1.2, 0x8xxx: what the premises exports, a generation meter's
    # tariff): the numbered runs are :func:`received_tier_label_attribute` and
    # :func:`received_block_threshold_attribute`
    RECEIVED_TIER1_PRICE_LABEL = 0x8000
    RECEIVED_BLOCK1_THRESHOLD = 0x8100
    RECEIVED_START_OF_BLOCK_PERIOD = 0x8200
    RECEIVED_BLOCK_PERIOD_DURATION = 0x8201
    RECEIVED_THRESHOLD_MULTIPLIER = 0x8202
    RECEIVED_THRESHOLD_DIVISOR = 0x8203
    RECEIVED_TARIFF_LABEL = 0x8610
    RECEIVED_NUMBER_OF_PRICE_TIERS_IN_USE = 0x8611
    RECEIVED_NUMBER_OF_BLOCK_THRESHOLDS_IN_USE = 0x8612
    RECEIVED_TIER_BLOCK_MODE = 0x8613
    RECEIVED_TARIFF_RESOLUTION_PERIOD = 0x8615
    RECEIVED_CO2 = 0x8625
    RECEIVED_CO2_UNIT = 0x8626
    RECEIVED_CO2_TRAILING_DIGIT = 0x8627
    RECEIVED_CURRENT_BILLING_PERIOD_START = 0x8700
    RECEIVED_CURRENT_BILLING_PERIOD_DURATION = 0x8701
    RECEIVED_LAST_BILLING_PERIOD_START = 0x8702
    RECEIVED_LAST_BILLING_PERIOD_DURATION = 0x8703
    RECEIVED_LAST_BILLING_PERIOD_CONSOLIDATED_BILL = 0x8704


#: The highest tier SE 1.2 numbers: tier labels 1-48 (D.4.2.2.1), the Publish Price tier
#: fields joined with their extended ones (D.4.2.4.1), the meter's tier summations 1-48
#: (D.3.2.2.2; Wireshark 4.0's packet-zbee-zcl-se.c names Current Tier 48 Summation Delivered
#: 0x015E and Received 0x015F).
MAX_TIER: Final = 48
_MAX_LABELLED_TIER = MAX_TIER
#: Block thresholds: blocks 1-15 (D.4.2.2.2); prices: blocks 1-16 of tiers 0 (no tier)-15
#: (D.4.2.2.5).
_MAX_THRESHOLD = 15
_MAX_BLOCK = 16
_MAX_PRICED_TIER = 15


def tier_label_attribute(tier: int) -> int:
    """TierNPriceLabel's id, tier 1-48 (D.4.2.2.1)."""
    if not 1 <= tier <= _MAX_LABELLED_TIER:
        raise ValueError(f"tier {tier} has no price label attribute (1-{_MAX_LABELLED_TIER})")
    return PriceAttribute.TIER1_PRICE_LABEL + tier - 1


def tier_summation_attribute(tier: int, *, received: bool = False) -> int:
    """CurrentTierNSummationDelivered's id (``received``: CurrentTierNSummationReceived's),
    tier 1-48 (D.3.2.2.2): two ids per tier from 0x0100, as the enum's tiers 1-15 and
    Wireshark 4.0's packet-zbee-zcl-se.c (tiers 16-48 at 0x011E-0x015F) number them."""
    if not 1 <= tier <= MAX_TIER:
        raise ValueError(f"tier {tier} has no summation attribute (1-{MAX_TIER})")
    return MeteringAttribute.CURRENT_TIER1_SUMM_DELIVERED + 2 * (tier - 1) + int(received)


def block_threshold_attribute(block: int) -> int:
    """BlockNThreshold's id, block 1-15 (D.4.2.2.2)."""
    if not 1 <= block <= _MAX_THRESHOLD:
        raise ValueError(f"block {block} has no threshold attribute (1-{_MAX_THRESHOLD})")
    return PriceAttribute.BLOCK1_THRESHOLD + block - 1


def received_tier_label_attribute(tier: int) -> int:
    """ReceivedTierNPriceLabel's id, tier 1-48 (SE 1.2 received tier label set)."""
    return (
        tier_label_attribute(tier)
        - PriceAttribute.TIER1_PRICE_LABEL
        + (PriceAttribute.RECEIVED_TIER1_PRICE_LABEL)
    )


def received_block_threshold_attribute(block: int) -> int:
    """ReceivedBlockNThreshold's id, block 1-15 (SE 1.2 received block threshold set; 15 as
    Wireshark names them and as the delivered set has)."""
    return (
        block_threshold_attribute(block)
        - PriceAttribute.BLOCK1_THRESHOLD
        + (PriceAttribute.RECEIVED_BLOCK1_THRESHOLD)
    )


#: Credit payments the Credit Payment set names: #1-#5.
CREDIT_PAYMENTS_NAMED = 5


def credit_payment_attributes(number: int) -> tuple[int, int, int]:
    """CreditPayment#N, CreditPaymentDate#N and CreditPaymentRef#N's ids, N 1-5 (SE 1.2
    Credit Payment set: 0x0N10, 0x0N11, 0x0N12 above 0x0800)."""
    if not 1 <= number <= CREDIT_PAYMENTS_NAMED:
        raise ValueError(f"credit payment #{number} has no attributes (1-{CREDIT_PAYMENTS_NAMED})")
    first = PriceAttribute.CREDIT_PAYMENT_DUE_DATE + 0x10 * number
    return first, first + 1, first + 2


def block_price_attribute(tier: int, block: int) -> int:
    """NoTierBlockNPrice (tier 0) or TierMBlockNPrice's id, tier 0-15, block 1-16
    (D.4.2.2.5): 16 ids per tier from NoTierBlock1Price."""
    if not 0 <= tier <= _MAX_PRICED_TIER or not 1 <= block <= _MAX_BLOCK:
        raise ValueError(f"tier {tier} block {block} has no price attribute (0-15, 1-16)")
    return PriceAttribute.NO_TIER_BLOCK1_PRICE + _MAX_BLOCK * tier + block - 1


# --- Device Management (SE 1.2 D.10) and Events (SE 1.2 D.11) ----------------------------------
# Ids as Wireshark 4.0's packet-zbee-zcl-se.c names them (zbee_zcl_se.device_management.*,
# zbee_zcl_se.events.*): the SE 1.2/1.4 text itself was out of reach.

#: Device Management cluster (SE 1.2 D.10); DEVICE_MANAGEMENT above is SE 1.1's device id.
DEVICE_MANAGEMENT_CLUSTER: Final = 0x0708
#: Events cluster (SE 1.2 D.11).
EVENTS: Final = 0x0709


class DeviceManagementServerCommand(IntEnum):
    """Device Management commands the server (the ESI) receives (SE 1.2 D.10.2.3)."""

    GET_CHANGE_OF_TENANCY = 0x00
    GET_CHANGE_OF_SUPPLIER = 0x01
    REQUEST_NEW_PASSWORD = 0x02
    GET_SITE_ID = 0x03
    REPORT_EVENT_CONFIGURATION = 0x04
    GET_CIN = 0x05


class DeviceManagementClientCommand(IntEnum):
    """Device Management commands the server (the ESI) sends (SE 1.2 D.10.2.4)."""

    PUBLISH_CHANGE_OF_TENANCY = 0x00
    PUBLISH_CHANGE_OF_SUPPLIER = 0x01
    REQUEST_NEW_PASSWORD_RESPONSE = 0x02
    UPDATE_SITE_ID = 0x03
    SET_EVENT_CONFIGURATION = 0x04
    GET_EVENT_CONFIGURATION = 0x05
    UPDATE_CIN = 0x06


class DeviceManagementAttribute(IntEnum):
    """Device Management server attributes (SE 1.2 D.10.2.2): the Supplier Control set
    (0x01xx), the Tenancy Control set (0x02xx), Backhaul (0x03xx) and HAN Control (0x04xx).
    Wireshark names no Site ID or CIN attribute: those are carried by Update SiteID / CIN."""

    PROVIDER_ID = 0x0100
    PROVIDER_NAME = 0x0101
    PROVIDER_CONTACT_DETAILS = 0x0102
    PROPOSED_PROVIDER_ID = 0x0110
    PROPOSED_PROVIDER_NAME = 0x0111
    PROPOSED_PROVIDER_CHANGE_DATE_TIME = 0x0112
    PROPOSED_PROVIDER_CHANGE_CONTROL = 0x0113
    PROPOSED_PROVIDER_CONTACT_DETAILS = 0x0114
    RECEIVED_PROVIDER_ID = 0x0120
    RECEIVED_PROVIDER_NAME = 0x0121
    RECEIVED_PROVIDER_CONTACT_DETAILS = 0x0122
    RECEIVED_PROPOSED_PROVIDER_ID = 0x0130
    RECEIVED_PROPOSED_PROVIDER_NAME = 0x0131
    RECEIVED_PROPOSED_PROVIDER_CHANGE_DATE_TIME = 0x0132
    RECEIVED_PROPOSED_PROVIDER_CHANGE_CONTROL = 0x0133
    RECEIVED_PROPOSED_PROVIDER_CONTACT_DETAILS = 0x0134
    CHANGE_OF_TENANCY_UPDATE_DATE_TIME = 0x0200
    PROPOSED_TENANCY_CHANGE_CONTROL = 0x0201
    WAN_STATUS = 0x0300
    LOW_MEDIUM_THRESHOLD = 0x0400
    MEDIUM_HIGH_THRESHOLD = 0x0401


class EventsServerCommand(IntEnum):
    """Events commands the server receives (SE 1.2 D.11.2.3)."""

    GET_EVENT_LOG = 0x00
    CLEAR_EVENT_LOG_REQUEST = 0x01


class EventsClientCommand(IntEnum):
    """Events commands the server sends (SE 1.2 D.11.2.4)."""

    PUBLISH_EVENT = 0x00
    PUBLISH_EVENT_LOG = 0x01
    CLEAR_EVENT_LOG_RESPONSE = 0x02


# --- Calendar (SE 1.2 D.9) ---------------------------------------------------------------------
# Ids as Wireshark 4.0's Calendar dissector (packet-zbee-zcl-se.c, zbee_zcl_se.calendar) has
# them; the SE 1.2 text (07-5356-19) was out of reach.

#: Calendar (SE 1.2 D.9).
CALENDAR: Final = 0x0707


class CalendarServerCommand(IntEnum):
    """Calendar commands the server receives (SE 1.2 D.9.2.3)."""

    GET_CALENDAR = 0x00
    GET_DAY_PROFILES = 0x01
    GET_WEEK_PROFILES = 0x02
    GET_SEASONS = 0x03
    GET_SPECIAL_DAYS = 0x04
    GET_CALENDAR_CANCELLATION = 0x05


class CalendarClientCommand(IntEnum):
    """Calendar commands the server sends (SE 1.2 D.9.2.4)."""

    PUBLISH_CALENDAR = 0x00
    PUBLISH_DAY_PROFILE = 0x01
    PUBLISH_WEEK_PROFILE = 0x02
    PUBLISH_SEASONS = 0x03
    PUBLISH_SPECIAL_DAYS = 0x04
    CANCEL_CALENDAR = 0x05


class CalendarAttribute(IntEnum):
    """Calendar server attributes (SE 1.2 D.9.2.2): the Auxiliary Switch Label set, AuxSwitch1Label
    to AuxSwitch8Label (:func:`aux_switch_label_attribute`)."""

    AUX_SWITCH1_LABEL = 0x0000


#: Auxiliary switches 1-8 (D.9.2.2).
_AUX_SWITCHES = 8


def aux_switch_label_attribute(switch: int) -> int:
    """AuxSwitchNLabel's id, switch 1-8 (D.9.2.2)."""
    if not 1 <= switch <= _AUX_SWITCHES:
        raise ValueError(f"switch {switch} has no label attribute (1-{_AUX_SWITCHES})")
    return CalendarAttribute.AUX_SWITCH1_LABEL + switch - 1


# --- Prepayment (SE 1.2 D.7), 0x0705 -----------------------------------------------------------
# The SE 1.2 text was out of reach: ids as Wireshark 4.0's Prepayment dissector names them
# (``tshark -G values``, zbee_zcl_se.pp.*), the oracle of the tests.

#: The Prepayment cluster (SE 1.2 D.7).
PREPAYMENT: Final = 0x0705


class PrepaymentServerCommand(IntEnum):
    """Commands a Prepayment server receives (D.7.2.3)."""

    SELECT_AVAILABLE_EMERGENCY_CREDIT = 0x00
    CHANGE_DEBT = 0x02
    EMERGENCY_CREDIT_SETUP = 0x03
    CONSUMER_TOP_UP = 0x04
    CREDIT_ADJUSTMENT = 0x05
    CHANGE_PAYMENT_MODE = 0x06
    GET_PREPAY_SNAPSHOT = 0x07
    GET_TOP_UP_LOG = 0x08
    SET_LOW_CREDIT_WARNING_LEVEL = 0x09
    GET_DEBT_REPAYMENT_LOG = 0x0A
    SET_MAXIMUM_CREDIT_LIMIT = 0x0B
    SET_OVERALL_DEBT_CAP = 0x0C


class PrepaymentClientCommand(IntEnum):
    """Commands a Prepayment server sends (D.7.2.4)."""

    PUBLISH_PREPAY_SNAPSHOT = 0x01
    CHANGE_PAYMENT_MODE_RESPONSE = 0x02
    CONSUMER_TOP_UP_RESPONSE = 0x03
    PUBLISH_TOP_UP_LOG = 0x05
    PUBLISH_DEBT_LOG = 0x06


class PrepaymentAttribute(IntEnum):
    """Prepayment server attributes a display reads (D.7.2.2): the Prepayment Information
    set (0x00xx), the Top-up set (0x01xx, five records, #1 the newest), the Debt set
    (0x02xx, three debts), the Alarms set (0x04xx) and the Historical Cost Consumption set
    (0x05xx; ids as Wireshark 4.0's ``zbee_zcl_se.pp.attr_id`` names them, DSR ZBOSS's
    ``zb_zcl_prepayment.h`` and zsmartsystems' ``0705_Prepayment.xml`` alike)."""

    PAYMENT_CONTROL_CONFIGURATION = 0x0000
    CREDIT_REMAINING = 0x0001
    EMERGENCY_CREDIT_REMAINING = 0x0002
    CREDIT_STATUS = 0x0003
    CREDIT_REMAINING_TIMESTAMP = 0x0004
    ACCUMULATED_DEBT = 0x0005
    OVERALL_DEBT_CAP = 0x0006
    EMERGENCY_CREDIT_LIMIT = 0x0010
    EMERGENCY_CREDIT_THRESHOLD = 0x0011
    TOTAL_CREDIT_ADDED = 0x0020
    MAX_CREDIT_LIMIT = 0x0021
    MAX_CREDIT_PER_TOP_UP = 0x0022
    FRIENDLY_CREDIT_WARNING = 0x0030
    LOW_CREDIT_WARNING_LEVEL = 0x0031
    IHD_LOW_CREDIT_WARNING_LEVEL = 0x0032
    INTERRUPT_SUSPEND_TIME = 0x0033
    REMAINING_FRIENDLY_CREDIT_TIME = 0x0034
    NEXT_FRIENDLY_CREDIT_PERIOD = 0x0035
    CUT_OFF_VALUE = 0x0040
    TOKEN_CARRIER_ID = 0x0080
    TOP_UP_DATE_TIME_1 = 0x0100
    TOP_UP_AMOUNT_1 = 0x0101
    TOP_UP_ORIGINATING_DEVICE_1 = 0x0102
    TOP_UP_CODE_1 = 0x0103
    DEBT_LABEL_1 = 0x0210
    DEBT_AMOUNT_1 = 0x0211
    DEBT_RECOVERY_METHOD_1 = 0x0212
    DEBT_RECOVERY_START_TIME_1 = 0x0213
    DEBT_RECOVERY_COLLECTION_TIME_1 = 0x0214
    DEBT_RECOVERY_FREQUENCY_1 = 0x0216
    DEBT_RECOVERY_AMOUNT_1 = 0x0217
    DEBT_RECOVERY_TOP_UP_PERCENTAGE_1 = 0x0219
    PREPAYMENT_ALARM_STATUS = 0x0400
    PREPAY_GENERIC_ALARM_MASK = 0x0401
    PREPAY_SWITCH_ALARM_MASK = 0x0402
    PREPAY_EVENT_ALARM_MASK = 0x0403
    HISTORICAL_COST_CONSUMPTION_FORMATTING = 0x0500
    CONSUMPTION_UNIT_OF_MEASUREMENT = 0x0501
    CURRENCY_SCALING_FACTOR = 0x0502
    CURRENCY = 0x0503
    CURRENT_DAY_COST_CONSUMPTION_DELIVERED = 0x051C
    CURRENT_WEEK_COST_CONSUMPTION_DELIVERED = 0x0530
    CURRENT_MONTH_COST_CONSUMPTION_DELIVERED = 0x0540
    HISTORICAL_FREEZE_TIME = 0x055C


#: Top-up records 1-5 (D.7.2.2.2), 0x10 ids apart; debts 1-3 (D.7.2.2.3), 0x10 apart.
_TOP_UP_RECORDS = 5
_DEBTS = 3


def top_up_attribute(first: int, record: int) -> int:
    """The id of a Top-up set attribute (``first``: its record-1 id) of record 1-5."""
    if not 1 <= record <= _TOP_UP_RECORDS:
        raise ValueError(f"top-up record {record} does not exist (1-{_TOP_UP_RECORDS})")
    return first + 0x10 * (record - 1)


#: Periods the Historical Cost Consumption set holds before the current one (D.7.2.2.6):
#: previous days 1-8, weeks 1-5, months 1-13.
COST_CONSUMPTION_PERIODS: Final = {"day": 8, "week": 5, "month": 13}
_COST_CURRENT: Final = {
    "day": PrepaymentAttribute.CURRENT_DAY_COST_CONSUMPTION_DELIVERED,
    "week": PrepaymentAttribute.CURRENT_WEEK_COST_CONSUMPTION_DELIVERED,
    "month": PrepaymentAttribute.CURRENT_MONTH_COST_CONSUMPTION_DELIVERED,
}


#: Periods the Historical Consumption set holds before the current one (D.3.2.2.5): previous
#: days 1-8, weeks 1-5, months 1-13, as the cost consumption's.
CONSUMPTION_PERIODS: Final = COST_CONSUMPTION_PERIODS
_CONSUMPTION_CURRENT: Final = {
    "day": MeteringAttribute.CURRENTDAY_CONSUMPTION_DELIVERED,
    "week": MeteringAttribute.CURRENT_WEEK_CONSUMPTION_DELIVERED,
    "month": MeteringAttribute.CURRENT_MONTH_CONSUMPTION_DELIVERED,
}


def consumption_attribute(period: str, back: int, *, received: bool = False) -> int:
    """The id of a Historical Consumption attribute of the Metering cluster (D.3.2.2.5):
    ``period`` "day", "week" or "month", ``back`` 0 for the current one, N for Previous
    Day/Week/Month N (Delivered, or Received with ``received``), as Wireshark 4.0 names
    them: CurrentDay 0x0401, PreviousDay 0x0403, PreviousDay2-8 0x0420-0x042C, weeks from
    0x0430 and months from 0x0440, two ids a period, Delivered then Received."""
    most = CONSUMPTION_PERIODS.get(period)
    if most is None or not 0 <= back <= most:
        raise ValueError(f"no historical consumption attribute for {period} {back}")
    first: int
    if period == "day" and back == 1:
        first = MeteringAttribute.PREVIOUSDAY_CONSUMPTION_DELIVERED
    elif period == "day" and back:
        first = MeteringAttribute.PREVIOUS_DAY2_CONSUMPTION_DELIVERED + 2 * (back - 2)
    else:
        first = _CONSUMPTION_CURRENT[period] + 2 * back
    return first + int(received)


def cost_consumption_attribute(period: str, back: int, *, received: bool = False) -> int:
    """The id of a Historical Cost Consumption attribute (D.7.2.2.6): ``period`` "day",
    "week" or "month", ``back`` 0 for the current one, N for Previous Day/Week/Month N
    (Delivered, or Received with ``received``): two ids a period, Delivered then Received,
    as Wireshark 4.0 names them (0x051C-0x052D, 0x0530-0x053B, 0x0540-0x055B)."""
    most = COST_CONSUMPTION_PERIODS.get(period)
    if most is None or not 0 <= back <= most:
        raise ValueError(f"no cost consumption attribute for {period} {back}")
    return _COST_CURRENT[period] + 2 * back + int(received)


def debt_attribute(first: int, debt: int) -> int:
    """The id of a Debt set attribute (``first``: its debt-1 id) of debt 1-3."""
    if not 1 <= debt <= _DEBTS:
        raise ValueError(f"debt {debt} does not exist (1-{_DEBTS})")
    return first + 0x10 * (debt - 1)
