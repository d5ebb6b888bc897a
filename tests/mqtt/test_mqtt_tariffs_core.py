"""SE 1.2 Price on MQTT, the sans-IO part (ADR 0030): each kind of the ESI's Price sends on a
retained topic of its own under ``<meter>/price/``, a tariff whole with its matrix,
thresholds and labels (bounded in size), and the ``publish_tariff`` / ``cancel_tariff`` /
``publish_price`` commands, each mistake one error naming its field."""

from __future__ import annotations

import dataclasses
import json
import logging
import typing
from pathlib import Path
from typing import Any

import pytest

from tests.price.test_price_se12_values import VALUES, co2, cpp
from tests.price.test_price_tariffs import information, labels, thresholds
from zse.cli.mqtt import simulated_esi
from zse.mqtt.bridge import MqttBridge
from zse.mqtt.core import (
    EVENT_KINDS,
    HAN_EVENT_KINDS,
    MAX_BATCH_BYTES,
    MAX_COMMAND_BYTES,
    METER_EVENT_KINDS,
    SENT_KINDS,
    CancelTariff,
    CommandError,
    PublishPrice,
    PublishTariff,
    Topics,
    event_publication,
    parse_command,
    parse_settings,
    sent_publication,
)
from zse.price import BlockThresholds, PriceMatrix, TariffCancellation, TierLabels
from zse.price.service import (
    CppEventResponded,
    PriceReceived,
    PriceValueReceived,
    TariffCancelled,
    TariffReceived,
)
from zse.roles.esi import EsiEvent, PriceSent, SendResult, TariffCancelSent, TariffSent
from zse.se.types import CppAuth

METER = "00:0d:6f:00:00:00:00:e5"
IHD = "00:0d:6f:00:0a:00:00:01"
RESULT = SendResult(what="x", target=f"device {IHD}", outcomes=())
MATRIX = PriceMatrix(
    provider_id=5,
    issuer_event_id=101,
    issuer_tariff_id=7,
    prices={(1, 1): 1500, (1, 2): 1750, (2, 1): 2500, (2, 2): 2750},
)


def test_each_kind_of_price_send_has_its_own_retained_topic() -> None:
    """A tariff, its cancellation and each SE 1.2 value go to ``<meter>/price/<kind>``,
    retained; the retained ``price`` is never one of them."""
    base = "zse/000d6f00000000e5/price"
    tariff = TariffSent(tariff=information(), values=(MATRIX, labels()), result=RESULT)
    cancel = TariffCancelSent(
        cancellation=TariffCancellation(provider_id=5, issuer_tariff_id=7), result=RESULT
    )
    sent = [tariff, cancel, *(PriceSent(price=v, result=RESULT) for v in VALUES)]
    found = {}
    for event in sent:
        publication = sent_publication(Topics(), METER, event, 9)
        assert publication is not None, type(event).__name__
        assert publication.retain
        assert publication.payload["target"] == f"device {IHD}"
        assert publication.payload["outcomes"] == []
        found[publication.topic] = publication.payload["event"]
    assert found == {
        f"{base}/tariff": "TariffInformation",
        f"{base}/tariff_cancelled": "TariffCancellation",
        f"{base}/co2_value": "Co2Value",
        f"{base}/billing_period": "BillingPeriod",
        f"{base}/consolidated_bill": "ConsolidatedBill",
        f"{base}/cpp_event": "CppEvent",
        f"{base}/credit_payment": "CreditPayment",
        f"{base}/currency_conversion": "CurrencyConversion",
    }
    unretained = sent_publication(Topics(), METER, tariff, 9, retain=False)
    assert unretained is not None
    assert not unretained.retain


