"""#14.5: block pricing (SE 1.1/1.2) in the Price cores: block periods, conversion factor and
calorific value kept, asked for and published; the server's block tariff attributes; the
cost of a consumption under flat, TOU-tier and block tariffs (the docs' worked example).
No event loop: each received command -> sends, events and Default Response status."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.price.test_price_protocol import decoded, frame
from zse.price import (
    BlockPeriod,
    CalorificValue,
    ConversionFactor,
    PriceAttributes,
    Published,
    Tariff,
    format_amount,
)
from zse.price.protocol import (
    PriceAcknowledged,
    PriceClientProtocol,
    PriceServerProtocol,
    PriceValueReceived,
    publish_payload,
)
from zse.price.wire import Price
from zse.se.ids import (
    PRICE,
    PriceAttribute,
    PriceClientCommand,
    PriceServerCommand,
    block_price_attribute,
    block_threshold_attribute,
    tier_label_attribute,
)
from zse.se.types import BlockPeriodControl, PriceAcknowledgementControl, TariffType
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage

NOW = 800_000_000
NOT_FOUND = foundation.Status.NOT_FOUND
SERVER = Destination.device(0x0000, 9)


def period(event_id: int, start: int = NOW, minutes: int = 60 * 24, **more: Any) -> BlockPeriod:
    return BlockPeriod(
        provider_id=5,
        issuer_event_id=event_id,
        block_period_start_time=start,
        block_period_duration=minutes,
        **more,
    )


def factor(event_id: int, start: int = NOW, value: int = 1_022_640) -> ConversionFactor:
    return ConversionFactor(
        issuer_event_id=event_id,
        start_time=start,
        conversion_factor=value,
        conversion_factor_trailing_digit=0x60,  # 1.022640 (digit in bits 4-7)
    )


def calorific(event_id: int, start: int = NOW) -> CalorificValue:
    return CalorificValue(
        issuer_event_id=event_id,
        start_time=start,
        calorific_value=392,
        calorific_value_unit=1,
        calorific_value_trailing_digit=0x10,  # 39.2 MJ/m3
    )


def get(name: str, **fields: Any) -> ZclMessage:
    definition = getattr(Price.ServerCommandDefs, name)
    return frame(definition.id, encode_command(definition.schema(**fields)))


def published(value: Any, **where: Any) -> ZclMessage:
    command_id = {
        BlockPeriod: PriceClientCommand.PUBLISH_BLOCK_PERIOD,
        ConversionFactor: PriceClientCommand.PUBLISH_CONVERSION_FACTOR,
        CalorificValue: PriceClientCommand.PUBLISH_CALORIFIC_VALUE,
    }[type(value)]
    return frame(command_id, publish_payload(value), from_server=True, **where)


# --- the worked example of docs/price.md --------------------------------------------------

KWH = Fraction(85, 2)  # 42.5 kWh in the period


def test_worked_example_flat_tariff() -> None:
    """0.2450/kWh (Price 2450, trailing digit 4) for 42.5 kWh: 10.4125, shown 10.41."""
    cost = Tariff.flat(2450, 4).cost([(0, KWH)])
    assert cost == Fraction("10.4125")
    assert format_amount(cost) == "10.41"


def test_worked_example_tou_tariff() -> None:
    """30 kWh off-peak (tier 1, 0.1200) and 12.5 kWh peak (tier 2, 0.3100): 7.475 -> 7.48."""
    cost = Tariff.tou({1: 1200, 2: 3100}, 4).cost([(1, 30), (2, Decimal("12.5"))])
    assert cost == Fraction("7.475")
    assert format_amount(cost) == "7.48"  # rounded half up, not to even


def test_worked_example_block_tariff_from_the_server_attributes() -> None:
    """Block1Threshold 1,000,000 and Block2Threshold 3,000,000 with ThresholdMultiplier 1 and
    ThresholdDivisor 100 are 10,000 and 30,000 in the raw units of Metering's
    CurrentBlockPeriodConsumptionDelivered (D.4.2.2.3.3): 10 and 30 kWh on a meter counting
    Wh (Divisor 1000); NoTierBlock1-3Price 0.1500, 0.2000, 0.2500:
    10 x 0.15 + 20 x 0.20 + 12.5 x 0.25 = 8.625, shown 8.63."""
    attributes = PriceAttributes(
        block_thresholds=(1_000_000, 3_000_000),
        threshold_multiplier=1,
        threshold_divisor=100,
        block_prices={(0, 1): 1500, (0, 2): 2000, (0, 3): 2500},
    )
    tariff = Tariff.from_attributes(attributes, 4, metering_scale=Fraction(1, 1000))
    assert tariff.thresholds() == [10, 30]
    assert tariff.cost([(0, KWH)]) == Fraction("8.625")
    assert format_amount(tariff.cost([(0, KWH)])) == "8.63"
    # the same consumption in two readings costs the same; a later reading starts higher up
    assert tariff.cost([(0, 25), (0, Fraction(35, 2))]) == Fraction("8.625")
    assert tariff.cost([(0, 5)], consumed_before=Fraction(28)) == Fraction("1.15")


def test_block_tariff_with_tiers_prices_each_part_at_its_tier_and_block() -> None:
    """Blocks count all consumption in the period; each part is priced in its tier."""
    tariff = Tariff(
        prices={(1, 1): 1000, (1, 2): 1500, (2, 1): 2000, (2, 2): 3000},
        price_trailing_digit=4,
        block_thresholds=(10,),
    )
    # tier 1: 8 at 0.10; tier 2: 2 at 0.20 (block 1), 3 at 0.30 (block 2)
    assert tariff.cost([(1, 8), (2, 5)]) == Fraction("2.1")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold_divisor": 0}, "divisor 0"),
        ({"block_thresholds": (30, 10)}, "must not decrease"),
        ({"price_trailing_digit": 16}, "not 0-15"),
    ],
)
def test_a_tariff_that_cannot_price_is_refused(kwargs: dict[str, Any], message: str) -> None:
    fields = {"prices": {(0, 1): 1}, "price_trailing_digit": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        Tariff(**fields)


def test_a_consumption_without_a_price_is_a_clear_error() -> None:
    tariff = Tariff(prices={(0, 1): 100}, price_trailing_digit=2, block_thresholds=(10,))
    with pytest.raises(ValueError, match="no price for tier 0 block 2"):
        tariff.cost([(0, 11)])
    with pytest.raises(ValueError, match="negative consumption"):
        tariff.cost([(0, -1)])


# --- values kept by start time ---------------------------------------------------------------


def test_published_values_follow_their_start_times() -> None:
    kept: Published[ConversionFactor] = Published()
    assert kept.add(factor(1, start=0), NOW)  # 0 = now
    assert not kept.add(factor(1, start=0), NOW)  # a repeat
    assert kept.add(factor(2, start=NOW + 100, value=1_000_000), NOW)
    assert kept.current(NOW + 99) == factor(1, start=0)
    assert kept.current(NOW + 100) == factor(2, start=NOW + 100, value=1_000_000)
    assert kept.since(0, 0xFFFFFFFF, 0, NOW) == [
        factor(1, start=NOW),  # re-sent with the start "now" it was kept with
        factor(2, NOW + 100, 1_000_000),
    ]
    assert kept.since(0, 2, 0, NOW) == [factor(2, NOW + 100, 1_000_000)]  # min issuer event id
    assert kept.since(0, 0xFFFFFFFF, 1, NOW) == [factor(1, start=NOW)]  # number of commands
    kept.add(factor(3, start=NOW + 200), NOW + 300)
    assert len(kept) == 1  # superseded values are forgotten
    assert factor(1).value == Fraction("1.02264")
    assert calorific(1).value == Fraction("39.2")


# --- the server core -------------------------------------------------------------------------


def reply(msg: ZclMessage, command_id: int, payload: bytes) -> Send:
    return Send(cluster_id=PRICE, command_id=command_id, payload=payload, reply_to=msg)


PUBLISH_BLOCK_PERIOD = PriceClientCommand.PUBLISH_BLOCK_PERIOD
PUBLISH_CONVERSION_FACTOR = PriceClientCommand.PUBLISH_CONVERSION_FACTOR
PUBLISH_CALORIFIC_VALUE = PriceClientCommand.PUBLISH_CALORIFIC_VALUE
GET_BLOCK_PERIODS = get("get_block_periods", start_time=0, number_of_events=0)
GET_ONE_BLOCK_PERIOD = get("get_block_periods", start_time=0, number_of_events=1)
GET_RECEIVED_BLOCK_PERIODS = get(
    "get_block_periods", start_time=0, number_of_events=0, tariff_type=TariffType.Received
)
GET_FACTOR = get(
    "get_conversion_factor", earliest_start_time=0, min_issuer_event_id=0xFFFFFFFF,
    number_of_commands=0,
)  # fmt: skip
GET_CALORIFIC = get(
    "get_calorific_value", earliest_start_time=0, min_issuer_event_id=0xFFFFFFFF,
    number_of_commands=0,
)  # fmt: skip
RECEIVED_TARIFF = period(3, start=NOW + 60, tariff_type=TariffType.Received)


def loaded_server() -> PriceServerProtocol:
    server = PriceServerProtocol()
    for value in (period(1), period(2, start=NOW + 86_400), RECEIVED_TARIFF, factor(4)):
        assert server.publish_value(value, NOW) == Step()
    return server


@pytest.mark.parametrize(
    ("msg", "answers"),
    [
        (GET_BLOCK_PERIODS, [period(1), RECEIVED_TARIFF, period(2, start=NOW + 86_400)]),
        (GET_ONE_BLOCK_PERIOD, [period(1)]),
        (GET_RECEIVED_BLOCK_PERIODS, [RECEIVED_TARIFF]),
        (GET_FACTOR, [factor(4)]),
        (GET_CALORIFIC, None),  # none published: NOT_FOUND
    ],
    ids=["all-periods", "one-period", "by-tariff-type", "factor", "no-calorific-value"],
)
def test_server_answers_the_get_commands(msg: ZclMessage, answers: list[Any] | None) -> None:
    step = loaded_server().receive(msg, decoded(msg), NOW)
    if answers is None:
        assert step == Step(status=NOT_FOUND)
        return
    commands = {
        BlockPeriod: PUBLISH_BLOCK_PERIOD,
        ConversionFactor: PUBLISH_CONVERSION_FACTOR,
        CalorificValue: PUBLISH_CALORIFIC_VALUE,
    }
    assert step == Step(
        sends=tuple(reply(msg, commands[type(v)], publish_payload(v)) for v in answers)
    )


def test_server_publishes_to_a_destination_and_takes_a_block_period_acknowledgement() -> None:
    server = PriceServerProtocol()
    to = Destination.device(0x1234, 1)
    step = server.publish_value(calorific(7), NOW, to)
    assert step == Step(
        sends=(Send(cluster_id=PRICE, command_id=PUBLISH_CALORIFIC_VALUE,
                    payload=publish_payload(calorific(7)), to=to),)
    )  # fmt: skip
    ack = get(
        "price_acknowledgement", provider_id=5, issuer_event_id=1, price_ack_time=NOW,
        control=PriceAcknowledgementControl.Block_Period,
    )  # fmt: skip
    (event,) = server.receive(ack, decoded(ack), NOW).events
    assert isinstance(event, PriceAcknowledged)
    assert event.control == PriceAcknowledgementControl.Block_Period


def test_server_attributes_are_the_application_values_and_those_in_force() -> None:
    server = loaded_server()
    server.publish_value(calorific(8), NOW)
    server.attributes = PriceAttributes(
        tier_labels={1: b"Off-peak", 2: b"Peak"},
        block_thresholds=(1000, 3000),
        threshold_multiplier=1,
        threshold_divisor=100,
        block_prices={(0, 1): 1500, (0, 2): 2000, (2, 3): 2500},
    )
    values = server.attribute_values(NOW)
    octstr, uint8, uint24, uint32, uint48, map8, enum8, utc = (
        0x41,
        0x20,
        0x22,
        0x23,
        0x25,
        0x18,
        0x30,
        0xE2,
    )
    assert values == {
        tier_label_attribute(1): (octstr, b"Off-peak"),
        tier_label_attribute(2): (octstr, b"Peak"),
        block_threshold_attribute(1): (uint48, 1000),
        block_threshold_attribute(2): (uint48, 3000),
        PriceAttribute.BLOCK_THRESHOLD_COUNT: (uint8, 2),
        PriceAttribute.THRESHOLD_MULTIPLIER: (uint24, 1),
        PriceAttribute.THRESHOLD_DIVISOR: (uint24, 100),
        block_price_attribute(0, 1): (uint32, 1500),
        block_price_attribute(0, 2): (uint32, 2000),
        block_price_attribute(2, 3): (uint32, 2500),
        PriceAttribute.START_OF_BLOCK_PERIOD: (utc, NOW),
        PriceAttribute.BLOCK_PERIOD_DURATION: (uint24, 60 * 24),
        PriceAttribute.BLOCK_PERIOD_DURATION_TYPE: (map8, 0),
        PriceAttribute.TARIFF_RESOLUTION_PERIOD: (enum8, 0),  # SE 1.2: the block period's
        PriceAttribute.CONVERSION_FACTOR: (uint32, 1_022_640),
        PriceAttribute.CONVERSION_FACTOR_TRAILING_DIGIT: (map8, 0x60),
        PriceAttribute.CALORIFIC_VALUE: (uint32, 392),
        PriceAttribute.CALORIFIC_VALUE_UNIT: (enum8, 1),
        PriceAttribute.CALORIFIC_VALUE_TRAILING_DIGIT: (map8, 0x10),
    }
    # the SE 1.2 ids (Wireshark's Price dissector names them so)
    assert block_price_attribute(0, 1) == 0x0400
    assert block_price_attribute(1, 1) == 0x0410
    assert block_price_attribute(15, 16) == 0x04FF
    assert block_threshold_attribute(15) == 0x010E
    assert tier_label_attribute(48) == 0x002F
    # the next day's block period is in force from its start
    assert server.attribute_values(NOW + 86_400)[PriceAttribute.START_OF_BLOCK_PERIOD] == (
        utc, NOW + 86_400,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("call", "args"),
    [(tier_label_attribute, (49,)), (block_threshold_attribute, (16,)),
     (block_price_attribute, (16, 1)), (block_price_attribute, (0, 17))],
)  # fmt: skip
def test_attribute_ids_out_of_range_are_refused(call: Any, args: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="has no"):
        call(*args)


# --- the client core -------------------------------------------------------------------------


ASKS = BlockPeriodControl.Price_Acknowledgement_Required


@pytest.mark.parametrize(
    ("value", "where", "acknowledged"),
    [
        (period(1, block_period_control=ASKS), {}, True),
        (period(1, block_period_control=ASKS), {"group": 0x0E00}, True),
        (period(1, block_period_control=ASKS), {"broadcast": True}, True),
        (period(1), {}, False),
        (factor(2), {}, False),
        (calorific(3), {}, False),
    ],
    ids=["unicast-asks", "group", "broadcast", "not-asked", "factor", "calorific"],
)
def test_client_keeps_what_it_receives_and_acknowledges_a_block_period_asking(
    value: Any, where: dict[str, Any], acknowledged: bool
) -> None:
    client = PriceClientProtocol()
    msg = published(value, **where)
    step = client.receive(msg, decoded(msg), NOW)
    assert step.events == (PriceValueReceived(source_nwk=0x1234, value=value, new=True),)
    kept = {
        BlockPeriod: client.block_periods,
        ConversionFactor: client.conversion_factors,
        CalorificValue: client.calorific_values,
    }[type(value)]
    assert kept.current(NOW) == value
    if not acknowledged:
        assert step.sends == ()
        return
    schema = Price.ServerCommandDefs.price_acknowledgement.schema
    ack = schema(provider_id=5, issuer_event_id=1, price_ack_time=NOW,
                 control=PriceAcknowledgementControl.Block_Period)  # fmt: skip
    assert step.sends == (
        Send(cluster_id=PRICE, command_id=PriceServerCommand.PRICE_ACKNOWLEDGEMENT,
             payload=encode_command(ack), to=Destination.device(0x1234, 1)),
    )  # fmt: skip
    again = client.receive(msg, decoded(msg), NOW + 1).events
    assert again == (PriceValueReceived(source_nwk=0x1234, value=value, new=False),)


@pytest.mark.parametrize(
    ("request_", "command", "fields"),
    [
        (lambda c: c.get_block_periods(SERVER, NOW, 2), "get_block_periods",
         {"start_time": NOW, "number_of_events": 2}),
        (lambda c: c.get_conversion_factor(SERVER), "get_conversion_factor",
         {"earliest_start_time": 0, "min_issuer_event_id": 0xFFFFFFFF, "number_of_commands": 0}),
        (lambda c: c.get_calorific_value(SERVER, NOW, 1), "get_calorific_value",
         {"earliest_start_time": NOW, "min_issuer_event_id": 0xFFFFFFFF, "number_of_commands": 1}),
    ],
)  # fmt: skip
def test_client_builds_the_get_requests(request_: Any, command: str, fields: Any) -> None:
    definition = getattr(Price.ServerCommandDefs, command)
    assert request_(PriceClientProtocol()) == Send(
        cluster_id=PRICE,
        command_id=definition.id,
        payload=encode_command(definition.schema(**fields)),
        to=SERVER,
    )


def test_server_answer_is_what_the_client_keeps() -> None:
    """A Get Block Periods round trip through both cores."""
    server, client = loaded_server(), PriceClientProtocol()
    for send in server.receive(GET_BLOCK_PERIODS, decoded(GET_BLOCK_PERIODS), NOW).sends:
        msg = frame(send.command_id, send.payload, from_server=True)
        client.receive(msg, decoded(msg), NOW)
    assert client.block_periods.current(NOW) == period(1)
    assert client.block_periods.current(NOW + 86_400) == period(2, start=NOW + 86_400)


@given(
    thresholds=st.lists(st.integers(0, 5000), max_size=4).map(sorted),
    prices=st.lists(st.integers(0, 100_000), min_size=5, max_size=5),
    before=st.integers(0, 6000),
    first=st.integers(0, 6000),
    second=st.integers(0, 6000),
)
def test_block_cost_does_not_depend_on_how_readings_are_split(
    thresholds: list[int], prices: list[int], before: int, first: int, second: int
) -> None:
    """Costing a reading in two parts, or after an earlier one, is costing it whole; with
    one price in every block, a block tariff is a flat one."""
    tariff = Tariff(
        prices={(0, block): price for block, price in enumerate(prices, start=1)},
        price_trailing_digit=3,
        block_thresholds=thresholds,
        threshold_divisor=10,
    )
    whole = tariff.cost([(0, first + second)], consumed_before=Fraction(before))
    split = tariff.cost([(0, first)], consumed_before=Fraction(before)) + tariff.cost(
        [(0, second)], consumed_before=Fraction(before + first)
    )
    assert whole == split == tariff.cost([(0, first), (0, second)], Fraction(before))
    flat = dataclasses.replace(tariff, prices={(0, b): prices[0] for b in range(1, 6)})
    assert flat.cost([(0, first)]) == Tariff.flat(prices[0], 3).cost([(0, first)])


def test_a_block_period_published_for_now_is_served_with_its_absolute_start() -> None:
    """D.4.2.4.2: Block Period Start Time 0 is "now" to whoever receives it. Asked for six
    hours later (Get Block Periods), the period is re-sent with the start it was given, and
    StartOfBlockPeriod (D.4.2.2, UTCTime) reads that start, not 0."""
    server = PriceServerProtocol()
    server.publish_value(period(5, start=0), NOW)
    later = NOW + 6 * 3600
    [send] = server.receive(GET_BLOCK_PERIODS, decoded(GET_BLOCK_PERIODS), later).sends
    command, _ = decode_command(Price, send.command_id, send.payload, from_server=True)
    assert BlockPeriod.from_fields(command) == period(5, start=NOW)
    start_of_block_period = server.attribute_values(later)[PriceAttribute.START_OF_BLOCK_PERIOD]
    assert start_of_block_period[1] == NOW
    assert server.block_periods.current(later) == period(5, start=0)  # kept as published
    client = PriceClientProtocol()
    client.block_periods.add(period(5, start=0), NOW)
    assert not client.block_periods.add(period(5, start=NOW), later)  # the same period


def test_a_full_timeline_keeps_the_value_in_force() -> None:
    """Past its limit the timeline dropped the earliest start, the value in force: with it
    and 16 scheduled values nothing was in force. The latest starts go instead."""
    kept: Published[ConversionFactor] = Published(limit=16)
    kept.add(factor(1, start=NOW), NOW)
    for i in range(16):
        kept.add(factor(100 + i, start=NOW + (i + 1) * 86400), NOW + 1)
    assert len(kept) == 16
    assert kept.current(NOW + 2) == factor(1, start=NOW)
    assert [f.issuer_event_id for f in kept.since(0, 0xFFFFFFFF, 0, NOW + 2)] == [
        1,
        *range(100, 115),
    ]


def test_delivered_and_received_block_periods_are_in_force_side_by_side() -> None:
    """Block periods are kept per tariff type (D.4.2.4.2.1.7), as the tariffs are: a
    received block period starting an hour into a delivered one does not end it. Get Block
    Periods with a tariff type (D.4.2.3.4) answers that type's, the attributes show the
    delivered one, and a client holds both. Was: one timeline, the received period took
    over at its start and the delivered one was forgotten (a Get of delivered periods
    answered NOT_FOUND)."""
    server, client = PriceServerProtocol(), PriceClientProtocol()
    to = Destination.device(0x1234, 1)
    delivered = period(1)
    received = period(2, start=NOW + 3600, tariff_type=TariffType.Received)
    for value in (delivered, received):
        for send in server.publish_value(value, NOW, to).sends:
            msg = frame(send.command_id, send.payload, from_server=True)
            client.receive(msg, decoded(msg), NOW)
    later = NOW + 7200
    get_delivered = get("get_block_periods", start_time=0, number_of_events=0, tariff_type=0)
    for msg, value in ((get_delivered, delivered), (GET_RECEIVED_BLOCK_PERIODS, received)):
        step = server.receive(msg, decoded(msg), later)
        assert step == Step(sends=(reply(msg, PUBLISH_BLOCK_PERIOD, publish_payload(value)),))
    assert server.block_periods.current(later) == delivered
    assert server.attribute_values(later)[PriceAttribute.START_OF_BLOCK_PERIOD][1] == NOW
    assert client.block_periods.current(later) == delivered
    assert client.block_periods.current(later, TariffType.Received) == received
