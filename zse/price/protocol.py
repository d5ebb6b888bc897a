"""Price at the ZCL frame (SE D.4): the sans-IO protocol cores of the server and the client.

:class:`PriceServerProtocol` is the ESI's side: it publishes prices (Publish Price to a device,
a group or a broadcast, D.4.2.4.1), answers Get Current Price (the price in force, or
NOT_FOUND, D.4.2.3.1) and Get Scheduled Prices (D.4.2.3.2), and takes Price Acknowledgement
(D.4.2.3.3); a Get Current Price is heard as a :class:`CurrentPriceRequested` event too, with
the requestor's "Rx On When Idle" bit for the application's publishing policy.
:class:`PriceClientProtocol` is a device's side: it records Publish Price into
its :class:`~zse.price.PriceSchedule` and acknowledges one whose Price Control asks for it
(D.4.2.4.1.1.19), unicast, group or broadcast, once (a repeat is not acknowledged, nor a
price that ended before it arrived); it builds the Get Current Price request its shell sends.

SE 1.1/1.2 block pricing: the server publishes block periods, conversion factors and
calorific values (D.4.2.4.2-4) and answers Get Block Periods, Get Conversion Factor and Get
Calorific Value (D.4.2.3.4-6) with them, or NOT_FOUND; its :class:`~zse.price.PriceAttributes`
and the values in force make the attributes Read Attributes is answered from
(:meth:`PriceServerProtocol.attribute_values`). The client keeps what it receives
(a :class:`PriceValueReceived` event) and acknowledges a block period whose control asks
for it.

SE 1.2 tariffs (D.4.2.4.5-7, 9, 15): the server publishes a tariff's information, price
matrix, block thresholds and tier labels (:meth:`PriceServerProtocol.publish_tariff`; a
matrix, thresholds or labels too long for one frame go in several commands), cancels a tariff
(Cancel Tariff) and answers Get Tariff Information, Get Price Matrix, Get Block Thresholds,
Get Tier Labels and Get Tariff Cancellation (D.4.2.3.7-8, 10, 16), or NOT_FOUND. The client
keeps them in its :class:`~zse.price.Tariffs`, puts the parts of a matrix back together
(:class:`TariffReceived` once whole), and forgets a cancelled tariff (:class:`TariffCancelled`).

Both satisfy :class:`zse.zcl.frame.FrameCore`: ``receive(msg, command, now)`` takes a frame
whose payload the shell decoded with :mod:`zse.price.wire` and returns a
:class:`~zse.zcl.frame.Step` (frames to send, events, Default Response status).
:meth:`~PriceServerProtocol.screen` says which frames are refused before their payload is
decoded. The server's ``next_deadline()`` is when something it holds next ends (what its
shell then deletes from its store); the client's is always None. ``now`` is ZigBee
UTCTime (seconds since 2000-01-01 UTC). Nothing here reads a clock or does I/O;
:mod:`zse.price.service` is the asyncio shell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import zigpy.types as t
from zigpy.zcl import foundation

from zse.errors import InvalidFrame
from zse.price.core import (
    MAX_OVERDUE_AMOUNT,
    PRICE_VALUE_KINDS,
    BillingPeriod,
    BlockPeriod,
    BlockPeriods,
    BlockThresholds,
    ByTariffType,
    CalorificValue,
    Co2Value,
    ConsolidatedBill,
    ConversionFactor,
    CppEvent,
    CreditPayment,
    CreditPayments,
    CurrencyConversion,
    InForce,
    PartOutcome,
    PriceAttributes,
    PriceEvent,
    PriceMatrix,
    PriceSchedule,
    Published,
    TariffCancellation,
    TariffInformation,
    TariffPart,
    Tariffs,
    TariffValue,
    TierLabels,
)
from zse.price.records import PriceStores, records, restore
from zse.price.wire import Price, TierLabel
from zse.records import RecordError
from zse.se.ids import PRICE, PriceClientCommand, PriceServerCommand
from zse.se.types import GetCurrentPriceOptions, PriceAcknowledgementControl
from zse.zcl.codec import encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage

__all__ = [
    "CLIENT_PRICES",
    "CppEventResponded",
    "CurrentPriceRequested",
    "PriceAcknowledged",
    "PriceClientProtocol",
    "PriceReceived",
    "PriceServerProtocol",
    "PriceValue",
    "PriceValueReceived",
    "TariffCancelled",
    "TariffReceived",
    "attribute_type_id",
    "publish_payload",
    "publish_price_payload",
    "tariff_information_payload",
    "tariff_part_payload",
]

LOGGER = logging.getLogger(__name__)

_PUBLISH_PRICE: Final = PriceClientCommand.PUBLISH_PRICE
_GET_CURRENT_PRICE: Final = PriceServerCommand.GET_CURRENT_PRICE
_GET_SCHEDULED_PRICES: Final = PriceServerCommand.GET_SCHEDULED_PRICES
_PRICE_ACKNOWLEDGEMENT: Final = PriceServerCommand.PRICE_ACKNOWLEDGEMENT
_GET_BLOCK_PERIODS: Final = PriceServerCommand.GET_BLOCK_PERIODS
_GET_CONVERSION_FACTOR: Final = PriceServerCommand.GET_CONVERSION_FACTOR
_GET_CALORIFIC_VALUE: Final = PriceServerCommand.GET_CALORIFIC_VALUE
_GET_TARIFF_INFORMATION: Final = PriceServerCommand.GET_TARIFF_INFORMATION
_GET_PRICE_MATRIX: Final = PriceServerCommand.GET_PRICE_MATRIX
_GET_BLOCK_THRESHOLDS: Final = PriceServerCommand.GET_BLOCK_THRESHOLDS
_GET_TIER_LABELS: Final = PriceServerCommand.GET_TIER_LABELS
_GET_TARIFF_CANCELLATION: Final = PriceServerCommand.GET_TARIFF_CANCELLATION
_PUBLISH_TARIFF_INFORMATION: Final = PriceClientCommand.PUBLISH_TARIFF_INFORMATION
_CANCEL_TARIFF: Final = PriceClientCommand.CANCEL_TARIFF
#: Each part's Publish command (D.4.2.4.6-7, 9), and back.
_PART_COMMANDS: Final[dict[type[Any], int]] = {
    PriceMatrix: PriceClientCommand.PUBLISH_PRICE_MATRIX,
    BlockThresholds: PriceClientCommand.PUBLISH_BLOCK_THRESHOLDS,
    TierLabels: PriceClientCommand.PUBLISH_TIER_LABELS,
}
_PART_KINDS: Final[dict[int, type[Any]]] = {
    command: kind for kind, command in _PART_COMMANDS.items()
}
#: Get Price Matrix / Block Thresholds / Tier Labels -> what they ask for (D.4.2.3.8, 10).
_GET_PARTS: Final[dict[int, type[Any]]] = {
    _GET_PRICE_MATRIX: PriceMatrix,
    _GET_BLOCK_THRESHOLDS: BlockThresholds,
    _GET_TIER_LABELS: TierLabels,
}
#: The Default Response to a part the client did not keep, as to a price not taken.
_PART_STATUS: Final = {
    PartOutcome.REPEAT: foundation.Status.DUPLICATE_EXISTS,
    PartOutcome.UNKNOWN_TARIFF: foundation.Status.NOT_FOUND,
    PartOutcome.OLDER: foundation.Status.FAILURE,
    PartOutcome.INCONSISTENT: foundation.Status.INVALID_FIELD,
    PartOutcome.INVALID: foundation.Status.INVALID_FIELD,
    PartOutcome.FULL: foundation.Status.INSUFFICIENT_SPACE,
}
#: The tariff commands a client takes from a server.
_TARIFF_PUBLISHED: Final = frozenset({_PUBLISH_TARIFF_INFORMATION, _CANCEL_TARIFF, *_PART_KINDS})
#: Min Issuer Event ID "not used": any (D.4.2.3.5.1.2).
_ANY_EVENT: Final = 0xFFFFFFFF

#: A value a server publishes besides prices and tariffs: block pricing (D.4.2.4.2-4), and
#: SE 1.2's CO2 value, billing period, consolidated bill, CPP event, credit payment and
#: currency conversion (D.4.2.4.8, 10-14).
PriceValue = (
    BlockPeriod
    | ConversionFactor
    | CalorificValue
    | Co2Value
    | BillingPeriod
    | ConsolidatedBill
    | CppEvent
    | CreditPayment
    | CurrencyConversion
)
#: Each value's Publish command and its definition in the wire.
_PUBLISH: Final[dict[type[Any], tuple[int, Any]]] = {
    BlockPeriod: (
        PriceClientCommand.PUBLISH_BLOCK_PERIOD,
        Price.ClientCommandDefs.publish_block_period,
    ),
    ConversionFactor: (
        PriceClientCommand.PUBLISH_CONVERSION_FACTOR,
        Price.ClientCommandDefs.publish_conversion_factor,
    ),
    CalorificValue: (
        PriceClientCommand.PUBLISH_CALORIFIC_VALUE,
        Price.ClientCommandDefs.publish_calorific_value,
    ),
    Co2Value: (PriceClientCommand.PUBLISH_CO2_VALUE, Price.ClientCommandDefs.publish_co2_value),
    BillingPeriod: (
        PriceClientCommand.PUBLISH_BILLING_PERIOD,
        Price.ClientCommandDefs.publish_billing_period,
    ),
    ConsolidatedBill: (
        PriceClientCommand.PUBLISH_CONSOLIDATED_BILL,
        Price.ClientCommandDefs.publish_consolidated_bill,
    ),
    CppEvent: (PriceClientCommand.PUBLISH_CPP_EVENT, Price.ClientCommandDefs.publish_cpp_event),
    CreditPayment: (
        PriceClientCommand.PUBLISH_CREDIT_PAYMENT,
        Price.ClientCommandDefs.publish_credit_payment,
    ),
    CurrencyConversion: (
        PriceClientCommand.PUBLISH_CURRENCY_CONVERSION,
        Price.ClientCommandDefs.publish_currency_conversion,
    ),
}
#: A Get command -> the kind of value it asks for, for those asked by earliest start time,
#: minimum issuer event id, number of commands and tariff type (D.4.2.3.9, 11, 12).
_GET_TYPED: Final[dict[int, type[Any]]] = {
    PriceServerCommand.GET_CO2_VALUE: Co2Value,
    PriceServerCommand.GET_BILLING_PERIOD: BillingPeriod,
    PriceServerCommand.GET_CONSOLIDATED_BILL: ConsolidatedBill,
}
_GET_CREDIT_PAYMENT: Final = PriceServerCommand.GET_CREDIT_PAYMENT
_GET_CURRENCY_CONVERSION: Final = PriceServerCommand.GET_CURRENCY_CONVERSION
_CPP_EVENT_RESPONSE: Final = PriceServerCommand.CPP_EVENT_RESPONSE
#: A Publish command the client takes -> the value it carries.
_RECEIVED: Final[dict[int, type[Any]]] = {command: kind for kind, (command, _) in _PUBLISH.items()}
#: The prices a device's client keeps at most (:attr:`PriceSchedule.limit`), as the
#: inter-PAN client does (:class:`zse.interpan.se_core.SeClientCore`, ``max_prices``).
CLIENT_PRICES: Final = 16
#: Get Current Price command options: the requestor's receiver is on when idle (D.4.2.3.1.1).
_RX_ON_WHEN_IDLE: Final = GetCurrentPriceOptions.Requestor_Rx_On_When_Idle


@dataclass(frozen=True, kw_only=True)
class PriceAcknowledged:
    """A client acknowledged a price (Price Acknowledgement, D.4.2.3.3)."""

    source_nwk: int
    source_ieee: t.EUI64 | None
    provider_id: int
    issuer_event_id: int
    ack_time: int
    #: Which command is acknowledged (D.4.2.3.3.1.4): a price, a block period...
    control: int = PriceAcknowledgementControl.Price_Acknowledgement


@dataclass(frozen=True, kw_only=True)
class CurrentPriceRequested:
    """A device asked for the current price (Get Current Price, D.4.2.3.1), answered or
    not. ``rx_on_when_idle``: its Command Options bit 0, "Requestor Rx On When Idle"
    (D.4.2.3.1.1): set, it is likely to hear price broadcasts; the spec lets the server
    keep this about the requestor for its publishing policy (e.g. unicast to a sleepy
    device). The application decides; the server core keeps nothing."""

    source_nwk: int
    source_ieee: t.EUI64 | None
    rx_on_when_idle: bool


@dataclass(frozen=True, kw_only=True)
class CppEventResponded:
    """A client answered a CPP event (CPP Event Response, D.4.2.3.14): ``cpp_auth``
    Accepted (1) or Rejected (2), :class:`zse.se.types.CppAuth`."""

    source_nwk: int
    source_ieee: t.EUI64 | None
    issuer_event_id: int
    cpp_auth: int


@dataclass(frozen=True, kw_only=True)
class PriceValueReceived:
    """A client received a block period, conversion factor or calorific value; ``new`` is
    False for a repeat."""

    source_nwk: int
    value: PriceValue
    new: bool


@dataclass(frozen=True, kw_only=True)
class PriceReceived:
    """A client received a Publish Price; ``new`` is False for a repeat."""

    source_nwk: int
    price: PriceEvent
    new: bool


@dataclass(frozen=True, kw_only=True)
class TariffReceived:
    """A client received a tariff's information, or the last part of its price matrix,
    block thresholds or tier labels (the whole value, in force); ``new`` is False for a
    repeat of the tariff information."""

    source_nwk: int
    value: TariffInformation | TariffValue
    new: bool


@dataclass(frozen=True, kw_only=True)
class TariffCancelled:
    """A client received Cancel Tariff (D.4.2.4.15); ``held``: it held that tariff, now
    forgotten with its matrix, thresholds and labels."""

    source_nwk: int
    cancellation: TariffCancellation
    held: bool


def tariff_information_payload(information: TariffInformation) -> bytes:
    """Publish Tariff Information's payload (D.4.2.4.5)."""
    schema = Price.ClientCommandDefs.publish_tariff_information.schema
    return encode_command(schema(**information.to_fields()))


