"""The rest of SE 1.2's Price server attributes, read by a simulated display from the ESI:
TierNPriceLabel following Publish Tier Labels of the tariff in force, the received sets
(0x8xxx: the tariff of what a household with solar panels exports) and the Credit Payment
set (0x08xx); Wireshark reads the Read Attributes Responses zse sends (the same ids and
values, nothing malformed). Ids as Wireshark's Price dissector and zsmartsystems'
``0700_Price.xml`` name them (the SE 1.2 text was out of reach)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from zigpy.zcl import foundation

from tests.clusters.se_frames import air_frame, dissect
from tests.price.test_price_block import period
from tests.price.test_price_se12_values import bill, billing, co2, payment
from tests.price.test_price_tariffs import information, labels, thresholds
from tests.services.test_price_time_services import han
from zse.price import BlockThresholds, CreditPayment, TierLabels
from zse.price.protocol import PriceServerProtocol
from zse.se.frames import max_zcl_payload
from zse.se.ids import (
    PRICE,
    PriceAttribute,
    credit_payment_attributes,
    received_block_threshold_attribute,
    received_tier_label_attribute,
    tier_label_attribute,
)
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

A = PriceAttribute
UNSUPPORTED = foundation.Status.UNSUPPORTED_ATTRIBUTE
START = 800_000_000
RECEIVED = 0x01  # Tariff Type bits 0-3: received


async def read(ihd: Any, asked: list[int]) -> tuple[dict[int, Any], list[bytes]]:
    """Read ``asked`` from the ESI's Price server, asking again for what did not fit one
    frame: each id's value, or its status; and the answers' payloads."""
    schema = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Read_Attributes_rsp].schema
    values: dict[int, Any] = {}
    payloads: list[bytes] = []
    while asked:
        reply = await ihd.endpoints[1].request(
            0x0000,
            SE_ENDPOINT_ID,
            PRICE,
            foundation.GeneralCommand.Read_Attributes,
            b"".join(attr.to_bytes(2, "little") for attr in asked),
            cluster_specific=False,
            encrypt=True,
        )
        assert len(reply.payload) <= max_zcl_payload(group=False)
        records, _ = schema.deserialize(reply.payload)
        assert records.status_records
        values.update(
            (r.attrid, r.value.value if r.status == foundation.Status.SUCCESS else r.status)
            for r in records.status_records
        )
        payloads.append(reply.payload)
        asked = asked[len(records.status_records) :]
    return values, payloads


def received_tariff(**more: Any) -> Any:
    return information(
        tariff_id=9,
        event_id=120,
        tariff_type_charging_scheme=0x10 | RECEIVED,  # block tariff, received
        tariff_label=b"Solar export",
        number_of_price_tiers_in_use=1,
        number_of_block_thresholds_in_use=2,
        tier_block_mode=0,
        block_threshold_multiplier=10,
        block_threshold_divisor=100,
        **more,
    )


def received_labels() -> TierLabels:
    return TierLabels(provider_id=5, issuer_event_id=121, issuer_tariff_id=9, labels={1: b"Export"})


def received_thresholds() -> BlockThresholds:
    return BlockThresholds(
        provider_id=5, issuer_event_id=122, issuer_tariff_id=9, thresholds={0: (1500, 4000)}
    )


#: The received sets as a display reads them once all is published: id -> (value, the
#: tshark field that shows it, "" where Wireshark shows no plain value).
RECEIVED_EXPECTED: dict[int, tuple[Any, str]] = {
    received_tier_label_attribute(1): (b"Export", "zbee_zcl.attr.ostr"),
    received_block_threshold_attribute(1): (1500, "zbee_zcl.attr.uint48"),
    received_block_threshold_attribute(2): (4000, "zbee_zcl.attr.uint48"),
    A.RECEIVED_BLOCK_PERIOD_DURATION: (60 * 24, "zbee_zcl.attr.uint24"),
    A.RECEIVED_THRESHOLD_MULTIPLIER: (10, "zbee_zcl.attr.uint24"),
    A.RECEIVED_THRESHOLD_DIVISOR: (100, "zbee_zcl.attr.uint24"),
    A.RECEIVED_TARIFF_LABEL: (b"Solar export", "zbee_zcl.attr.ostr"),
    A.RECEIVED_NUMBER_OF_PRICE_TIERS_IN_USE: (1, "zbee_zcl.attr.uint8"),
    A.RECEIVED_NUMBER_OF_BLOCK_THRESHOLDS_IN_USE: (2, "zbee_zcl.attr.uint8"),
    A.RECEIVED_TIER_BLOCK_MODE: (0, ""),
    A.RECEIVED_TARIFF_RESOLUTION_PERIOD: (1, ""),
    A.RECEIVED_CO2: (185, "zbee_zcl.attr.uint32"),
    A.RECEIVED_CO2_UNIT: (1, ""),
    A.RECEIVED_CO2_TRAILING_DIGIT: (0x30, ""),
    A.RECEIVED_CURRENT_BILLING_PERIOD_DURATION: (1, "zbee_zcl.attr.uint24"),
    A.RECEIVED_LAST_BILLING_PERIOD_DURATION: (1, "zbee_zcl.attr.uint24"),
    A.RECEIVED_LAST_BILLING_PERIOD_CONSOLIDATED_BILL: (8412, "zbee_zcl.attr.uint32"),
}
RECEIVED_TIMES = [
    A.RECEIVED_START_OF_BLOCK_PERIOD,
    A.RECEIVED_CURRENT_BILLING_PERIOD_START,
    A.RECEIVED_LAST_BILLING_PERIOD_START,
]


async def publish_received(server: Any, clock: Any) -> None:
    """A delivered tariff and a received one with their values, as an ESI of a household
    with solar panels publishes them."""
    await server.publish_tariff(information(), labels(), thresholds())
    await server.publish_tariff(received_tariff(), received_labels(), received_thresholds())
    await server.publish(period(1, start=0, tariff_resolution_period=2))
    await server.publish(period(2, start=0, tariff_type=RECEIVED, tariff_resolution_period=1))
    await server.publish(co2(event_id=10, tariff_type=RECEIVED, start=0))
    await server.publish(dataclasses.replace(billing(event_id=11, start=0), tariff_type=RECEIVED))
    month_ago = clock() - 86400 * 30
    await server.publish(
        dataclasses.replace(bill(event_id=12, start=month_ago), tariff_type=RECEIVED)
    )


async def test_a_display_reads_the_tier_labels_the_tariff_in_force_published() -> None:
    """The application's labels until a tariff publishes its own; then, for the tiers it
    labels, the tariff's (what a display got with Publish Tier Labels); the application's
    for a tier the tariff leaves unlabelled."""
    _, _, _, server, _, ihd, _, _ = await han(43)
    server.protocol.attributes.tier_labels = {1: b"Off-peak", 3: b"Peak"}
    server.serve_attributes()
    tiers = [tier_label_attribute(tier) for tier in (1, 2, 3)]
    before, _ = await read(ihd, tiers)
    assert before == {tiers[0]: b"Off-peak", tiers[1]: UNSUPPORTED, tiers[2]: b"Peak"}
    await server.publish_tariff(information(), labels())  # tier 1 Night, tier 2 Day
    after, _ = await read(ihd, tiers)
    assert after == {tiers[0]: b"Night", tiers[1]: b"Day", tiers[2]: b"Peak"}
    # a newer tariff in force without labels: the application's label again
    await server.publish_tariff(information(tariff_id=8, event_id=200))
    newer, _ = await read(ihd, tiers[:1])
    assert newer == {tiers[0]: b"Off-peak"}


def test_only_the_labels_of_the_delivered_tariff_in_force_count() -> None:
    """A tariff that starts later, and the received tariff, do not label the delivered
    tiers; the later tariff's labels do once it starts."""
    server = PriceServerProtocol()
    server.attributes.tier_labels = {1: b"Off-peak"}
    tier1 = tier_label_attribute(1)
    server.publish_tariff(information(start_time=START + 3600), START, values=(labels(),))
    server.publish_tariff(received_tariff(), START, values=(received_labels(),))
    assert server.attribute_values(START)[tier1] == (0x41, b"Off-peak")
    assert server.attribute_values(START + 3600)[tier1] == (0x41, b"Night")