def test_a_tariff_is_published_whole_and_readable() -> None:
    tariff = TariffSent(
        tariff=information(), values=(MATRIX, thresholds(), labels()), result=RESULT
    )
    publication = sent_publication(Topics(), METER, tariff, 9)
    assert publication is not None
    payload = publication.payload
    assert (payload["tariff_label"], payload["issuer_tariff_id"]) == ("Economy 7", 7)
    assert (payload["tariff_type"], payload["charging_scheme"]) == (0, 2)
    assert payload["tier_labels"]["labels"] == {"1": "Night", "2": "Day"}
    assert payload["block_thresholds"]["thresholds"] == {"0": [2000, 5000]}
    assert payload["block_thresholds"]["all_tiers"] is True
    assert payload["price_matrix"]["prices"][1] == {
        "tier": 1,
        "block": 2,
        "price": 1750,
        "price_per_unit": 0.175,  # the tariff's 4 trailing digits
    }
    alone = sent_publication(
        Topics(), METER, TariffSent(tariff=information(), values=(), result=RESULT), 9
    )
    assert alone is not None
    assert alone.payload["price_matrix"] is None  # every key there, None when not sent
    json.dumps(payload)  # plain JSON


def _largest() -> TariffSent:
    """The largest tariff: a 16 x 16 block matrix of 10-digit prices, 16 tiers of 15
    thresholds of 15 digits, 48 labels of 12 octets, a 24-octet label."""
    big = 0xFFFFFFFF
    matrix = PriceMatrix(
        provider_id=big,
        issuer_event_id=big,
        issuer_tariff_id=big,
        start_time=big,
        prices={(t, b): big for t in range(16) for b in range(1, 17)},
    )
    bounds = BlockThresholds(
        provider_id=big,
        issuer_event_id=big,
        issuer_tariff_id=big,
        start_time=big,
        thresholds=dict.fromkeys(range(16), ((1 << 48) - 1,) * 15),
        all_tiers=False,
    )
    names = TierLabels(
        provider_id=big,
        issuer_event_id=big,
        issuer_tariff_id=big,
        labels=dict.fromkeys(range(1, 49), b"\x7f" * 12),
    )
    tariff = information(
        tariff_label=b"\x7f" * 24, provider_id=big, issuer_tariff_id=big, start_time=big
    )
    return TariffSent(tariff=tariff, values=(matrix, bounds, names), result=RESULT)


def test_the_largest_tariff_fits_a_batch_and_its_command_is_read() -> None:
    """The largest tariff's payload stays under 32 KiB (the broker's packet limit is to be
    kept above 64 KiB, the largest batch); the command that publishes it is longer than
    other commands may be, and is read."""
    largest = _largest()
    publication = sent_publication(Topics(), METER, largest, 9)
    assert publication is not None
    assert len(publication.encode()) < 32_768
    matrix, bounds, _names = largest.values
    head = {"issuer_event_id": 0xFFFFFFFF}
    body = _command(
        tariff=_jsonable_tariff(largest),
        price_matrix={
            **head,
            "start_time": 0xFFFFFFFF,
            "prices": [{"tier": t, "block": b, "price": p} for (t, b), p in matrix.prices.items()],
        },
        block_thresholds={
            **head,
            "start_time": 0xFFFFFFFF,
            "all_tiers": False,
            "thresholds": {str(t): list(v) for t, v in bounds.thresholds.items()},
        },
        tier_labels={**head, "labels": {str(t): "\x7f" * 12 for t in range(1, 49)}},
    )
    assert MAX_COMMAND_BYTES < len(body) < MAX_BATCH_BYTES
    command = parse_command("publish_tariff", body)
    assert isinstance(command, PublishTariff)
    assert command.values == largest.values
    with pytest.raises(CommandError, match=f"longer than {MAX_BATCH_BYTES}"):
        parse_command("publish_tariff", body[:-1] + b" " * MAX_BATCH_BYTES + b"}")


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _jsonable_tariff(sent: TariffSent) -> dict[str, Any]:
    fields = _fields(sent.tariff)
    fields["tariff_label"] = fields["tariff_label"].decode()
    return fields


def _command(**fields: Any) -> bytes:
    return json.dumps({"correlation_id": "t-1", "device": IHD, **fields}).encode()


TARIFF = {
    "provider_id": 5,
    "issuer_event_id": 100,
    "issuer_tariff_id": 7,
    "start_time": 0,
    "tariff_type_charging_scheme": 0x20,
    "tariff_label": "Economy 7",
    "number_of_price_tiers_in_use": 2,
    "number_of_block_thresholds_in_use": 2,
    "currency": 826,
    "price_trailing_digit": 0x40,
    "standing_charge": 2500,
    "tier_block_mode": 1,
    "block_threshold_divisor": 1000,
}


