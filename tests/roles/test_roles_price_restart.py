"""The ESI's prices and tariffs survive its restart (its Price server keeps them in the ESI's
store, docs/persistence.md): a display asking after the restart gets the price and the SE 1.2
tariff published before it, and the prepay account charges a reading at the stored price.
Real components, virtual time."""

from __future__ import annotations

import asyncio

from tests.price.test_price_tariffs import as_sent, information, labels
from tests.roles.han_builder import build, close, restarted
from tests.roles.test_roles_esi_registry import joined_han, price
from tests.roles.test_roles_prepayment import esi_options
from tests.roles.test_roles_tariffs import MATRIX
from zse.metering.core import Readings
from zse.price import PriceMatrix, TierLabels


async def test_a_price_and_a_tariff_published_before_a_restart_are_answered_after_it(
    tmp_path,
) -> None:
    han = await joined_han(tmp_path, names=("ihd",))
    ihd = han.devices["ihd"]
    published_at = han.clock()
    await han.esi.price.publish(price(1))  # recorded only: nobody is sent it
    await han.esi.price.publish_tariff(information(), MATRIX, labels())
    await asyncio.sleep(60)
    await restarted(han)
    assert await ihd.price.get_current_price() == price(1).resolved(published_at)
    await ihd.price.ask_tariff_information()
    await asyncio.sleep(1)
    for kind in (PriceMatrix, TierLabels):
        await ihd.price.ask_tariff_value(kind, 7)
    await asyncio.sleep(2)
    now = han.clock()
    assert ihd.price.tariffs.current(now) == information(start_time=published_at)
    assert ihd.price.tariffs.value(PriceMatrix, 7, now) == as_sent(MATRIX, published_at)
    assert ihd.price.tariffs.value(TierLabels, 7, now) == labels()
    await close(han)


async def test_the_prepay_account_charges_at_the_stored_price_after_a_restart(tmp_path) -> None:
    han = await build(tmp_path, **esi_options())
    await han.esi.price.publish(price(1))  # 0.250 a kWh: 25 pence
    assert han.esi.meter is not None
    await han.esi.meter.feed(Readings(summation_delivered=0))  # where the charge counts from
    again = await restarted(han, **esi_options())
    assert again.meter is not None
    assert again.prepayment is not None
    await again.meter.feed(Readings(summation_delivered=28_000))  # 28 kWh: 700 p
    assert again.prepayment.account.credit == 1000 - 700
    await close(han)