async def test_a_display_reads_the_received_sets() -> None:
    _, _, _, server, _, ihd, _, clock = await han(44)
    asked = [*RECEIVED_EXPECTED, *RECEIVED_TIMES]
    nothing, _ = await read(ihd, asked)  # the ESI holds no received tariff: not served
    assert set(nothing.values()) == {UNSUPPORTED}
    await publish_received(server, clock)
    values, _ = await read(ihd, asked)
    for attr, (value, _) in RECEIVED_EXPECTED.items():
        assert values[attr] == value, hex(attr)
    assert values[A.RECEIVED_START_OF_BLOCK_PERIOD] <= clock()  # published "now": its time
    assert values[A.RECEIVED_CURRENT_BILLING_PERIOD_START] <= clock()
    assert values[A.RECEIVED_LAST_BILLING_PERIOD_START] < clock() - 86400 * 29
    # the delivered sets keep the delivered tariff's values
    delivered, _ = await read(ihd, [A.TARIFF_LABEL, A.TARIFF_RESOLUTION_PERIOD])
    assert delivered == {A.TARIFF_LABEL: b"Economy 7", A.TARIFF_RESOLUTION_PERIOD: 2}
    # ids the sources do not name stay unsupported
    unnamed = [received_block_threshold_attribute(15) + 1, A.RECEIVED_TIER_BLOCK_MODE + 1]
    others, _ = await read(ihd, unnamed)
    assert set(others.values()) == {UNSUPPORTED}


