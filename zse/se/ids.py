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
    "DRLC",
    "ESI_DEVICE_ID",
    "IN_HOME_DISPLAY",
    "KEY_ESTABLISHMENT",
    "KE_SUITE_ATTRIBUTE",
    "LOAD_CONTROL_DEVICE",
    "MESSAGING",
    "METERING",
    "PRICE",
    "PROGRAMMABLE_THERMOSTAT",
    "SE_PROFILE_ID",
    "TIME",
    "DrlcAttribute",
    "DrlcClientCommand",
    "DrlcServerCommand",
    "KeyEstablishmentClientCommand",
    "KeyEstablishmentServerCommand",
    "MessagingClientCommand",
    "MessagingServerCommand",
    "PriceAttribute",
    "PriceClientCommand",
    "PriceServerCommand",
    "TimeAttribute",
    "block_price_attribute",
    "block_threshold_attribute",
    "tier_label_attribute",
]

#: The Smart Energy application profile id (SE 5.1).
SE_PROFILE_ID: Final = 0x0109

# --- Device ids (SE 5.7, table 5.13) -----------------------------------------------------------

#: Energy Service Interface.
ESI_DEVICE_ID: Final = 0x0500
#: Programmable Communicating Thermostat.
PROGRAMMABLE_THERMOSTAT: Final = 0x0501
#: Load Control Device.
LOAD_CONTROL_DEVICE: Final = 0x0504
#: In-Home Display.
IN_HOME_DISPLAY: Final = 0x0507

# --- Cluster ids (ZCL 3.2 / 3.12; SE Annex C.3, D.2-D.5) ------------------------------------------

#: Basic (ZCL 3.2).
BASIC: Final = 0x0000
#: Time (ZCL 3.12).
TIME: Final = 0x000A
#: Price (SE D.4).
PRICE: Final = 0x0700
#: Demand Response and Load Control (SE D.2).
DRLC: Final = 0x0701
#: Simple Metering (SE D.3).
METERING: Final = 0x0702
#: Messaging (SE D.5).
MESSAGING: Final = 0x0703
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


class PriceClientCommand(IntEnum):
    """Price commands the server sends (SE D.4.2.4)."""

    PUBLISH_PRICE = 0x00
    PUBLISH_BLOCK_PERIOD = 0x01
    PUBLISH_CONVERSION_FACTOR = 0x02
    PUBLISH_CALORIFIC_VALUE = 0x03


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


class PriceAttribute(IntEnum):
    """Price server attributes (SE 1.2 D.4.2.2): the first of each numbered run, and the Block
    Period (D.4.2.2.3) and Commodity (D.4.2.2.4) sets. The numbered runs are
    :func:`tier_label_attribute`, :func:`block_threshold_attribute` and
    :func:`block_price_attribute`; ids as Wireshark's Price dissector names them."""

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


#: Tier labels: tiers 1-48 (D.4.2.2.1, SE 1.2).
_MAX_LABELLED_TIER = 48
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


def block_threshold_attribute(block: int) -> int:
    """BlockNThreshold's id, block 1-15 (D.4.2.2.2)."""
    if not 1 <= block <= _MAX_THRESHOLD:
        raise ValueError(f"block {block} has no threshold attribute (1-{_MAX_THRESHOLD})")
    return PriceAttribute.BLOCK1_THRESHOLD + block - 1


def block_price_attribute(tier: int, block: int) -> int:
    """NoTierBlockNPrice (tier 0) or TierMBlockNPrice's id, tier 0-15, block 1-16
    (D.4.2.2.5): 16 ids per tier from NoTierBlock1Price."""
    if not 0 <= tier <= _MAX_PRICED_TIER or not 1 <= block <= _MAX_BLOCK:
        raise ValueError(f"tier {tier} block {block} has no price attribute (0-15, 1-16)")
    return PriceAttribute.NO_TIER_BLOCK1_PRICE + _MAX_BLOCK * tier + block - 1