def tariff_part_payload(part: TariffPart) -> bytes:
    """The payload of a Publish Price Matrix, Block Thresholds or Tier Labels part."""
    fields = part.to_fields()
    if part.kind is TierLabels:
        fields["tier_labels"] = [
            TierLabel(tier_id=tier, tier_label=label) for tier, label in fields["tier_labels"]
        ]
    definition = Price.client_commands[_PART_COMMANDS[part.kind]]
    return encode_command(definition.schema(**fields))


def _tariff_sends(
    information: TariffInformation | None, parts: list[TariffPart], **where: Any
) -> tuple[Send, ...]:
    sends = []
    if information is not None:
        payload = tariff_information_payload(information)
        sends.append(
            Send(cluster_id=PRICE, command_id=_PUBLISH_TARIFF_INFORMATION, payload=payload, **where)
        )
    sends.extend(
        Send(
            cluster_id=PRICE,
            command_id=_PART_COMMANDS[part.kind],
            payload=tariff_part_payload(part),
            **where,
        )
        for part in parts
    )
    return tuple(sends)


def _sent_start(tariff: TariffInformation | None, value: TariffValue) -> int:
    """The start time the parts of ``value`` carry, published or answered: its own, or for
    one published for "now" its tariff's start as held (``absolute``)."""
    if value.start != 0 or tariff is None:
        return value.start
    return tariff.start_time


