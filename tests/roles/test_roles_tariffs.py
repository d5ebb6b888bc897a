"""SE 1.2 tariffs, a CPP event and a bill from the ESI to an in-home display on the simulator
(D.4.2.4.5-7, 9, 15; D.4.2.4.11-12):
the ESI publishes a block/TOU tariff with its price matrix, block thresholds and tier labels
(the matrix in several frames), the display puts them together and tells the application;
a display that missed them asks (Get Tariff Information, Get Price Matrix...); Cancel Tariff
takes the tariff away on both sides. Real components, virtual time."""

from __future__ import annotations

import asyncio

from tests.price.test_price_se12_values import bill, conversion, cpp
from tests.price.test_price_tariffs import as_sent, information, labels, thresholds
from tests.roles.han_builder import EUIS, close
from tests.roles.test_roles_esi_registry import joined_han
from zse.price import BlockThresholds, PriceMatrix, TariffCancellation, TierLabels
from zse.price.service import (
    CppEventResponded,
    PriceValueReceived,
    TariffCancelled,
    TariffReceived,
)
from zse.roles.esi import TariffCancelSent, TariffSent
from zse.se.types import CppAuth

#: A GB-style block/TOU matrix: 15 tiers x 4 blocks, 60 prices, 300 octets: 6 frames.
MATRIX = PriceMatrix(
    provider_id=5,
    issuer_event_id=101,
    issuer_tariff_id=7,
    prices={
        (tier, block): 1500 + 10 * tier + block for tier in range(1, 16) for block in range(1, 5)
    },
)


def received(han, kind: type) -> list:
    return [
        e.value
        for e in han.device_events["ihd"]
        if isinstance(e, TariffReceived) and isinstance(e.value, kind)
    ]


async def test_the_esi_publishes_a_tariff_the_display_puts_together(tmp_path) -> None:
    han = await joined_han(tmp_path, names=("ihd",))
    esi, ihd = han.esi, han.devices["ihd"]
    assert len(MATRIX.parts()) > 1  # really sent in several frames
    published_at = han.clock()
    result = await esi.publish_tariff(
        information(), MATRIX, thresholds(), labels(), device=EUIS["ihd"]
    )
    assert result.delivered == [EUIS["ihd"]]
    await asyncio.sleep(2)
    now = han.clock()
    # published for "now": the parts carry the tariff's start, as a Get is answered
    assert received(han, PriceMatrix) == [as_sent(MATRIX, published_at)]
    assert received(han, BlockThresholds) == [as_sent(thresholds(), published_at)]
    assert received(han, TierLabels) == [labels()]
    held = ihd.price.tariffs
    assert held.current(now).issuer_tariff_id == 7
    assert held.value(PriceMatrix, 7, now) == as_sent(MATRIX, published_at)
    assert held.value(TierLabels, 7, now).labels == {1: b"Night", 2: b"Day"}
    (sent,) = [e for e in han.events if isinstance(e, TariffSent)]
    assert sent.values == (MATRIX, thresholds(), labels())

    cancellation = TariffCancellation(provider_id=5, issuer_tariff_id=7)
    cancelled = await esi.cancel_tariff(cancellation, device=EUIS["ihd"])
    assert cancelled.delivered == [EUIS["ihd"]]
    await asyncio.sleep(2)
    now = han.clock()
    assert [e.held for e in han.device_events["ihd"] if isinstance(e, TariffCancelled)] == [True]
    assert held.held(now) == []
    assert held.value(PriceMatrix, 7, now) is None
    assert esi.price.protocol.tariffs.held(now) == []
    assert any(isinstance(e, TariffCancelSent) for e in han.events)
    await close(han)


async def test_a_display_that_missed_the_tariff_asks_for_it(tmp_path) -> None:
    """Published to nobody (recorded only), the tariff reaches the display when it asks:
    Get Tariff Information, then Get Price Matrix, Get Block Thresholds, Get Tier Labels;
    the matrix's start "now" comes back as when it was published."""
    han = await joined_han(tmp_path, names=("ihd",))
    esi, ihd = han.esi, han.devices["ihd"]
    await esi.price.publish_tariff(information(), MATRIX, thresholds(), labels())
    published_at = han.clock()
    await ihd.price.ask_tariff_information()
    await asyncio.sleep(1)
    for kind in (PriceMatrix, BlockThresholds, TierLabels):
        await ihd.price.ask_tariff_value(kind, 7)
    await asyncio.sleep(2)
    now = han.clock()
    assert ihd.price.tariffs.current(now) == information(start_time=published_at)
    assert received(han, PriceMatrix) == [
        PriceMatrix(
            provider_id=5,
            issuer_event_id=101,
            issuer_tariff_id=7,
            start_time=published_at,
            prices=MATRIX.prices,
        )
    ]
    assert received(han, TierLabels) == [labels()]
    await ihd.price.ask_tariff_cancellation()  # none sent yet: NOT_FOUND, nothing happens
    await asyncio.sleep(1)
    assert not [e for e in han.device_events["ihd"] if isinstance(e, TariffCancelled)]
    await close(han)


async def test_a_cpp_event_is_answered_and_a_bill_reaches_the_display(tmp_path) -> None:
    """SE 1.2 D.4.2.4.11-12, D.4.2.3.14: the ESI publishes a CPP event asking authorization
    and a consolidated bill; the display's application accepts the CPP event and the ESI
    hears it; the display asks for the currency conversion in force and keeps it."""
    han = await joined_han(tmp_path, names=("ihd",))
    esi, ihd = han.esi, han.devices["ihd"]
    assert (await esi.publish_price(cpp(), device=EUIS["ihd"])).delivered == [EUIS["ihd"]]
    assert (await esi.publish_price(bill(), device=EUIS["ihd"])).delivered == [EUIS["ihd"]]
    await esi.price.publish(conversion())  # recorded only
    await asyncio.sleep(1)
    values = [e.value for e in han.device_events["ihd"] if isinstance(e, PriceValueReceived)]
    assert cpp() in values
    assert bill() in values
    await ihd.price.respond_cpp_event(cpp().issuer_event_id, accepted=True)
    await ihd.price.ask_currency_conversion()
    await asyncio.sleep(1)
    (answer,) = [e for e in han.events if isinstance(e, CppEventResponded)]
    assert (answer.issuer_event_id, answer.cpp_auth) == (4, CppAuth.Accepted)
    assert ihd.price.currency_conversions.current(han.clock()).new_currency == 978
    await close(han)
