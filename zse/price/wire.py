"""Price cluster, 0x0700 (SE D.4): the essentials an ESI and an in-home display need.

Publish Price is declared in its SE 1.0 short form (up to Price) followed by every later
trailer as "present if bytes remain": price ratio and generation price (SE 1.0 optional),
alternate cost, block thresholds and price control (SE 1.1), generation and extended tiers
(SE 1.2). Decoding keeps whatever is present; encoding writes fields up to the last one given.

The SE 1.1/1.2 block-pricing essentials: Publish Block Period in its SE 1.2 form (D.4.2.4.2;
SE 1.1 carried a tiers/thresholds octet where SE 1.2 has the control and appends duration
type, tariff type and resolution period; Wireshark reads the SE 1.2 form), Publish
Conversion Factor (D.4.2.4.3) and Publish Calorific Value (D.4.2.4.4), the Get commands
that ask for them (D.4.2.3.4-6), and the server attribute sets a display prices a block
tariff with (D.4.2.2): tier labels, block thresholds, block period, commodity and block
prices, with the SE 1.2 attribute ids (:class:`zse.se.ids.PriceAttribute`).
"""

from __future__ import annotations

from typing import Final

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.clusters.smartenergy import MeteringUnitofMeasure
from zigpy.zcl.foundation import BaseAttributeDefs, BaseCommandDefs, ZCLAttributeDef

from zse.se.ids import (
    PRICE,
    PriceAttribute,
    PriceClientCommand,
    PriceServerCommand,
    block_price_attribute,
    block_threshold_attribute,
    tier_label_attribute,
)
from zse.se.types import (
    AlternateCostUnit,
    BlockPeriodControl,
    BlockPeriodDurationType,
    CalorificValueUnit,
    GetCurrentPriceOptions,
    PriceAcknowledgementControl,
    PriceControl,
    TariffResolutionPeriod,
    TariffType,
)
from zse.zcl._defs import attribute, cluster_id, command

__all__ = ["PRICE_ATTRIBUTES", "Price", "RateLabel"]


class RateLabel(t.LVBytes):
    """Rate label, an octet string of up to 12 bytes (D.4.2.4.1.1.2)."""


def _attributes() -> dict[str, ZCLAttributeDef]:
    """The Price server attributes zse serves (D.4.2.2), by zigpy-style name."""
    defs = {
        f"tier{tier}_price_label": attribute(tier_label_attribute(tier), t.LVBytes, "r")
        for tier in range(1, 49)
    }
    defs.update(
        (f"block{block}_threshold", attribute(block_threshold_attribute(block), t.uint48_t, "r"))
        for block in range(1, 16)
    )
    defs.update(
        block_threshold_count=attribute(PriceAttribute.BLOCK_THRESHOLD_COUNT, t.uint8_t, "r"),
        start_of_block_period=attribute(PriceAttribute.START_OF_BLOCK_PERIOD, t.UTCTime, "r"),
        block_period_duration=attribute(PriceAttribute.BLOCK_PERIOD_DURATION, t.uint24_t, "r"),
        threshold_multiplier=attribute(PriceAttribute.THRESHOLD_MULTIPLIER, t.uint24_t, "r"),
        threshold_divisor=attribute(PriceAttribute.THRESHOLD_DIVISOR, t.uint24_t, "r"),
        block_period_duration_type=attribute(
            PriceAttribute.BLOCK_PERIOD_DURATION_TYPE, BlockPeriodDurationType, "r"
        ),
        commodity_type=attribute(PriceAttribute.COMMODITY_TYPE, t.enum8, "r"),
        standing_charge=attribute(PriceAttribute.STANDING_CHARGE, t.uint32_t, "r"),
        conversion_factor=attribute(PriceAttribute.CONVERSION_FACTOR, t.uint32_t, "r"),
        conversion_factor_trailing_digit=attribute(
            PriceAttribute.CONVERSION_FACTOR_TRAILING_DIGIT, t.bitmap8, "r"
        ),
        calorific_value=attribute(PriceAttribute.CALORIFIC_VALUE, t.uint32_t, "r"),
        calorific_value_unit=attribute(
            PriceAttribute.CALORIFIC_VALUE_UNIT, CalorificValueUnit, "r"
        ),
        calorific_value_trailing_digit=attribute(
            PriceAttribute.CALORIFIC_VALUE_TRAILING_DIGIT, t.bitmap8, "r"
        ),
    )
    for tier in range(16):
        prefix = "no_tier" if tier == 0 else f"tier{tier}"
        defs.update(
            (
                f"{prefix}_block{block}_price",
                attribute(block_price_attribute(tier, block), t.uint32_t, "r"),
            )
            for block in range(1, 17)
        )
    return defs