def _cancel_send(cancellation: TariffCancellation, **where: Any) -> Send:
    schema = Price.ClientCommandDefs.cancel_tariff.schema
    payload = encode_command(schema(**cancellation.to_fields()))
    return Send(cluster_id=PRICE, command_id=_CANCEL_TARIFF, payload=payload, **where)


def publish_price_payload(event: PriceEvent, now: int) -> bytes:
    """Publish Price's payload for ``event``, its Current Time ``now`` (D.4.2.4.1.1.4)."""
    schema = Price.ClientCommandDefs.publish_price.schema
    return encode_command(schema(**event.to_fields(now)))


def attribute_type_id(attr_id: int) -> int:
    """The ZCL data type id of a Price server attribute, from its wire definition."""
    python_type = Price.attributes[attr_id].type
    return int(foundation.DataType.from_python_type(python_type).type_id)


def publish_payload(value: PriceValue) -> bytes:
    """The payload of the Publish command that carries ``value`` (D.4.2.4.2-4)."""
    _, definition = _PUBLISH[type(value)]
    return encode_command(definition.schema(**value.to_fields()))


def _publish_value(value: PriceValue, **where: Any) -> Send:
    command_id, _ = _PUBLISH[type(value)]
    return Send(cluster_id=PRICE, command_id=command_id, payload=publish_payload(value), **where)


def _publish(event: PriceEvent, now: int, **where: Any) -> Send:
    return Send(
        cluster_id=PRICE,
        command_id=_PUBLISH_PRICE,
        payload=publish_price_payload(event, now),
        **where,
    )


#: Tariff Type bits 0-3 (SE 1.2 D.4.2.4.2.1.7): the delivered and the received tariff.
_DELIVERED_TARIFF = 0
_RECEIVED_TARIFF = 1


class _NothingTimed:
    """A client keeps no timer: prices start and end by the clock the schedule is asked at."""

    def next_deadline(self) -> int | None:
        """Always None."""
        return None

    def handle_timeout(self, now: int) -> Step:
        """Nothing is ever due."""
        return Step()


class _ValueStores:
    """The values each side keeps besides prices and tariffs, one store per kind: conversion
    factors, calorific values and currency conversions in :class:`~zse.price.Published`
    timelines (in force by start time, at most 16 each); block periods (their Tariff Type,
    D.4.2.4.2.1.7, which Get Block Periods selects by, D.4.2.3.4) and SE 1.2's CO2 values,
    billing periods, consolidated bills and CPP events in one such timeline per tariff type
    (:class:`~zse.price.ByTariffType`), as the tariffs, a block period also over at its
    end (:class:`~zse.price.BlockPeriods`); credit payments by date
    (:class:`~zse.price.CreditPayments`)."""

    def _make_stores(self) -> None:
        self.block_periods: ByTariffType[BlockPeriod] = ByTariffType(timeline=BlockPeriods)
        self.conversion_factors: Published[ConversionFactor] = Published()
        self.calorific_values: Published[CalorificValue] = Published()
        self.co2_values: ByTariffType[Co2Value] = ByTariffType()
        self.billing_periods: ByTariffType[BillingPeriod] = ByTariffType()
        self.consolidated_bills: ByTariffType[ConsolidatedBill] = ByTariffType()
        self.cpp_events: ByTariffType[CppEvent] = ByTariffType()
        self.credit_payments = CreditPayments()
        self.currency_conversions: Published[CurrencyConversion] = Published()

    def store_of(self, kind: type[Any]) -> Any:
        """The store of a kind of value (:data:`PriceValue`)."""
        return {
            BlockPeriod: self.block_periods,
            ConversionFactor: self.conversion_factors,
            CalorificValue: self.calorific_values,
            Co2Value: self.co2_values,
            BillingPeriod: self.billing_periods,
            ConsolidatedBill: self.consolidated_bills,
            CppEvent: self.cpp_events,
            CreditPayment: self.credit_payments,
            CurrencyConversion: self.currency_conversions,
        }[kind]


