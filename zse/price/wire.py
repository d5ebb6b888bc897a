"""Price cluster, 0x0700 (SE D.4): the essentials an ESI and an in-home display need.

Publish Price is declared in its SE 1.0 short form (up to Price) followed by every later
trailer as "present if bytes remain": price ratio and generation price (SE 1.0 optional),
alternate cost, block thresholds and price control (SE 1.1), generation and extended tiers
(SE 1.2). Decoding keeps whatever is present; encoding writes fields up to the last one given.
"""

from __future__ import annotations

from typing import Final

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import BaseCommandDefs

from zse.se.ids import PRICE, PriceClientCommand, PriceServerCommand
from zse.se.types import (
    AlternateCostUnit,
    GetCurrentPriceOptions,
    PriceAcknowledgementControl,
    PriceControl,
)
from zse.zcl._defs import cluster_id, command

__all__ = ["Price", "RateLabel"]


class RateLabel(t.LVBytes):
    """Rate label, an octet string of up to 12 bytes (D.4.2.4.1.1.2)."""


class Price(Cluster):
    """Price (SE D.4); attach explicitly, it is not in zigpy's registry."""

    cluster_id = cluster_id(PRICE)
    name = "Price"
    ep_attribute = "smartenergy_price"
    _skip_registry = True

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

    class ClientCommandDefs(BaseCommandDefs):
        """Commands the ESI sends (D.4.2.4)."""

        publish_price: Final = command(
            PriceClientCommand.PUBLISH_PRICE,
            {
                "provider_id": t.uint32_t,
                "rate_label": RateLabel,
                "issuer_event_id": t.uint32_t,
                "current_time": t.UTCTime,
                "unit_of_measure": t.enum8,
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