#: Every Price server attribute definition zse knows, by name (D.4.2.2).
PRICE_ATTRIBUTES: Final = _attributes()


#: Get Conversion Factor and Get Calorific Value (D.4.2.3.5, D.4.2.3.6).
_GET_COMMODITY_VALUES: Final = {
    "earliest_start_time": t.UTCTime,
    "min_issuer_event_id": t.uint32_t,
    "number_of_commands": t.uint8_t,
}


class Price(Cluster):
    """Price (SE D.4); attach explicitly, it is not in zigpy's registry."""

    cluster_id = cluster_id(PRICE)
    name = "Price"
    ep_attribute = "smartenergy_price"
    _skip_registry = True

    #: The server attributes (D.4.2.2), built from :data:`PRICE_ATTRIBUTES`.
    AttributeDefs = type("AttributeDefs", (BaseAttributeDefs,), dict(PRICE_ATTRIBUTES))  # type: ignore[assignment]

    class ServerCommandDefs(BaseCommandDefs):
        """Commands the ESI receives (D.4.2.3)."""

        get_current_price: Final = command(
            PriceServerCommand.GET_CURRENT_PRICE, {"command_options": GetCurrentPriceOptions}
        )
        get_scheduled_prices: Final = command(
            PriceServerCommand.GET_SCHEDULED_PRICES,
            {"start_time": t.UTCTime, "number_of_events": t.uint8_t},
        )
        price_acknowledgement: Final = command(
            PriceServerCommand.PRICE_ACKNOWLEDGEMENT,
            {
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "price_ack_time": t.UTCTime,
                "control": PriceAcknowledgementControl,
            },
        )
        get_block_periods: Final = command(
            PriceServerCommand.GET_BLOCK_PERIODS,
            {"start_time": t.UTCTime, "number_of_events": t.uint8_t, "tariff_type?": TariffType},
        )
        get_conversion_factor: Final = command(
            PriceServerCommand.GET_CONVERSION_FACTOR, _GET_COMMODITY_VALUES
        )
        get_calorific_value: Final = command(
            PriceServerCommand.GET_CALORIFIC_VALUE, _GET_COMMODITY_VALUES
        )

    class ClientCommandDefs(BaseCommandDefs):
        """Commands the ESI sends (D.4.2.4)."""

        publish_price: Final = command(
            PriceClientCommand.PUBLISH_PRICE,
            {
                "provider_id": t.uint32_t,
                "rate_label": RateLabel,
                "issuer_event_id": t.uint32_t,
                "current_time": t.UTCTime,
                "unit_of_measure": MeteringUnitofMeasure,  # D.4.2.4.1.1.5: D.3's enumeration
                "currency": t.uint16_t,
                "price_trailing_digit_and_price_tier": t.uint8_t,
                "number_of_price_tiers_and_register_tier": t.uint8_t,
                "start_time": t.UTCTime,
                "duration_in_minutes": t.uint16_t,
                "price": t.uint32_t,
                "price_ratio?": t.uint8_t,
                "generation_price?": t.uint32_t,
                "generation_price_ratio?": t.uint8_t,
                "alternate_cost_delivered?": t.uint32_t,
                "alternate_cost_unit?": AlternateCostUnit,
                "alternate_cost_trailing_digit?": t.uint8_t,
                "number_of_block_thresholds?": t.uint8_t,
                "price_control?": PriceControl,
                "number_of_generation_tiers?": t.uint8_t,
                "generation_tier?": t.uint8_t,
                "extended_number_of_price_tiers?": t.uint8_t,
                "extended_price_tier?": t.uint8_t,
                "extended_register_tier?": t.uint8_t,
            },
        )
        publish_block_period: Final = command(
            PriceClientCommand.PUBLISH_BLOCK_PERIOD,
            {
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "block_period_start_time": t.UTCTime,
                "block_period_duration": t.uint24_t,
                "block_period_control": BlockPeriodControl,
                "block_period_duration_type": BlockPeriodDurationType,
                "tariff_type": TariffType,
                "tariff_resolution_period": TariffResolutionPeriod,
            },
        )
        publish_conversion_factor: Final = command(
            PriceClientCommand.PUBLISH_CONVERSION_FACTOR,
            {
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "conversion_factor": t.uint32_t,
                "conversion_factor_trailing_digit": t.uint8_t,
            },
        )
        publish_calorific_value: Final = command(
            PriceClientCommand.PUBLISH_CALORIFIC_VALUE,
            {
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "calorific_value": t.uint32_t,
                "calorific_value_unit": CalorificValueUnit,
                "calorific_value_trailing_digit": t.uint8_t,
            },
        )