class PriceServerProtocol(_ValueStores):
    """The ESI's Price server (SE D.4.2) at the ZCL frame; ``schedule`` is what it knows."""

    def __init__(self, schedule: PriceSchedule | None = None) -> None:
        self.schedule = PriceSchedule() if schedule is None else schedule
        self._make_stores()
        #: The block tariff attributes the application sets (D.4.2.2).
        self.attributes = PriceAttributes()
        #: The SE 1.2 tariffs published (D.4.2.4.5-7, 9).
        self.tariffs = Tariffs()
        #: The last Cancel Tariff sent, what Get Tariff Cancellation resends (D.4.2.3.16).
        self.last_cancellation: TariffCancellation | None = None

    def _stores(self) -> PriceStores:
        return PriceStores(
            schedule=self.schedule,
            timelines={
                name: self.store_of(kind)
                for name, kind in PRICE_VALUE_KINDS.items()
                if kind is not CreditPayment
            },
            credit_payments=self.credit_payments,
            tariffs=self.tariffs,
            last_cancellation=self.last_cancellation,
        )

    def next_deadline(self) -> int | None:
        """When something held next ends or is superseded, and leaves :meth:`records` (None:
        nothing will): a price at its start plus its duration (D.4.2.4.1.1.9-10) or where a
        newer one cut it short, a value of a timeline (block period, conversion factor... a
        tariff with its matrix, thresholds and labels) when the next one of its kind and
        tariff type starts (D.4.2.4.2-5: in force until the next), a block period also at
        its end (start plus duration, D.4.2.4.2.1.4; :class:`~zse.price.BlockPeriods`).
        Credit payments and the last Cancel Tariff do not end. Possibly past (nothing asked
        since). One deadline for every table, as Silicon Labs' price server arms one tick at
        its tables' nearest event (price-server-tick.c,
        emberAfPriceClusterServerTickCallback)."""
        ends = [
            self.schedule.next_end(),
            self.tariffs.next_end(),
            *(store.next_end() for store in self._stores().timelines.values()),
        ]
        return min((end for end in ends if end is not None), default=None)

    def handle_timeout(self, now: int) -> Step:
        """Forget what ended or was superseded by ``now``: the shell then commits
        :meth:`records` (its store deletes the ended records); nothing is sent."""
        self.records(now)
        return Step()

    def records(self, now: int) -> dict[str, Any]:
        """What is published and held at ``now`` as store records, by key
        (:func:`zse.price.records.records`): what a server's store keeps, what is over
        left out. The application's :attr:`attributes` are not in it."""
        return records(self._stores(), now)

    def restore(
        self,
        stored: dict[str, Any],
        now: int,
        *,
        namespace: str,
        on_bad: Callable[[RecordError], None],
    ) -> None:
        """Put back what :meth:`records` gave (read from a store); a record that does not
        load goes to ``on_bad`` (:func:`zse.price.records.restore`)."""
        self.last_cancellation = restore(
            self._stores(), stored, now, namespace=namespace, on_bad=on_bad
        )

    def publish_tariff(
        self,
        information: TariffInformation,
        now: int,
        to: Destination | None = None,
        values: tuple[TariffValue, ...] = (),
    ) -> Step:
        """Record a tariff and its price matrix, block thresholds and tier labels and, with
        ``to``, publish them there: Publish Tariff Information, then each value in as many
        commands as one frame each takes. ValueError for a value of another tariff (its
        issuer tariff id and provider must be the tariff's, D.4.2.4.6.1.4) or two of a kind."""
        kinds = [type(value) for value in values]
        if len(set(kinds)) != len(kinds):
            raise ValueError("a tariff has one price matrix, one set of thresholds, one of labels")
        for value in values:
            if (value.provider_id, value.issuer_tariff_id) != (
                information.provider_id,
                information.issuer_tariff_id,
            ):
                raise ValueError(
                    f"{type(value).__name__} of tariff {value.issuer_tariff_id} (provider "
                    f"{value.provider_id}) does not belong to tariff "
                    f"{information.issuer_tariff_id} (provider {information.provider_id})"
                )
        parts = [part for value in values for part in value.parts()]  # first: all can go
        tariff_information_payload(information)
        self.tariffs.add(information, now)
        for value in values:
            self.tariffs.put(value, now)
        if to is None:
            return Step()
        # the parts as a Get command is answered with them (one issue, one header): a
        # display that missed one and asks puts the answer with those it holds
        held = self.tariffs.tariff(information.issuer_tariff_id, now, absolute=True)
        parts = [part for value in values for part in value.parts(_sent_start(held, value))]
        return Step(sends=_tariff_sends(information, parts, to=to))

    def cancel_tariff(
        self, cancellation: TariffCancellation, now: int, to: Destination | None = None
    ) -> Step:
        """Forget a tariff and all its parts and, with ``to``, send Cancel Tariff there
        (D.4.2.4.15); Get Tariff Cancellation is answered with it from now on."""
        self.tariffs.cancel(cancellation, now)
        self.last_cancellation = cancellation
        if to is None:
            return Step()
        return Step(sends=(_cancel_send(cancellation, to=to),))

    def publish_value(self, value: PriceValue, now: int, to: Destination | None = None) -> Step:
        """Record a block period, conversion factor or calorific value and, with ``to``,
        publish it there (Publish Block Period / Conversion Factor / Calorific Value).
        ValueError for a credit payment whose overdue amount the CreditPaymentOverDueAmount
        attribute (a signed 32-bit integer) cannot hold: a display reading it would see
        another amount."""
        if (
            isinstance(value, CreditPayment)
            and value.credit_payment_overdue_amount > MAX_OVERDUE_AMOUNT
        ):
            raise ValueError(
                f"credit payment overdue amount {value.credit_payment_overdue_amount} is above "
                f"{MAX_OVERDUE_AMOUNT}: the CreditPaymentOverDueAmount attribute is a signed "
                "32-bit integer"
            )
        self._published(value).add(value, now)
        if to is None:
            return Step()
        return Step(sends=(_publish_value(value, to=to),))

    def attribute_values(self, now: int) -> dict[int, tuple[int, Any]]:
        """The Price server attributes with a value at ``now`` (D.4.2.2), id -> (ZCL data
        type id, value): the application's :attr:`attributes` and the block period,
        conversion factor and calorific value in force, and SE 1.2's Tariff Information and
        Billing Information sets from the delivered tariff, CO2 value, billing period and
        consolidated bill in force (:class:`~zse.price.InForce`), with the tier labels the
        delivered tariff in force published; the received sets (0x8xxx) from the received
        tariff (tariff type 1) and its values in force (:meth:`InForce.received_values`);
        the Credit Payment set from the payments published
        (:meth:`~zse.price.CreditPayments.values`)."""
        values = self.attributes.values(  # StartOfBlockPeriod: the absolute start
            self.block_periods.current(now, absolute=True),
            self.conversion_factors.current(now, absolute=True),
            self.calorific_values.current(now, absolute=True),
            # the delivered tariff's, as the attributes without prefix are
            in_force=self._in_force(now, _DELIVERED_TARIFF),
        )
        values.update(
            self._in_force(now, _RECEIVED_TARIFF).received_values(
                self.block_periods.current(now, _RECEIVED_TARIFF, absolute=True)
            )
        )
        values.update(self.credit_payments.values())
        return {attr: (attribute_type_id(attr), value) for attr, value in values.items()}

    def _in_force(self, now: int, tariff_type: int) -> InForce:
        """The tariff of ``tariff_type`` in force at ``now``, its tier labels and block
        thresholds (once whole) and the CO2 value, billing period and consolidated bill of
        that type in force, each with its start "now" resolved."""
        tariff = self.tariffs.current(now, tariff_type, absolute=True)
        labels = thresholds = None
        if tariff is not None:
            held = (tariff.issuer_tariff_id, now, tariff.provider_id)
            labels = self.tariffs.value(TierLabels, *held)
            thresholds = self.tariffs.value(BlockThresholds, *held)
        return InForce(
            tariff=tariff,
            co2=self.co2_values.current(now, tariff_type),
            billing_period=self.billing_periods.current(now, tariff_type, absolute=True),
            bill=self.consolidated_bills.current(now, tariff_type, absolute=True),
            labels=labels,
            thresholds=thresholds,
        )

    def _published(self, value: PriceValue) -> Any:
        return self.store_of(type(value))

    def publish(self, event: PriceEvent, now: int, to: Destination | None = None) -> Step:
        """Record ``event`` and, with ``to``, send it there (a device, group or broadcast);
        a repeat goes again. ValueError for an older price overlapping a newer one held
        (D.4.4.2): every client would refuse it, and it would never be the current price;
        and for tiers a receiver would read otherwise (:meth:`PriceEvent.tier_problem`)."""
        payload = publish_price_payload(event, now)  # first: a price that cannot go is not kept
        problem = event.tier_problem()
        if problem is not None:
            raise ValueError(f"price {event.issuer_event_id}: {problem}")
        if self.schedule.superseded(event, now):  # ...nor one not kept sent
            raise ValueError(
                f"price {event.issuer_event_id} of provider {event.provider_id} overlaps a "
                "newer price (a larger issuer event id) published before (D.4.4.2)"
            )
        self.schedule.add(event, now)
        if to is None:
            return Step()
        return Step(
            sends=(Send(cluster_id=PRICE, command_id=_PUBLISH_PRICE, payload=payload, to=to),)
        )

    def screen(self, msg: ZclMessage) -> Step | None:
        """A frame left alone before decoding (a server's frame: no answer), or None."""
        return Step() if msg.from_server else None

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Answer Get Current Price or Get Scheduled Prices (with Publish Price, or
        NOT_FOUND) and Get Block Periods, Get Conversion Factor or Get Calorific Value and the
        other SE 1.2 Get commands (with their Publish commands, or NOT_FOUND); take Price
        Acknowledgement and CPP Event Response (an event, SUCCESS). A price published with
        start "now" is answered with the absolute start it was given (D.4.2.4.1.1.9); Get
        Current Price is also a :class:`CurrentPriceRequested` event."""
        screened = self.screen(msg)
        if screened is not None:
            return screened
        answer = self._answer_values(msg, command, now)
        if answer is None:
            answer = self._answer_tariffs(msg, command, now)
        if answer is None:
            answer = self._take_response(msg, command)
        if answer is not None:
            return answer
        requested: tuple[CurrentPriceRequested, ...] = ()
        if msg.command_id == _GET_CURRENT_PRICE:
            current = self.schedule.current(now, absolute=True)
            events = [] if current is None else [current]
            requested = (
                CurrentPriceRequested(
                    source_nwk=msg.src_nwk,
                    source_ieee=msg.src_ieee,
                    rx_on_when_idle=bool(int(command.command_options) & _RX_ON_WHEN_IDLE),
                ),
            )
        elif msg.command_id == _GET_SCHEDULED_PRICES:
            start, count = int(command.start_time), int(command.number_of_events)
            events = self.schedule.scheduled(start, count, now)
        else:
            return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)
        if not events:
            return Step(events=requested, status=foundation.Status.NOT_FOUND)
        sends = tuple(_publish(event, now, reply_to=msg) for event in events)
        return Step(sends=sends, events=requested)

    @staticmethod
    def _take_response(msg: ZclMessage, command: Any) -> Step | None:
        """A Price Acknowledgement (D.4.2.3.3) or CPP Event Response (D.4.2.3.14) as its
        event, SUCCESS; None for another command."""
        event: PriceAcknowledged | CppEventResponded
        if msg.command_id == _PRICE_ACKNOWLEDGEMENT:
            event = PriceAcknowledged(
                source_nwk=msg.src_nwk,
                source_ieee=msg.src_ieee,
                provider_id=int(command.provider_id),
                issuer_event_id=int(command.issuer_event_id),
                ack_time=int(command.price_ack_time),
                control=int(command.control),
            )
        elif msg.command_id == _CPP_EVENT_RESPONSE:
            event = CppEventResponded(
                source_nwk=msg.src_nwk,
                source_ieee=msg.src_ieee,
                issuer_event_id=int(command.issuer_event_id),
                cpp_auth=int(command.cpp_auth),
            )
        else:
            return None
        return Step(events=(event,), status=foundation.Status.SUCCESS)

    def _answer_values(self, msg: ZclMessage, command: Any, now: int) -> Step | None:
        """The Publish commands answering a Get Block Periods / Conversion Factor /
        Calorific Value (NOT_FOUND when none), or None for another command."""
        values = self._values_asked(msg, command, now)
        if values is None:
            return None
        if not values:
            return Step(status=foundation.Status.NOT_FOUND)
        return Step(sends=tuple(_publish_value(value, reply_to=msg) for value in values))

    def _answer_tariffs(self, msg: ZclMessage, command: Any, now: int) -> Step | None:
        """Answer Get Tariff Information (the tariffs of its type from its earliest start,
        D.4.2.3.7), Get Price Matrix / Block Thresholds / Tier Labels (every part of the
        tariff's, D.4.2.3.8, 10) or Get Tariff Cancellation (the last Cancel Tariff,
        D.4.2.3.16), or NOT_FOUND; None for another command."""
        found: tuple[Send, ...] = ()
        if msg.command_id == _GET_TARIFF_INFORMATION:
            tariffs = self.tariffs.since(
                int(command.earliest_start_time),
                int(command.min_issuer_event_id),
                int(command.number_of_commands),
                int(command.tariff_type),
                now,
            )
            found = tuple(s for info in tariffs for s in _tariff_sends(info, [], reply_to=msg))
        elif msg.command_id in _GET_PARTS:
            tariff_id = int(command.issuer_tariff_id)
            tariff = self.tariffs.tariff(tariff_id, now, absolute=True)
            value = self.tariffs.value(_GET_PARTS[msg.command_id], tariff_id, now)
            if tariff is not None and value is not None:
                found = _tariff_sends(None, value.parts(_sent_start(tariff, value)), reply_to=msg)
        elif msg.command_id == _GET_TARIFF_CANCELLATION:
            if self.last_cancellation is not None:
                found = (_cancel_send(self.last_cancellation, reply_to=msg),)
        else:
            return None
        return Step(sends=found) if found else Step(status=foundation.Status.NOT_FOUND)

    def _values_asked(self, msg: ZclMessage, command: Any, now: int) -> list[Any] | None:
        """The values a Get Block Periods / Conversion Factor / Calorific Value asks for
        (D.4.2.3.4-6), or Get CO2 Value / Billing Period / Consolidated Bill (those of its
        tariff type from its earliest start, D.4.2.3.9, 11-12), Get Credit Payment (dated up
        to its latest end time, the most recent first, D.4.2.3.15) or Get Currency
        Conversion (the one in force); None for another command. A tariff type, when given,
        selects block periods of that type (bits 0-3); without one (SE 1.1's form) those of
        every type, by start time."""
        if msg.command_id == _GET_BLOCK_PERIODS:
            start, count = int(command.start_time), int(command.number_of_events)
            if command.tariff_type is not None:
                kinds = [int(command.tariff_type) & 0x0F]
            else:
                kinds = sorted({p.tariff_type & 0x0F for p in self.block_periods.held(now)})
            periods = sorted(
                (
                    p
                    for kind in kinds
                    for p in self.block_periods.since(start, _ANY_EVENT, 0, kind, now)
                ),
                key=lambda p: (p.block_period_start_time, p.tariff_type & 0x0F),
            )
            return periods if count == 0 else periods[:count]
        if msg.command_id in _GET_TYPED:
            typed: ByTariffType[Any] = self.store_of(_GET_TYPED[msg.command_id])
            return typed.since(
                int(command.earliest_start_time),
                int(command.min_issuer_event_id),
                int(command.number_of_commands),
                int(command.tariff_type),
                now,
            )
        if msg.command_id == _GET_CREDIT_PAYMENT:
            return self.credit_payments.upto(
                int(command.latest_end_time), int(command.number_of_records)
            )
        if msg.command_id == _GET_CURRENCY_CONVERSION:
            conversion = self.currency_conversions.current(now, absolute=True)
            return [] if conversion is None else [conversion]
        if msg.command_id in (_GET_CONVERSION_FACTOR, _GET_CALORIFIC_VALUE):
            published: Published[Any] = (
                self.conversion_factors
                if msg.command_id == _GET_CONVERSION_FACTOR
                else self.calorific_values
            )
            return published.since(
                int(command.earliest_start_time),
                int(command.min_issuer_event_id),
                int(command.number_of_commands),
                now,
            )
        return None


class PriceClientProtocol(_NothingTimed, _ValueStores):
    """A device's Price client (SE D.4.3) at the ZCL frame; ``schedule`` is what it knows.

    ``rx_on_when_idle``: whether its receiver is on when idle, sent as "Requestor Rx On When
    Idle" in Get Current Price (D.4.2.3.1.1); True for a mains-powered device, False for a
    sleepy end device, which would miss price broadcasts."""

    def __init__(
        self, schedule: PriceSchedule | None = None, *, rx_on_when_idle: bool = True
    ) -> None:
        self.schedule = PriceSchedule(limit=CLIENT_PRICES) if schedule is None else schedule
        self.rx_on_when_idle = rx_on_when_idle
        self._make_stores()
        #: The SE 1.2 tariffs received (D.4.2.4.5-7, 9).
        self.tariffs = Tariffs()

    def _receive_tariff(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """:meth:`_take_tariff`, MALFORMED_COMMAND for values no tariff has."""
        try:
            return self._take_tariff(msg, command, now)
        except InvalidFrame as exc:
            LOGGER.warning("bad tariff command from 0x%04X: %s", msg.src_nwk, exc)
            return Step(status=foundation.Status.MALFORMED_COMMAND)

    def _take_tariff(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Keep a tariff's information; put a part of its matrix, thresholds or labels with
        the others (an event once whole; a Default Response status for a part not kept:
        NOT_FOUND for no such tariff held, INVALID_FIELD for one that disagrees with its
        issue or labels no tier (0, above 48), FAILURE for an older issue, DUPLICATE_EXISTS
        for a repeat, INSUFFICIENT_SPACE when too many parts wait already); forget a
        cancelled tariff (NOT_FOUND when none was held)."""
        if msg.command_id == _PUBLISH_TARIFF_INFORMATION:
            information = TariffInformation.from_fields(command)
            new = self.tariffs.add(information, now)
            return Step(
                events=(TariffReceived(source_nwk=msg.src_nwk, value=information, new=new),)
            )
        if msg.command_id == _CANCEL_TARIFF:
            cancellation = TariffCancellation.from_fields(command)
            held = self.tariffs.cancel(cancellation, now)
            event = TariffCancelled(source_nwk=msg.src_nwk, cancellation=cancellation, held=held)
            return Step(events=(event,), status=None if held else foundation.Status.NOT_FOUND)
        part = TariffPart.from_fields(_PART_KINDS[msg.command_id], command)
        outcome, value = self.tariffs.add_part(part, now)
        if outcome is PartOutcome.COMPLETE and value is not None:
            return Step(events=(TariffReceived(source_nwk=msg.src_nwk, value=value, new=True),))
        if outcome is PartOutcome.KEPT:
            return Step()
        LOGGER.info(
            "%s part %d/%d of tariff %d from 0x%04X not kept: %s",
            part.kind.__name__,
            part.command_index + 1,
            part.total_number_of_commands,
            part.issuer_tariff_id,
            msg.src_nwk,
            outcome.value,
        )
        return Step(status=_PART_STATUS[outcome])

    def get_tariff_information(
        self,
        server: Destination,
        earliest_start_time: int = 0,
        number_of_commands: int = 0,
        tariff_type: int = 0,
    ) -> Send:
        """The Get Tariff Information request (D.4.2.3.7): tariffs of ``tariff_type`` from
        the one in force at ``earliest_start_time`` (0 = now), any issuer event id."""
        schema = Price.ServerCommandDefs.get_tariff_information.schema
        payload = encode_command(
            schema(
                earliest_start_time=earliest_start_time,
                min_issuer_event_id=_ANY_EVENT,
                number_of_commands=number_of_commands,
                tariff_type=tariff_type,
            )
        )
        return Send(
            cluster_id=PRICE, command_id=_GET_TARIFF_INFORMATION, payload=payload, to=server
        )

    def get_tariff_value(
        self, server: Destination, kind: type[TariffValue], issuer_tariff_id: int
    ) -> Send:
        """The Get Price Matrix, Get Block Thresholds or Get Tier Labels request (``kind``,
        D.4.2.3.8, 10) for a tariff."""
        command_id = next(c for c, k in _GET_PARTS.items() if k is kind)
        schema = Price.server_commands[command_id].schema
        payload = encode_command(schema(issuer_tariff_id=issuer_tariff_id))
        return Send(cluster_id=PRICE, command_id=command_id, payload=payload, to=server)

    def get_typed_values(
        self,
        server: Destination,
        kind: type[Co2Value | BillingPeriod | ConsolidatedBill],
        earliest_start_time: int = 0,
        number_of_commands: int = 0,
        tariff_type: int = 0,
    ) -> Send:
        """Get CO2 Value, Get Billing Period or Get Consolidated Bill (``kind``, D.4.2.3.9,
        11-12): those of ``tariff_type`` from the one in force at ``earliest_start_time``
        (0 = now), any issuer event id."""
        command_id = next(c for c, k in _GET_TYPED.items() if k is kind)
        schema = Price.server_commands[command_id].schema
        payload = encode_command(
            schema(
                earliest_start_time=earliest_start_time,
                min_issuer_event_id=_ANY_EVENT,
                number_of_commands=number_of_commands,
                tariff_type=tariff_type,
            )
        )
        return Send(cluster_id=PRICE, command_id=command_id, payload=payload, to=server)

    def get_credit_payment(
        self, server: Destination, latest_end_time: int = 0xFFFFFFFF, number_of_records: int = 0
    ) -> Send:
        """Get Credit Payment (D.4.2.3.15): payments dated up to ``latest_end_time``, the
        most recent ``number_of_records`` (0 = all)."""
        schema = Price.ServerCommandDefs.get_credit_payment.schema
        payload = encode_command(
            schema(latest_end_time=latest_end_time, number_of_records=number_of_records)
        )
        return Send(cluster_id=PRICE, command_id=_GET_CREDIT_PAYMENT, payload=payload, to=server)

    def get_currency_conversion(self, server: Destination) -> Send:
        """Get Currency Conversion: the conversion in force."""
        return Send(cluster_id=PRICE, command_id=_GET_CURRENCY_CONVERSION, to=server)

    def cpp_event_response(self, server: Destination, issuer_event_id: int, cpp_auth: int) -> Send:
        """CPP Event Response (D.4.2.3.14): the application's answer to a CPP event asking
        for authorization, ``cpp_auth`` Accepted (1) or Rejected (2)."""
        schema = Price.ServerCommandDefs.cpp_event_response.schema
        payload = encode_command(schema(issuer_event_id=issuer_event_id, cpp_auth=cpp_auth))
        return Send(cluster_id=PRICE, command_id=_CPP_EVENT_RESPONSE, payload=payload, to=server)

    def get_tariff_cancellation(self, server: Destination) -> Send:
        """The Get Tariff Cancellation request (D.4.2.3.16)."""
        return Send(cluster_id=PRICE, command_id=_GET_TARIFF_CANCELLATION, to=server)

    def _receive_value(self, msg: ZclMessage, value: PriceValue, now: int) -> Step:
        """Keep a received value (:data:`PriceValue`) in its store; acknowledge a block
        period whose control bit 0 asks for it (D.4.2.4.2.1.5). A CPP event asking for
        authorization (CPP Auth Pending) is the application's to answer
        (:meth:`cpp_event_response`)."""
        kept = self.store_of(type(value))
        received = PriceValueReceived(source_nwk=msg.src_nwk, value=value, new=kept.add(value, now))
        if not isinstance(value, BlockPeriod):
            return Step(events=(received,))
        return _received(msg, received, value, now, PriceAcknowledgementControl.Block_Period)

    def get_block_periods(
        self, server: Destination, start_time: int = 0, number_of_events: int = 0
    ) -> Send:
        """The Get Block Periods request (D.4.2.3.4): periods in force from ``start_time``
        (0 = now), ``number_of_events`` of them (0 = all)."""
        schema = Price.ServerCommandDefs.get_block_periods.schema
        payload = encode_command(schema(start_time=start_time, number_of_events=number_of_events))
        return Send(cluster_id=PRICE, command_id=_GET_BLOCK_PERIODS, payload=payload, to=server)

    def get_conversion_factor(
        self, server: Destination, earliest_start_time: int = 0, number_of_commands: int = 0
    ) -> Send:
        """The Get Conversion Factor request (D.4.2.3.5), any issuer event id."""
        return self._get_commodity(
            _GET_CONVERSION_FACTOR, server, earliest_start_time, number_of_commands
        )

    def get_calorific_value(
        self, server: Destination, earliest_start_time: int = 0, number_of_commands: int = 0
    ) -> Send:
        """The Get Calorific Value request (D.4.2.3.6), any issuer event id."""
        return self._get_commodity(
            _GET_CALORIFIC_VALUE, server, earliest_start_time, number_of_commands
        )

    @staticmethod
    def _get_commodity(command_id: int, server: Destination, earliest: int, count: int) -> Send:
        schema = Price.ServerCommandDefs.get_conversion_factor.schema  # same as calorific
        payload = encode_command(
            schema(
                earliest_start_time=earliest,
                min_issuer_event_id=_ANY_EVENT,
                number_of_commands=count,
            )
        )
        return Send(cluster_id=PRICE, command_id=command_id, payload=payload, to=server)

    def get_current_price(self, server: Destination) -> Send:
        """The Get Current Price request (D.4.2.3.1) to ``server``, its Command Options
        saying whether this device's receiver is on when idle (:attr:`rx_on_when_idle`), for
        the shell to send and await: its answer is a Publish Price (give it to
        :meth:`receive`) or a Default Response."""
        schema = Price.ServerCommandDefs.get_current_price.schema
        options = _RX_ON_WHEN_IDLE if self.rx_on_when_idle else 0
        payload = encode_command(schema(command_options=options))
        return Send(cluster_id=PRICE, command_id=_GET_CURRENT_PRICE, payload=payload, to=server)

    def screen(self, msg: ZclMessage) -> Step | None:
        """UNSUP_CLUSTER_COMMAND for all but a server's Publish Price, Block Period,
        Conversion Factor or Calorific Value, before decoding."""
        if msg.from_server and (
            msg.command_id == _PUBLISH_PRICE
            or msg.command_id in _RECEIVED
            or msg.command_id in _TARIFF_PUBLISHED
        ):
            return None
        return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Record a Publish Price (a :class:`PriceReceived` event) and, with Price Control
        bit 0 set, acknowledge it to its sender (D.4.2.4.1.1.19), however it was addressed;
        a price held already is not acknowledged again (Default Response DUPLICATE_EXISTS,
        FAILURE for an older one not taken; none to a group or broadcast). A price that
        ended before it arrived (start plus duration not after ``now``) is neither kept nor
        acknowledged: FAILURE, as Silicon Labs' certified price client answers it."""
        screened = self.screen(msg)
        if screened is not None:
            return screened
        if msg.command_id in _RECEIVED:
            try:
                value = _RECEIVED[msg.command_id].from_fields(command)
            except InvalidFrame as exc:
                LOGGER.warning("bad Price command from 0x%04X: %s", msg.src_nwk, exc)
                return Step(status=foundation.Status.MALFORMED_COMMAND)
            return self._receive_value(msg, value, now)
        if msg.command_id in _TARIFF_PUBLISHED:
            return self._receive_tariff(msg, command, now)
        return self._receive_price(msg, command, now)

    def _receive_price(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """A Publish Price, as :meth:`receive` says."""
        try:
            event = PriceEvent.from_fields(command)
        except ValueError as exc:
            LOGGER.warning("bad Publish Price from 0x%04X: %s", msg.src_nwk, exc)
            return Step(status=foundation.Status.MALFORMED_COMMAND)
        # ended before it arrived: not kept, not acknowledged (FAILURE), as Silicon Labs'
        # certified price client (price-client.c, emberAfPriceClusterPublishPriceCallback)
        if event.ended(now):
            over = PriceReceived(source_nwk=msg.src_nwk, price=event, new=False)
            return Step(events=(over,), status=foundation.Status.FAILURE)
        new = self.schedule.add(event, now)
        received = PriceReceived(source_nwk=msg.src_nwk, price=event, new=new)
        if not new:  # held already (a repeated broadcast) or not taken: no acknowledgement
            return Step(events=(received,), status=self._not_taken(event, now))
        return _received(
            msg, received, event, now, PriceAcknowledgementControl.Price_Acknowledgement
        )

    def _not_taken(self, event: PriceEvent, now: int) -> foundation.Status:
        """The Default Response status of a Publish Price the schedule did not take, as
        Silicon Labs' price client answers it: DUPLICATE_EXISTS when this price is held
        already, INSUFFICIENT_SPACE when the schedule is full and it would start last,
        FAILURE for an older price overlapping a newer one held."""
        key = (event.provider_id, event.issuer_event_id)
        held = any(kept == key for kept, _, _ in self.schedule.kept(now))  # no price copied
        if held:
            return foundation.Status.DUPLICATE_EXISTS
        # the overlap rule answers first, full or not
        if not self.schedule.superseded(event, now) and self.schedule.full(event, now):
            return foundation.Status.INSUFFICIENT_SPACE
        return foundation.Status.FAILURE


def _received(
    msg: ZclMessage, received: Any, published: PriceEvent | BlockPeriod, now: int, control: int
) -> Step:
    """The ``received`` event and, when ``published`` asks for it (Price Control or Block
    Period Control bit 0), its Price Acknowledgement (D.4.2.3.3) to the sender, however
    the command was addressed: to this device, a group or a broadcast (as the Silicon Labs
    and NXP certified clients do). Only what is new is acknowledged: Silicon Labs' client
    answers a repeat (the same issuer event id) with a Default Response, never sent to a
    group or broadcast, so a re-broadcast does not make every device answer again. The
    acknowledgement goes at once, as Silicon Labs' does: no ZCL clause asks responses to a
    broadcast to be delayed at random."""
    if not received.new or not published.acknowledgement_required:
        return Step(events=(received,))
    ack = _acknowledgement(msg, published.provider_id, published.issuer_event_id, now, control)
    return Step(sends=(ack,), events=(received,))


def _acknowledgement(
    msg: ZclMessage, provider_id: int, issuer_event_id: int, now: int, control: int
) -> Send:
    """Price Acknowledgement (D.4.2.3.3) of what ``msg`` published, to its sender."""
    schema = Price.ServerCommandDefs.price_acknowledgement.schema
    ack = schema(
        provider_id=provider_id,
        issuer_event_id=issuer_event_id,
        price_ack_time=now,
        control=control,
    )
    return Send(
        cluster_id=PRICE,
        command_id=_PRICE_ACKNOWLEDGEMENT,
        payload=encode_command(ack),
        to=Destination.device(msg.src_nwk, msg.src_ep),
    )