def test_publish_tariff_builds_the_tariff_and_its_values() -> None:
    command = parse_command(
        "publish_tariff",
        _command(
            tariff=TARIFF,
            price_matrix={
                "issuer_event_id": 101,
                "prices": [
                    {"tier": t, "block": b, "price": p} for (t, b), p in MATRIX.prices.items()
                ],
            },
            block_thresholds={"issuer_event_id": 102, "thresholds": {"0": [2000, 5000]}},
            tier_labels={"issuer_event_id": 103, "labels": {"1": "Night", "2": "Day"}},
        ),
    )
    assert isinstance(command, PublishTariff)
    assert command.target.keywords() == {"device": IHD}
    assert command.tariff == information(tier_block_mode=1)
    assert command.values == (MATRIX, thresholds(), labels())
    # the values' issuer event ids default to the tariff's
    alone = parse_command("publish_tariff", _command(tariff=TARIFF, tier_labels={"labels": {}}))
    assert isinstance(alone, PublishTariff)
    assert alone.values == (TierLabels(provider_id=5, issuer_event_id=100, issuer_tariff_id=7,
                                       labels={}),)  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({}, "tariff", "expected a JSON object"),
        ({"tariff": {**TARIFF, "currency": None}}, "tariff.currency", "expected an integer"),
        ({"tariff": {k: v for k, v in TARIFF.items() if k != "currency"}}, "tariff.currency",
         "missing"),
        ({"tariff": {**TARIFF, "tariff_label": "x" * 25}}, "tariff.tariff_label", "longer than"),
        ({"tariff": {**TARIFF, "colour": 1}}, "tariff.colour", "unknown field"),
        ({"tariff": TARIFF, "matrix": {}}, "matrix", "unknown field"),
        ({"tariff": TARIFF, "price_matrix": {"prices": []}}, "price_matrix.prices",
         "expected a list of 1-256 prices"),
        ({"tariff": TARIFF, "price_matrix": {"prices": [{"tier": 1, "price": -1}]}},
         "price_matrix.prices[0].price", "outside 0..4294967295"),
        ({"tariff": TARIFF, "price_matrix": {"prices": [{"tier": 1, "price": 1}] * 2}},
         "price_matrix.prices[1]", "priced twice"),
        ({"tariff": TARIFF, "price_matrix": {"prices": [{"tier": 20, "block": 2, "price": 1}]}},
         "price_matrix.prices", "tiers 0-15, blocks 1-16"),
        ({"tariff": TARIFF, "price_matrix": {"tou": 1, "prices": [{"tier": 1, "price": 1}]}},
         "price_matrix.tou", "expected true or false"),
        ({"tariff": TARIFF, "block_thresholds": {"thresholds": {"x": []}}},
         "block_thresholds.thresholds.x", "expected a tier number 0-15"),
        ({"tariff": TARIFF, "block_thresholds": {"thresholds": {"0": [1] * 16}}},
         "block_thresholds.thresholds.0", "up to 15 thresholds"),
        ({"tariff": TARIFF, "block_thresholds": {"thresholds": {"3": [1]}}},
         "block_thresholds.thresholds", "under tier 0 only"),
        ({"tariff": TARIFF, "tier_labels": {"labels": {"1": "x" * 13}}},
         "tier_labels.labels.1", "longer than 12 octets"),
        ({"tariff": TARIFF, "tier_labels": {"labels": {"1": "Nuit\u00e9"}}},
         "tier_labels.labels.1", "expected ASCII text"),
        ({"tariff": TARIFF, "tier_labels": {"labels": {"0": "none"}}},
         "tier_labels.labels.0", "labelled from 1"),
        ({"tariff": TARIFF, "tier_labels": {"labels": {"49": "x"}}},
         "tier_labels.labels.49", "tier number 0-48"),
    ],
)  # fmt: skip
def test_each_mistake_in_publish_tariff_names_its_field(
    fields: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(CommandError) as refused:
        parse_command("publish_tariff", _command(**fields))
    assert refused.value.field == field
    assert words in refused.value.reason


def test_cancel_tariff_and_the_se12_values_of_publish_price() -> None:
    cancel = parse_command(
        "cancel_tariff", _command(provider_id=5, issuer_tariff_id=7, tariff_type=1)
    )
    assert isinstance(cancel, CancelTariff)
    assert cancel.cancellation == TariffCancellation(
        provider_id=5, issuer_tariff_id=7, tariff_type=1
    )
    with pytest.raises(CommandError) as refused:
        parse_command("cancel_tariff", _command(provider_id=5))
    assert (refused.value.field, refused.value.reason) == (
        "issuer_tariff_id",
        "expected an integer",
    )
    event = cpp()
    fields = {k: getattr(event, k) for k in event.to_fields()}
    price = parse_command("publish_price", _command(cpp_event=fields))
    assert isinstance(price, PublishPrice)
    assert price.price == event
    value = co2()
    price = parse_command("publish_price", _command(co2_value=value.to_fields()))
    assert isinstance(price, PublishPrice)
    assert price.price == value
    with pytest.raises(CommandError) as refused:
        parse_command("publish_price", _command(cpp_event=fields, co2_value=value.to_fields()))
    assert refused.value.field == "price"
    assert "give exactly one of price, block_period" in refused.value.reason
    with pytest.raises(CommandError) as refused:
        parse_command("publish_price", _command(cpp_event={**fields, "cpp_auth": 256}))
    assert refused.value.field == "cpp_event.cpp_auth"
    paid = {"provider_id": 5, "issuer_event_id": 5, "credit_payment_due_date": 1}
    with pytest.raises(CommandError) as refused:
        parse_command(
            "publish_price", _command(credit_payment={**paid, "credit_payment_ref": "x" * 21})
        )
    assert refused.value.field == "credit_payment.credit_payment_ref"
    price = parse_command(
        "publish_price", _command(credit_payment={**paid, "credit_payment_ref": "DD-1"})
    )
    assert isinstance(price, PublishPrice)
    assert price.price.credit_payment_ref == b"DD-1"


def test_a_device_s_cpp_event_response_is_its_event_on_its_price_topic() -> None:
    answered = CppEventResponded(
        source_nwk=0x1234, source_ieee=IHD, issuer_event_id=4, cpp_auth=int(CppAuth.Accepted)
    )
    publication = event_publication(Topics(), answered, 9)
    assert publication is not None
    assert publication.topic == "zse/000d6f000a000001/price"
    assert not publication.retain
    assert (publication.payload["event"], publication.payload["cpp_auth"]) == (
        "CppEventResponded",
        "accepted",  # CPP Auth by name (SE D.4.2.3.14.1.2)
    )


def test_every_event_of_the_esi_has_a_topic() -> None:
    """Each kind of event the ESI emits (:data:`zse.roles.esi.EsiEvent`) is a device's event
    or a send the bridge publishes: TariffSent, TariffCancelSent and CppEventResponded had
    no topic and were dropped without a word. A kind added later fails here until it has
    one; each Price event a HAN device passes on too."""
    kinds = {*EVENT_KINDS, *SENT_KINDS, *METER_EVENT_KINDS}
    assert {cls.__name__ for cls in typing.get_args(EsiEvent)} <= kinds
    han = {PriceReceived, PriceValueReceived, TariffReceived, TariffCancelled}
    assert {cls.__name__ for cls in han} <= set(HAN_EVENT_KINDS)


async def test_an_esi_event_without_a_topic_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    @dataclasses.dataclass(frozen=True)
    class Unheard:
        device: str = IHD

    async with simulated_esi(tmp_path) as sim:
        bridge = MqttBridge(
            sim.esi, parse_settings({"url": "mqtt://localhost:1"}), store=sim.registry.store
        )
        with caplog.at_level(logging.WARNING, logger="zse.mqtt.bridge"):
            assert bridge._on_event(Unheard()) is None
            assert bridge._on_event(Unheard()) is None
    said = [r.getMessage() for r in caplog.records if "has no topic" in r.getMessage()]
    assert said == ["MQTT bridge: the ESI's event Unheard has no topic; not published"]
