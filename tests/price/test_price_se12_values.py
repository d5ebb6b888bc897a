"""SE 1.2's other Price publications in the cores (D.4.2.4.8, 10-14; D.4.2.3.9, 11-15):
Publish CO2 Value, Billing Period, Consolidated Bill, CPP Event (and CPP Event Response),
Credit Payment and Currency Conversion, and the Get commands that ask for them. Wireshark
reads every command zse encodes, field by field. No event loop."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.clusters.se_frames import air_frame, dissect
from tests.price.test_price_protocol import IEEE, frame
from tests.price.test_price_tariffs import DISPLAY, SERVER, as_received, get
from zse.errors import DecodeError
from zse.price import (
    BillingPeriod,
    Co2Value,
    ConsolidatedBill,
    CppEvent,
    CreditPayment,
    CreditPayments,
    CurrencyConversion,
)
from zse.price.protocol import (
    CppEventResponded,
    PriceClientProtocol,
    PriceServerProtocol,
    PriceValueReceived,
)
from zse.price.service import _step
from zse.price.wire import Price
from zse.se.ids import PRICE, PriceClientCommand, PriceServerCommand
from zse.se.types import CppAuth
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.frame import Step

NOW = 800_000_000
NOT_FOUND = foundation.Status.NOT_FOUND


def co2(event_id: int = 1, tariff_type: int = 0, start: int = NOW) -> Co2Value:
    return Co2Value(
        provider_id=5,
        issuer_event_id=event_id,
        start_time=start,
        tariff_type=tariff_type,
        co2_value=185,
        co2_value_unit=1,  # kg per kWh
        co2_value_trailing_digit=0x30,  # 0.185
    )


def billing(event_id: int = 2, start: int = NOW) -> BillingPeriod:
    return BillingPeriod(
        provider_id=5,
        issuer_event_id=event_id,
        billing_period_start_time=start,
        billing_period_duration=1,
        billing_period_duration_type=0x03,  # months
    )


def bill(event_id: int = 3, start: int = NOW - 86400 * 30) -> ConsolidatedBill:
    return ConsolidatedBill(
        provider_id=5,
        issuer_event_id=event_id,
        billing_period_start_time=start,
        billing_period_duration=1,
        billing_period_duration_type=0x03,
        consolidated_bill=8_412,
        currency=826,
        bill_trailing_digit=0x20,  # 84.12
    )


def cpp(event_id: int = 4, auth: int = CppAuth.Pending) -> CppEvent:
    return CppEvent(
        provider_id=5,
        issuer_event_id=event_id,
        start_time=NOW + 3600,
        duration_in_minutes=120,
        cpp_price_tier=1,
        cpp_auth=auth,
    )


def payment(event_id: int = 5, date: int = NOW - 86400, ref: bytes = b"DD-0042") -> CreditPayment:
    return CreditPayment(
        provider_id=5,
        issuer_event_id=event_id,
        credit_payment_due_date=NOW + 86400 * 14,
        credit_payment_overdue_amount=0,
        credit_payment_status=1,
        credit_payment=4_500,
        credit_payment_date=date,
        credit_payment_ref=ref,
    )


def conversion(event_id: int = 6) -> CurrencyConversion:
    return CurrencyConversion(
        provider_id=5,
        issuer_event_id=event_id,
        start_time=0,
        old_currency=826,
        new_currency=978,
        conversion_factor=11_500,
        conversion_factor_trailing_digit=0x40,  # 1.15
        currency_change_control_flags=0x03,
    )


VALUES = [co2(), billing(), bill(), cpp(), payment(), conversion()]


@pytest.mark.oracle
def test_tshark_reads_every_se12_value_command_zse_encodes(tmp_path) -> None:
    server = PriceServerProtocol()
    sends = [send for value in VALUES for send in server.publish_value(value, NOW, DISPLAY).sends]
    client = PriceClientProtocol()
    requests = [
        client.get_typed_values(SERVER, Co2Value, NOW, 2, 1),
        client.get_typed_values(SERVER, BillingPeriod),
        client.get_typed_values(SERVER, ConsolidatedBill),
        client.cpp_event_response(SERVER, 4, CppAuth.Accepted),
        client.get_credit_payment(SERVER, NOW, 3),
        client.get_currency_conversion(SERVER),
    ]
    frames = [
        air_frame(
            PRICE, bytes((0x19 if n < len(sends) else 0x11, n, s.command_id)) + s.payload, n + 1
        )
        for n, s in enumerate([*sends, *requests])
    ]
    packets = dissect(frames, tmp_path)
    assert not any(packet.malformed for packet in packets)
    co2_p, billing_p, bill_p, cpp_p, payment_p, conversion_p, *asks = packets

    def shown(packet: Any, name: str) -> list[str]:
        return packet.show(f"zbee_zcl_se.price.{name}")

    assert [shown(p, "cmd.srv_tx.id")[0] for p in packets[:6]] == [
        "0x07", "0x09", "0x0a", "0x0b", "0x0c", "0x0d",
    ]  # fmt: skip
    assert shown(co2_p, "co2.value") == ["185"]
    assert shown(co2_p, "co2.unit") == ["0x01"]
    assert shown(co2_p, "co2.value.trailing_digit")[-1] == "3"
    assert shown(billing_p, "billing_period.duration") == ["1"]
    assert shown(billing_p, "billing_period.duration.timebase") == ["0x03"]
    assert shown(bill_p, "consolidated_bill") == ["8412"]
    assert shown(bill_p, "currency") == ["0x033a"]
    assert shown(bill_p, "consolidated_bill.trailing_digit")[-1] == "2"
    assert shown(cpp_p, "duration_in_minutes") == ["120"]
    assert shown(cpp_p, "cpp_price_tier") == ["1"]
    assert shown(cpp_p, "cpp_auth") == ["0"]
    assert shown(payment_p, "credit_payment") == ["4500"]
    assert shown(payment_p, "credit_payment.status") == ["1"]
    assert shown(payment_p, "credit_payment.ref") == ["DD-0042"]
    assert shown(conversion_p, "old_currency") == ["0x033a"]
    assert shown(conversion_p, "new_currency") == ["0x03d2"]
    assert shown(conversion_p, "conversion_factor") == ["11500"]
    assert shown(conversion_p, "currency_change_control_flags") == ["0x00000003"]
    assert [shown(p, "cmd.srv_rx.id")[0] for p in asks] == [
        "0x09",
        "0x0b",
        "0x0c",
        "0x0d",
        "0x0e",
        "0x0f",
    ]
    co2_ask, _, _, response, payment_ask, _ = asks
    assert shown(co2_ask, "number_of_commands") == ["2"]
    assert shown(co2_ask, "tariff_type") == ["0x01"]
    assert shown(response, "issuer_event_id") == ["4"]
    assert shown(response, "cpp_auth") == ["1"]
    assert shown(payment_ask, "number_of_records") == ["3"]


def test_every_value_reaches_the_client_and_round_trips() -> None:
    server = PriceServerProtocol()
    client = PriceClientProtocol()
    for value in VALUES:
        (send,) = server.publish_value(value, NOW, DISPLAY).sends
        step = _step(client, as_received(send), lambda: NOW)
        assert step.events == (PriceValueReceived(source_nwk=0x1234, value=value, new=True),)
        assert step.sends == ()  # none asks for an acknowledgement
        again = _step(client, as_received(send), lambda: NOW)
        assert again.events[0].new is False
    assert client.co2_values.current(NOW) == co2()
    assert client.billing_periods.current(NOW) == billing()
    assert client.consolidated_bills.current(NOW) == bill()
    assert client.cpp_events.held(NOW) == [cpp()]
    assert client.credit_payments.upto(NOW, 0) == [payment()]
    assert client.currency_conversions.current(NOW) == conversion()


def test_the_server_answers_each_get_or_not_found() -> None:
    server = PriceServerProtocol()
    for name in ("get_co2_value", "get_billing_period", "get_consolidated_bill"):
        ask = get(
            name,
            earliest_start_time=0,
            min_issuer_event_id=0xFFFFFFFF,
            number_of_commands=0,
            tariff_type=0,
        )
        assert _step(server, ask, lambda: NOW) == Step(status=NOT_FOUND)
    assert _step(
        server, get("get_credit_payment", latest_end_time=NOW, number_of_records=0), lambda: NOW
    ) == Step(status=NOT_FOUND)
    assert _step(server, get("get_currency_conversion"), lambda: NOW) == Step(status=NOT_FOUND)
    for value in [
        co2(1),
        co2(7, tariff_type=1),
        co2(8, start=NOW + 60),
        billing(),
        bill(),
        conversion(),
    ]:
        server.publish_value(value, NOW)
    for event_id, date in ((10, NOW - 300), (11, NOW - 100), (12, NOW + 100)):
        server.publish_value(payment(event_id, date), NOW)
    client = PriceClientProtocol()

    def answered(ask: Any, now: int = NOW) -> list[Any]:
        step = _step(server, ask, lambda: now)
        assert all(send.reply_to is not None for send in step.sends)
        return [
            e.value
            for send in step.sends
            for e in _step(client, as_received(send), lambda: now).events
        ]

    delivered = {
        "earliest_start_time": 0,
        "min_issuer_event_id": 0xFFFFFFFF,
        "number_of_commands": 0,
        "tariff_type": 0,
    }
    assert answered(get("get_co2_value", **delivered)) == [co2(1), co2(8, start=NOW + 60)]
    assert answered(get("get_co2_value", **delivered | {"number_of_commands": 1})) == [co2(1)]
    assert answered(get("get_co2_value", **delivered | {"tariff_type": 1})) == [
        co2(7, tariff_type=1)
    ]
    assert answered(get("get_billing_period", **delivered)) == [billing()]
    assert answered(get("get_consolidated_bill", **delivered)) == [bill()]
    # the most recent first, dated no later than the latest end time
    payments = answered(get("get_credit_payment", latest_end_time=NOW, number_of_records=0))
    assert [p.issuer_event_id for p in payments] == [11, 10]
    assert [
        p.issuer_event_id
        for p in answered(get("get_credit_payment", latest_end_time=NOW, number_of_records=1))
    ] == [11]
    # start "now" answered with when it was published
    assert answered(get("get_currency_conversion"), NOW + 5) == [
        CurrencyConversion(**{**conversion().to_fields(), "start_time": NOW})
    ]


def test_a_cpp_event_asking_authorization_is_answered_by_the_application() -> None:
    """The client keeps a Pending CPP event and answers nothing by itself; the application's
    CPP Event Response reaches the server as an event (SUCCESS)."""
    server = PriceServerProtocol()
    client = PriceClientProtocol()
    (send,) = server.publish_value(cpp(), NOW, DISPLAY).sends
    step = _step(client, as_received(send), lambda: NOW)
    assert step.sends == ()
    response = client.cpp_event_response(SERVER, 4, CppAuth.Accepted)
    heard = _step(server, frame(response.command_id, response.payload), lambda: NOW)
    assert heard == Step(
        events=(
            CppEventResponded(source_nwk=0x1234, source_ieee=IEEE, issuer_event_id=4, cpp_auth=1),
        ),
        status=foundation.Status.SUCCESS,
    )


def test_a_credit_payment_ref_too_long_is_malformed() -> None:
    fields = payment().to_fields() | {"credit_payment_ref": b"R" * 21}
    msg = frame(
        PriceClientCommand.PUBLISH_CREDIT_PAYMENT,
        encode_command(Price.ClientCommandDefs.publish_credit_payment.schema(**fields)),
        from_server=True,
    )
    client = PriceClientProtocol()
    assert _step(client, msg, lambda: NOW) == Step(status=foundation.Status.MALFORMED_COMMAND)
    assert len(client.credit_payments) == 0


def test_credit_payments_kept_are_bounded_the_latest_dates_kept() -> None:
    payments = CreditPayments(limit=3)
    for n in range(10):
        payments.add(payment(n, NOW + n), NOW)
    assert [p.issuer_event_id for p in payments.upto(0xFFFFFFFF, 0)] == [9, 8, 7]


_PUBLISHED = [
    PriceClientCommand.PUBLISH_CO2_VALUE,
    PriceClientCommand.PUBLISH_BILLING_PERIOD,
    PriceClientCommand.PUBLISH_CONSOLIDATED_BILL,
    PriceClientCommand.PUBLISH_CPP_EVENT,
    PriceClientCommand.PUBLISH_CREDIT_PAYMENT,
    PriceClientCommand.PUBLISH_CURRENCY_CONVERSION,
]
_ASKED = [
    PriceServerCommand.GET_CO2_VALUE,
    PriceServerCommand.GET_BILLING_PERIOD,
    PriceServerCommand.GET_CONSOLIDATED_BILL,
    PriceServerCommand.CPP_EVENT_RESPONSE,
    PriceServerCommand.GET_CREDIT_PAYMENT,
    PriceServerCommand.GET_CURRENCY_CONVERSION,
]


@given(st.sampled_from(_PUBLISHED), st.binary(max_size=60))
def test_garbage_se12_publications_give_only_decode_errors_or_a_status(
    command_id: int, data: bytes
) -> None:
    with contextlib.suppress(DecodeError):
        decode_command(Price, command_id, data, from_server=True)
    step = _step(PriceClientProtocol(), frame(command_id, data, from_server=True), lambda: NOW)
    assert isinstance(step, Step)


@given(st.sampled_from(_ASKED), st.binary(max_size=30))
def test_garbage_se12_requests_give_a_status_never_a_crash(command_id: int, data: bytes) -> None:
    server = PriceServerProtocol()
    for value in VALUES:
        server.publish_value(value, NOW)
    step = _step(server, frame(command_id, data), lambda: NOW)
    assert isinstance(step, Step)