def test_received_thresholds_per_tier_only_are_not_the_received_block_thresholds() -> None:
    """ReceivedBlockNThreshold is one set: the thresholds that apply to every tier (tier 0).
    A received tariff with a set per tier serves none of them there; a tariff not in force
    yet serves nothing."""
    server = PriceServerProtocol()
    per_tier = BlockThresholds(
        provider_id=5,
        issuer_event_id=122,
        issuer_tariff_id=9,
        thresholds={1: (100,), 2: (200,)},
        all_tiers=False,
    )
    server.publish_tariff(received_tariff(), START, values=(per_tier,))
    values = server.attribute_values(START)
    assert values[A.RECEIVED_TARIFF_LABEL] == (0x41, b"Solar export")
    assert received_block_threshold_attribute(1) not in values
    later = PriceServerProtocol()
    later.publish_tariff(received_tariff(start_time=START + 60), START)
    assert A.RECEIVED_TARIFF_LABEL not in later.attribute_values(START)


def payments() -> list[CreditPayment]:
    """Two payments made, then the next one due (no payment date: announced only)."""
    due = CreditPayment(
        provider_id=5,
        issuer_event_id=9,
        credit_payment_due_date=START + 86400 * 40,
        credit_payment_overdue_amount=1_250,
        credit_payment_status=2,  # overdue
    )
    return [payment(5, START - 86400 * 60, b"DD-0041"), payment(7, START - 86400 * 30), due]


