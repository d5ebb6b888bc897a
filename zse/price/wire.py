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

The other SE 1.2 commands, one publication each with its Get command: Publish CO2 Value,
Billing Period, Consolidated Bill, CPP Event (and the client's CPP Event Response), Credit
Payment and Currency Conversion (D.4.2.4.8, 10-14; D.4.2.3.9, 11-15), as Wireshark 4.0 reads
them.

The SE 1.2 tariff commands (D.4.2.4.5-7, 9, 15 and the Get commands D.4.2.3.7-8, 10, 16):
Publish Tariff Information, Publish Price Matrix, Publish Block Thresholds, Publish Tier
Labels and Cancel Tariff. The matrix, thresholds and labels may take several commands
(Command Index / Total Number of Commands); their repeating parts are
:class:`PriceMatrixEntries` (Tier/Block ID and Price, 5 octets each, to the end of the
payload), :class:`BlockThresholdSets` (a Tier/NumberOfBlockThresholds octet then that many
48-bit thresholds, to the end) and :class:`TierLabels` (Number of Labels sets of Tier ID and
an octet string). The SE 1.2 text was out of reach: the layouts are those Wireshark 4.0's
Price dissector reads (the oracle of the tests), zsmartsystems' ``0700_Price.xml`` and Silicon
Labs' price server (``price-server.c``, which builds the matrix and threshold sub-payloads).
"""

from __future__ import annotations

from typing import Any, Final, Self, cast

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.clusters.smartenergy import MeteringUnitofMeasure
from zigpy.zcl.foundation import (
    BaseAttributeDefs,
    BaseCommandDefs,
    CommandSchema,
    ZCLAttributeDef,
    ZCLCommandDef,
)

from zse.se.ids import (
    PRICE,
    PriceAttribute,
    PriceClientCommand,
    PriceServerCommand,
    block_price_attribute,
    block_threshold_attribute,
    credit_payment_attributes,
    received_block_threshold_attribute,
    received_tier_label_attribute,
    tier_label_attribute,
)
from zse.se.types import (
    AlternateCostUnit,
    BlockPeriodControl,
    BlockPeriodDurationType,
    CalorificValueUnit,
    CppAuth,
    GetCurrentPriceOptions,
    PriceAcknowledgementControl,
    PriceControl,
    TariffResolutionPeriod,
    TariffType,
)
from zse.zcl._defs import attribute, cluster_id, command

__all__ = [
    "PRICE_ATTRIBUTES",
    "BlockThresholdSets",
    "Price",
    "PriceMatrixEntries",
    "PublishTierLabels",
    "RateLabel",
    "TierLabel",
    "TierLabels",
]


class RateLabel(t.LVBytes):
    """Rate label, an octet string of up to 12 bytes (D.4.2.4.1.1.2)."""


#: Octets of one Price Matrix entry: Tier/Block ID (uint8) and Price (uint32).
_MATRIX_ENTRY = 5
#: Octets of one block threshold (uint48).
_THRESHOLD = 6


class PriceMatrixEntries(tuple[tuple[int, int], ...]):
    """The Price Matrix sub-payload (D.4.2.4.6.2.1): (Tier/Block ID, Price) pairs, 5 octets
    each, to the end of the payload. Sub-payload control bit 0 says how the id reads: 1, a
    TOU tier (1-48); 0, the tier in bits 4-7 (0 no tier) and the block less one in bits 0-3."""

    def __new__(cls, entries: Any = ()) -> Self:
        pairs = tuple((int(tier_block), int(price)) for tier_block, price in entries)
        for tier_block, price in pairs:
            if not 0 <= tier_block <= 0xFF or not 0 <= price <= 0xFFFFFFFF:
                raise ValueError(f"price matrix entry ({tier_block}, {price}) does not fit")
        return super().__new__(cls, pairs)

    def serialize(self) -> bytes:
        """Each entry: the id, then the price little-endian."""
        return b"".join(bytes((i,)) + p.to_bytes(4, "little") for i, p in self)

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        """Every entry to the end; ValueError if the octets left are not whole entries."""
        if len(data) % _MATRIX_ENTRY:
            raise ValueError(
                f"{len(data)} octets is not a whole number of {_MATRIX_ENTRY}-octet "
                "Tier/Block ID and Price entries"
            )
        entries = [
            (data[at], int.from_bytes(data[at + 1 : at + _MATRIX_ENTRY], "little"))
            for at in range(0, len(data), _MATRIX_ENTRY)
        ]
        return cls(entries), b""


class BlockThresholdSets(tuple[tuple[int, tuple[int, ...]], ...]):
    """The Block Thresholds sub-payload (D.4.2.4.7.2.1): sets of a Tier/NumberOfBlockThresholds
    octet (the tier in bits 4-7, 0 when sub-payload control bit 0 says the thresholds apply to
    every tier; the count, 0-15, in bits 0-3) and that many uint48 thresholds, to the end."""

    def __new__(cls, sets: Any = ()) -> Self:
        parsed = tuple((int(tier), tuple(int(v) for v in values)) for tier, values in sets)
        for tier, values in parsed:
            if not 0 <= tier <= 0x0F or len(values) > 0x0F:
                raise ValueError(f"tier {tier} with {len(values)} thresholds does not fit")
            if any(not 0 <= v < 1 << 48 for v in values):
                raise ValueError(f"a threshold of tier {tier} does not fit 48 bits")
        return super().__new__(cls, parsed)

    def serialize(self) -> bytes:
        """Each set: its tier and count octet, then the thresholds little-endian."""
        return b"".join(
            bytes(((tier << 4) | len(values),))
            + b"".join(v.to_bytes(_THRESHOLD, "little") for v in values)
            for tier, values in self
        )

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        """Every set to the end; ValueError for a set cut short."""
        sets: list[tuple[int, tuple[int, ...]]] = []
        at = 0
        while at < len(data):
            tier, count = data[at] >> 4, data[at] & 0x0F
            end = at + 1 + count * _THRESHOLD
            if end > len(data):
                raise ValueError(
                    f"the set at offset {at} announces {count} thresholds "
                    f"({count * _THRESHOLD} octets); {len(data) - at - 1} remain"
                )
            values = tuple(
                int.from_bytes(data[i : i + _THRESHOLD], "little")
                for i in range(at + 1, end, _THRESHOLD)
            )
            sets.append((tier, values))
            at = end
        return cls(sets), b""


class TierLabel(t.Struct):
    """One Tier ID and its label (D.4.2.4.9.2: an octet string of up to 12 octets)."""

    tier_id: t.uint8_t
    tier_label: t.LVBytes


class TierLabels(t.List[TierLabel]):
    """The labels of Publish Tier Labels: as many as its Number of Labels."""


def _labels(command: Any) -> int:
    return int(command.number_of_labels)


class PublishTierLabels(CommandSchema):
    """Publish Tier Labels (D.4.2.4.9): Number of Labels sets of Tier ID and Tier Label."""

    provider_id: t.uint32_t
    issuer_event_id: t.uint32_t
    issuer_tariff_id: t.uint32_t
    command_index: t.uint8_t
    total_number_of_commands: t.uint8_t
    number_of_labels: t.uint8_t
    tier_labels: TierLabels = t.StructField(length=_labels)  # type: ignore[assignment]


#: Publish Billing Period (D.4.2.4.10), and the start of Publish Consolidated Bill (.11).
_BILLING_PERIOD: Final = {
    "provider_id": t.uint32_t,
    "issuer_event_id": t.uint32_t,
    "billing_period_start_time": t.UTCTime,
    "billing_period_duration": t.uint24_t,
    "billing_period_duration_type": t.bitmap8,
    "tariff_type": TariffType,
}

#: The header every part of Publish Price Matrix / Block Thresholds carries (D.4.2.4.6-7).
_MULTIPART_HEADER: Final = {
    "provider_id": t.uint32_t,
    "issuer_event_id": t.uint32_t,
    "start_time": t.UTCTime,
    "issuer_tariff_id": t.uint32_t,
    "command_index": t.uint8_t,
    "total_number_of_commands": t.uint8_t,
    "sub_payload_control": t.bitmap8,
}


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
        # SE 1.2 Tariff Information and Billing Information (delivered); types as DSR ZBOSS's
        # documentation of the sets gives them (the spec text was out of reach)
        tariff_label=attribute(PriceAttribute.TARIFF_LABEL, t.LVBytes, "r"),
        number_of_price_tiers_in_use=attribute(
            PriceAttribute.NUMBER_OF_PRICE_TIERS_IN_USE, t.uint8_t, "r"
        ),
        number_of_block_thresholds_in_use=attribute(
            PriceAttribute.NUMBER_OF_BLOCK_THRESHOLDS_IN_USE, t.uint8_t, "r"
        ),
        tier_block_mode=attribute(PriceAttribute.TIER_BLOCK_MODE, t.enum8, "r"),
        unit_of_measure=attribute(PriceAttribute.UNIT_OF_MEASURE, t.enum8, "r"),
        currency=attribute(PriceAttribute.CURRENCY, t.uint16_t, "r"),
        price_trailing_digit=attribute(PriceAttribute.PRICE_TRAILING_DIGIT, t.bitmap8, "r"),
        tariff_resolution_period=attribute(
            PriceAttribute.TARIFF_RESOLUTION_PERIOD, TariffResolutionPeriod, "r"
        ),
        co2=attribute(PriceAttribute.CO2, t.uint32_t, "r"),
        co2_unit=attribute(PriceAttribute.CO2_UNIT, t.enum8, "r"),
        co2_trailing_digit=attribute(PriceAttribute.CO2_TRAILING_DIGIT, t.bitmap8, "r"),
        current_billing_period_start=attribute(
            PriceAttribute.CURRENT_BILLING_PERIOD_START, t.UTCTime, "r"
        ),
        current_billing_period_duration=attribute(
            PriceAttribute.CURRENT_BILLING_PERIOD_DURATION, t.uint24_t, "r"
        ),
        last_billing_period_start=attribute(
            PriceAttribute.LAST_BILLING_PERIOD_START, t.UTCTime, "r"
        ),
        last_billing_period_duration=attribute(
            PriceAttribute.LAST_BILLING_PERIOD_DURATION, t.uint24_t, "r"
        ),
        last_billing_period_consolidated_bill=attribute(
            PriceAttribute.LAST_BILLING_PERIOD_CONSOLIDATED_BILL, t.uint32_t, "r"
        ),
    )
    defs.update(_credit_and_received_attributes())
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


def _credit_and_received_attributes() -> dict[str, ZCLAttributeDef]:
    """The SE 1.2 Credit Payment set and the received sets (0x8xxx), by zigpy-style name;
    types as zsmartsystems' ``0700_Price.xml`` gives them (CreditPaymentOverDueAmount a
    signed 32-bit integer), a received attribute of the same type as its delivered
    counterpart where that file differs from it (ReceivedTierBlockMode an enum8)."""
    defs = {
        "credit_payment_due_date": attribute(
            PriceAttribute.CREDIT_PAYMENT_DUE_DATE, t.UTCTime, "r"
        ),
        "credit_payment_status": attribute(PriceAttribute.CREDIT_PAYMENT_STATUS, t.enum8, "r"),
        "credit_payment_overdue_amount": attribute(
            PriceAttribute.CREDIT_PAYMENT_OVERDUE_AMOUNT, t.int32s, "r"
        ),
    }
    for number in range(1, 6):
        payment, date, ref = credit_payment_attributes(number)
        defs[f"credit_payment{number}"] = attribute(payment, t.uint32_t, "r")
        defs[f"credit_payment_date{number}"] = attribute(date, t.UTCTime, "r")
        defs[f"credit_payment_ref{number}"] = attribute(ref, t.LVBytes, "r")
    defs.update(
        (
            f"received_tier{tier}_price_label",
            attribute(received_tier_label_attribute(tier), t.LVBytes, "r"),
        )
        for tier in range(1, 49)
    )
    defs.update(
        (
            f"received_block{block}_threshold",
            attribute(received_block_threshold_attribute(block), t.uint48_t, "r"),
        )
        for block in range(1, 16)
    )
    received: dict[str, tuple[int, type]] = {
        "received_start_of_block_period": (
            PriceAttribute.RECEIVED_START_OF_BLOCK_PERIOD,
            t.UTCTime,
        ),
        "received_block_period_duration": (
            PriceAttribute.RECEIVED_BLOCK_PERIOD_DURATION,
            t.uint24_t,
        ),
        "received_threshold_multiplier": (PriceAttribute.RECEIVED_THRESHOLD_MULTIPLIER, t.uint24_t),
        "received_threshold_divisor": (PriceAttribute.RECEIVED_THRESHOLD_DIVISOR, t.uint24_t),
        "received_tariff_label": (PriceAttribute.RECEIVED_TARIFF_LABEL, t.LVBytes),
        "received_number_of_price_tiers_in_use": (
            PriceAttribute.RECEIVED_NUMBER_OF_PRICE_TIERS_IN_USE,
            t.uint8_t,
        ),
        "received_number_of_block_thresholds_in_use": (
            PriceAttribute.RECEIVED_NUMBER_OF_BLOCK_THRESHOLDS_IN_USE,
            t.uint8_t,
        ),
        "received_tier_block_mode": (PriceAttribute.RECEIVED_TIER_BLOCK_MODE, t.enum8),
        "received_tariff_resolution_period": (
            PriceAttribute.RECEIVED_TARIFF_RESOLUTION_PERIOD,
            TariffResolutionPeriod,
        ),
        "received_co2": (PriceAttribute.RECEIVED_CO2, t.uint32_t),
        "received_co2_unit": (PriceAttribute.RECEIVED_CO2_UNIT, t.enum8),
        "received_co2_trailing_digit": (PriceAttribute.RECEIVED_CO2_TRAILING_DIGIT, t.bitmap8),
        "received_current_billing_period_start": (
            PriceAttribute.RECEIVED_CURRENT_BILLING_PERIOD_START,
            t.UTCTime,
        ),
        "received_current_billing_period_duration": (
            PriceAttribute.RECEIVED_CURRENT_BILLING_PERIOD_DURATION,
            t.uint24_t,
        ),
        "received_last_billing_period_start": (
            PriceAttribute.RECEIVED_LAST_BILLING_PERIOD_START,
            t.UTCTime,
        ),
        "received_last_billing_period_duration": (
            PriceAttribute.RECEIVED_LAST_BILLING_PERIOD_DURATION,
            t.uint24_t,
        ),
        "received_last_billing_period_consolidated_bill": (
            PriceAttribute.RECEIVED_LAST_BILLING_PERIOD_CONSOLIDATED_BILL,
            t.uint32_t,
        ),
    }
    defs.update((name, attribute(attr, type_, "r")) for name, (attr, type_) in received.items())
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
        get_tariff_information: Final = command(
            PriceServerCommand.GET_TARIFF_INFORMATION,
            {**_GET_COMMODITY_VALUES, "tariff_type": TariffType},
        )
        get_price_matrix: Final = command(
            PriceServerCommand.GET_PRICE_MATRIX, {"issuer_tariff_id": t.uint32_t}
        )
        get_block_thresholds: Final = command(
            PriceServerCommand.GET_BLOCK_THRESHOLDS, {"issuer_tariff_id": t.uint32_t}
        )
        get_tier_labels: Final = command(
            PriceServerCommand.GET_TIER_LABELS, {"issuer_tariff_id": t.uint32_t}
        )
        get_tariff_cancellation: Final = command(PriceServerCommand.GET_TARIFF_CANCELLATION, {})
        get_co2_value: Final = command(
            PriceServerCommand.GET_CO2_VALUE, {**_GET_COMMODITY_VALUES, "tariff_type": TariffType}
        )
        get_billing_period: Final = command(
            PriceServerCommand.GET_BILLING_PERIOD,
            {**_GET_COMMODITY_VALUES, "tariff_type": TariffType},
        )
        get_consolidated_bill: Final = command(
            PriceServerCommand.GET_CONSOLIDATED_BILL,
            {**_GET_COMMODITY_VALUES, "tariff_type": TariffType},
        )
        cpp_event_response: Final = command(
            PriceServerCommand.CPP_EVENT_RESPONSE,
            {"issuer_event_id": t.uint32_t, "cpp_auth": CppAuth},
        )
        get_credit_payment: Final = command(
            PriceServerCommand.GET_CREDIT_PAYMENT,
            {"latest_end_time": t.UTCTime, "number_of_records": t.uint8_t},
        )
        get_currency_conversion: Final = command(PriceServerCommand.GET_CURRENCY_CONVERSION, {})

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
        publish_tariff_information: Final = command(
            PriceClientCommand.PUBLISH_TARIFF_INFORMATION,
            {
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "issuer_tariff_id": t.uint32_t,
                "start_time": t.UTCTime,
                "tariff_type_charging_scheme": t.bitmap8,
                "tariff_label": t.LVBytes,
                "number_of_price_tiers_in_use": t.uint8_t,
                "number_of_block_thresholds_in_use": t.uint8_t,
                "unit_of_measure": t.enum8,
                "currency": t.uint16_t,
                "price_trailing_digit": t.bitmap8,
                "standing_charge": t.uint32_t,
                "tier_block_mode": t.uint8_t,
                "block_threshold_multiplier": t.uint24_t,
                "block_threshold_divisor": t.uint24_t,
            },
        )
        publish_price_matrix: Final = command(
            PriceClientCommand.PUBLISH_PRICE_MATRIX,
            {**_MULTIPART_HEADER, "entries": PriceMatrixEntries},
        )
        publish_block_thresholds: Final = command(
            PriceClientCommand.PUBLISH_BLOCK_THRESHOLDS,
            {**_MULTIPART_HEADER, "threshold_sets": BlockThresholdSets},
        )
        publish_tier_labels: Final = ZCLCommandDef(
            id=cast(t.uint8_t, PriceClientCommand.PUBLISH_TIER_LABELS), schema=PublishTierLabels
        )
        cancel_tariff: Final = command(
            PriceClientCommand.CANCEL_TARIFF,
            {"provider_id": t.uint32_t, "issuer_tariff_id": t.uint32_t, "tariff_type": TariffType},
        )
        publish_co2_value: Final = command(
            PriceClientCommand.PUBLISH_CO2_VALUE,
            {
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "tariff_type": TariffType,
                "co2_value": t.uint32_t,
                "co2_value_unit": t.enum8,
                "co2_value_trailing_digit": t.bitmap8,
            },
        )
        publish_billing_period: Final = command(
            PriceClientCommand.PUBLISH_BILLING_PERIOD, _BILLING_PERIOD
        )
        publish_consolidated_bill: Final = command(
            PriceClientCommand.PUBLISH_CONSOLIDATED_BILL,
            {
                **_BILLING_PERIOD,
                "consolidated_bill": t.uint32_t,
                "currency": t.uint16_t,
                "bill_trailing_digit": t.bitmap8,
            },
        )
        publish_cpp_event: Final = command(
            PriceClientCommand.PUBLISH_CPP_EVENT,
            {
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "duration_in_minutes": t.uint16_t,
                "tariff_type": TariffType,
                "cpp_price_tier": t.enum8,
                "cpp_auth": CppAuth,
            },
        )
        publish_credit_payment: Final = command(
            PriceClientCommand.PUBLISH_CREDIT_PAYMENT,
            {
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "credit_payment_due_date": t.UTCTime,
                "credit_payment_overdue_amount": t.uint32_t,
                "credit_payment_status": t.enum8,
                "credit_payment": t.uint32_t,
                "credit_payment_date": t.UTCTime,
                "credit_payment_ref": t.LVBytes,
            },
        )
        publish_currency_conversion: Final = command(
            PriceClientCommand.PUBLISH_CURRENCY_CONVERSION,
            {
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "old_currency": t.uint16_t,
                "new_currency": t.uint16_t,
                "conversion_factor": t.uint32_t,
                "conversion_factor_trailing_digit": t.bitmap8,
                "currency_change_control_flags": t.bitmap32,
            },
        )
