"""The ESI's meter keeps tier summations (SE D.3.2.2.2) by the price in force (Publish Price's
tier, D.4.2.4.1), and a display reads them over the simulated air: a price change between
readings puts the next reading's use in the new tier; once a price has ended (none in force)
what is read is in no tier; after a restart the stored tiers and the price in force go on.
Real components, virtual time."""

from __future__ import annotations

import asyncio
import dataclasses
from fractions import Fraction

from tests.roles.han_builder import EUIS, build, close, restarted
from tests.roles.test_roles_esi_registry import price
from tests.roles.test_roles_prepayment import METER
from zse.metering.core import Readings
from zse.price import PriceEvent


def tier_price(issuer_event_id: int, tier: int, **fields: int) -> PriceEvent:
    return dataclasses.replace(price(issuer_event_id), price_tier=tier, **fields)


def kwh(tiers, n: int) -> tuple[Fraction | None, Fraction | None]:
    shown = tiers[n]
    return (
        None if shown.delivered is None else shown.delivered.value,
        None if shown.received is None else shown.received.value,
    )


async def test_a_display_reads_the_tier_summations_after_a_price_change(tmp_path) -> None:
    han = await build(tmp_path, meter=METER)
    esi = han.esi
    assert esi.meter is not None
    await esi.provision(EUIS["ihd"])
    ihd = han.add("ihd", metering=True)
    await ihd.start()
    await asyncio.sleep(30)
    await esi.settle()
    assert ihd.metering is not None
    await esi.meter.feed(Readings(summation_delivered=1_000))  # before any price: no tier
    await esi.publish_price(tier_price(1, tier=1), device=EUIS["ihd"])
    await esi.meter.feed(Readings(summation_delivered=3_500))  # 2.5 kWh in tier 1
    await esi.publish_price(tier_price(2, tier=2), device=EUIS["ihd"])  # supersedes it
    await esi.meter.feed(Readings(summation_delivered=4_250))  # 0.75 kWh in tier 2
    tiers = await ihd.metering.read_tier_summations((1, 2, 3))
    assert kwh(tiers, 1) == (Fraction(5, 2), None)  # divisor 1000: Wh shown as kWh
    assert kwh(tiers, 2) == (Fraction(3, 4), None)
    assert kwh(tiers, 3) == (None, None)  # never in force: the meter does not hold it
    formatting = ihd.metering.protocol.formatting
    assert formatting is not None
    assert tiers[2].delivered == formatting.summation(750)  # as the summation is shown
    # a tier-3 price for a minute supersedes tier 2: its reading goes to tier 3; once it has
    # ended no price is in force, and what is read then is in no tier
    await esi.publish_price(
        tier_price(3, tier=3, start_time=han.clock(), duration_in_minutes=1), device=EUIS["ihd"]
    )
    await esi.meter.feed(Readings(summation_delivered=4_300))
    await asyncio.sleep(61)
    await esi.meter.feed(Readings(summation_delivered=4_400))
    await esi.publish_price(tier_price(4, tier=2), device=EUIS["ihd"])
    await esi.meter.feed(Readings(summation_delivered=4_450))
    tiers = await ihd.metering.read_tier_summations(range(1, 4))
    assert [kwh(tiers, n)[0] for n in (1, 2, 3)] == [
        Fraction(5, 2),
        Fraction(4, 5),
        Fraction(1, 20),
    ]
    # the ESI restarts: the tiers stored with the profile, the price in force loaded again
    await restarted(han, meter=METER)
    again = han.esi.meter
    assert again is not None
    await again.feed(Readings(summation_delivered=4_500))
    tiers = await ihd.metering.read_tier_summations((1, 2))
    assert [kwh(tiers, n)[0] for n in (1, 2)] == [Fraction(5, 2), Fraction(17, 20)]
    await close(han)