async def test_a_display_reads_the_credit_payment_set() -> None:
    _, _, _, server, _, ihd, _, _ = await han(45)
    first, second, third = (credit_payment_attributes(n) for n in (1, 2, 3))
    asked = [
        A.CREDIT_PAYMENT_DUE_DATE,
        A.CREDIT_PAYMENT_STATUS,
        A.CREDIT_PAYMENT_OVERDUE_AMOUNT,
        *first,
        *second,
        *third,
    ]
    nothing, _ = await read(ihd, asked)
    assert set(nothing.values()) == {UNSUPPORTED}
    for each in payments():
        await server.publish(each)
    values, _ = await read(ihd, asked)
    latest, older = payments()[1], payments()[0]
    assert values[A.CREDIT_PAYMENT_DUE_DATE] == START + 86400 * 40  # the latest word
    assert values[A.CREDIT_PAYMENT_STATUS] == 2
    assert values[A.CREDIT_PAYMENT_OVERDUE_AMOUNT] == 1_250
    assert [values[attr] for attr in first] == [4_500, latest.credit_payment_date, b"DD-0042"]
    assert [values[attr] for attr in second] == [4_500, older.credit_payment_date, b"DD-0041"]
    assert [values[attr] for attr in third] == [UNSUPPORTED] * 3  # the due one: no payment
    unnamed, _ = await read(ihd, [A.CREDIT_PAYMENT_OVERDUE_AMOUNT + 1])
    assert set(unnamed.values()) == {UNSUPPORTED}


def test_an_overdue_amount_the_attribute_cannot_hold_is_refused() -> None:
    """CreditPaymentOverDueAmount is a signed 32-bit integer: a payment overdue by more is
    refused (a display would read another amount), and nothing of it is kept."""
    server = PriceServerProtocol()
    hostile = dataclasses.replace(payments()[2], credit_payment_overdue_amount=0x80000000)
    with pytest.raises(ValueError, match="signed 32-bit"):
        server.publish_value(hostile, START)
    assert len(server.credit_payments) == 0
    assert A.CREDIT_PAYMENT_OVERDUE_AMOUNT not in server.attribute_values(START)
    server.publish_value(
        dataclasses.replace(hostile, credit_payment_overdue_amount=0x7FFFFFFF), START
    )
    assert server.attribute_values(START)[A.CREDIT_PAYMENT_OVERDUE_AMOUNT] == (0x2B, 0x7FFFFFFF)


def test_five_payments_at_most_the_most_recent_first() -> None:
    server = PriceServerProtocol()
    for n in range(7):
        server.publish_value(payment(20 + n, START - 86400 * (7 - n), b"P%d" % n), START)
    values = server.attribute_values(START)
    refs = [values[credit_payment_attributes(n)[2]][1] for n in range(1, 6)]
    assert refs == [b"P6", b"P5", b"P4", b"P3", b"P2"]
    assert 0x0860 not in values  # no sixth


@pytest.mark.oracle
async def test_tshark_reads_the_received_and_credit_payment_attributes(tmp_path) -> None:
    _, _, _, server, _, ihd, _, clock = await han(46)
    await publish_received(server, clock)
    for each in payments():
        await server.publish(each)
    first = credit_payment_attributes(1)
    asked = [
        *RECEIVED_EXPECTED,
        *RECEIVED_TIMES,
        A.CREDIT_PAYMENT_DUE_DATE,
        A.CREDIT_PAYMENT_STATUS,
        A.CREDIT_PAYMENT_OVERDUE_AMOUNT,
        *first,
    ]
    _, payloads = await read(ihd, asked)
    rsp = foundation.GeneralCommand.Read_Attributes_rsp
    frames = [air_frame(PRICE, bytes((0x18, 1 + n, rsp)) + p, 1) for n, p in enumerate(payloads)]
    packets = dissect(frames, tmp_path)
    assert not any(packet.malformed for packet in packets)
    ids = [int(v, 0) for packet in packets for v in packet.show("zbee_zcl_se.price.attr_id")]
    assert ids == asked
    expected = [
        *RECEIVED_EXPECTED.values(),
        (1_250, "zbee_zcl.attr.int32"),
        (4_500, "zbee_zcl.attr.uint32"),
        (b"DD-0042", "zbee_zcl.attr.ostr"),
    ]
    for value, field in expected:
        if not field:
            continue
        shown = [v for packet in packets for v in packet.show(field)]
        text = value.hex(":") if isinstance(value, bytes) else str(value)
        assert text in shown, (field, text, shown)
    # the three received times, the due date and payment #1's date
    assert len([v for packet in packets for v in packet.show("zbee_zcl.attr.utc")]) == 5
