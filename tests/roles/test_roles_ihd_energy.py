"""#14.4-5: an in-home display with ``metering=True`` shows consumption, demand and cost from a
meter served on the ESI's endpoint (``set_attribute``, Report Attributes sent by the endpoint
itself) and the ESI's Price server, on the simulator."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from tests.metering.test_metering_client_protocol import FORMAT, TYPES
from tests.price.test_price_block import period
from tests.price.test_price_schedule import price
from tests.price.test_price_tiers import tiered
from tests.roles.han_builder import EUIS, build, close
from zse.metering.protocol import MeteringClientConfig, Polling
from zse.price import PriceAttributes
from zse.se.ids import METERING
from zse.se.ids import MeteringAttribute as A
from zse.se.types import BlockPeriodControl, UnitOfMeasure
from zse.zcl.reporting import report_payload
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

CONFIG = MeteringClientConfig(min_interval=5, max_interval=60, answer_timeout=20, poll_interval=30)
#: 0.2450 per kWh, tier 1 (Publish Price, D.4.2.4.1).
FLAT = price(
    11, price=2450, price_trailing_digit=4, price_tier=1, unit_of_measure=UnitOfMeasure.KWH
)


def serve(han: Any, served: dict[int, tuple[int, int]]) -> None:
    """The ESI's endpoint serves these Metering attributes, id -> (ZCL type, value) (the
    meter server comes later)."""
    endpoint = han.esi.endpoint
    if METERING not in endpoint.in_clusters:
        endpoint.descriptor.input_clusters.append(METERING)
    for attr, (type_id, value) in served.items():
        endpoint.set_attribute(METERING, attr, value, type_id)


def serve_meter(han: Any, summation: int, demand: int) -> None:
    """The ESI's endpoint serves the formatting, summation and demand."""
    values = {**FORMAT, A.CURRENT_SUMM_DELIVERED: summation, A.INSTANTANEOUS_DEMAND: demand}
    serve(han, {attr: (TYPES[attr], value) for attr, value in values.items()})


async def display(
    tmp_path: Any, served: dict[int, tuple[int, int]] | None = None, **options: Any
) -> tuple[Any, Any]:
    """A display following the ESI's meter (1000 kWh, 1.5 kW; or only the attributes
    ``served``, id -> (ZCL type, value)) under a flat price, 5 s after its start."""
    han = await build(tmp_path)
    if served is None:
        serve_meter(han, 1_000_000, 1500)
    else:
        serve(han, served)
    await han.esi.price.publish(FLAT)  # recorded: the display gets it with Get Current Price
    await han.esi.provision(EUIS["ihd"])
    ihd = han.add("ihd", metering=True, metering_config=CONFIG, **options)
    await ihd.start()
    await asyncio.sleep(5)
    return han, ihd


async def test_the_display_shows_consumption_demand_and_flat_cost(tmp_path) -> None:
    han, ihd = await display(tmp_path)
    try:
        assert ihd.metering.meter.endpoint == han.esi.endpoint.endpoint_id  # found by Match_Desc
        screen = ihd.showing_energy()
        assert (screen.consumption, screen.demand) == ("1000.000 kWh", "1.500 kW")
        assert screen.price == "0.2450/kWh"
        # the ESI's endpoint does not take Configure Reporting: the display polls
        assert any(isinstance(e, Polling) and e.active for e in han.device_events["ihd"])
        serve_meter(han, 1_042_500, 1200)
        await asyncio.sleep(CONFIG.poll_interval + 2)
        screen = ihd.showing_energy()
        assert (screen.consumption, screen.demand) == ("1042.500 kWh", "1.200 kW")
        assert (screen.used, screen.cost) == ("42.500 kWh", "10.41")
        # a report from the meter: polling stops, the report is shown
        payload = report_payload([(A.CURRENT_SUMM_DELIVERED, 1_052_500)], TYPES)
        await han.esi.endpoint.send(
            ihd.device.nwk, 1, METERING, 0x0A, payload, cluster_specific=False, encrypt=True
        )
        await asyncio.sleep(1)
        assert Polling(active=False, reason="the meter reports") in han.device_events["ihd"]
        screen = ihd.showing_energy()
        assert (screen.used, screen.cost) == ("52.500 kWh", "12.86")  # 52.5 x 0.2450 = 12.8625
    finally:
        await close(han)


async def test_the_display_prices_a_block_tariff_read_from_the_esi(tmp_path) -> None:
    # pointed at the meter's endpoint (as at a mirror): no Match_Desc_req
    han, ihd = await display(tmp_path, meter=(0x0000, SE_ENDPOINT_ID))
    try:
        han.esi.price.protocol.attributes = PriceAttributes(
            block_thresholds=(1_000_000, 3_000_000),  # / 100 = 10 and 30 kWh in the meter's Wh
            threshold_multiplier=1,
            threshold_divisor=100,
            block_prices={(0, 1): 1500, (0, 2): 2000, (0, 3): 2500},
        )
        han.esi.price.serve_attributes()
        blocks = await ihd.read_block_tariff()
        assert blocks.block_thresholds == (1_000_000, 3_000_000)
        serve_meter(han, 1_042_500, 0)
        await asyncio.sleep(CONFIG.poll_interval + 2)
        screen = ihd.showing_energy()
        assert (screen.used, screen.cost) == ("42.500 kWh", "8.63")  # docs/metering.md
        assert ihd.ledger.thresholds == [10, 30]  # kWh: where its ledger keeps the order
    finally:
        await close(han)


@pytest.mark.parametrize(
    "control", [0, BlockPeriodControl.Repeating_Block], ids=["ends", "repeats"]
)
async def test_the_display_counts_again_once_the_block_period_is_over(
    tmp_path, control: int
) -> None:
    """A block period of 3 minutes published to the display: what it used within counts,
    and once the period is over (start + duration, SE D.4.2.4.2.1.4), or its repetition
    starts (Repeating Block, D.4.2.4.2.1.5), the count starts again with what is used after.
    Was: the period stayed the one in force, and the display went on adding to its
    consumption and block cost."""
    han, ihd = await display(tmp_path)
    try:
        three_minutes = period(21, start=0, minutes=3, block_period_control=control)
        await han.esi.price.publish(three_minutes, dst=ihd.device.nwk)
        serve_meter(han, 1_042_500, 0)
        await asyncio.sleep(CONFIG.poll_interval + 2)
        screen = ihd.showing_energy()
        assert (screen.used, screen.cost) == ("42.500 kWh", "10.41")
        await asyncio.sleep(3 * 60)  # the period is over
        serve_meter(han, 1_052_500, 0)
        await asyncio.sleep(CONFIG.poll_interval + 2)
        screen = ihd.showing_energy()
        assert (screen.used, screen.cost) == ("10.000 kWh", "2.45")
    finally:
        await close(han)


async def test_the_default_display_has_no_metering(tmp_path) -> None:
    han = await build(tmp_path)
    try:
        serve_meter(han, 1_000_000, 0)
        await han.esi.provision(EUIS["ihd"])
        ihd = han.add("ihd")
        await ihd.start()
        await asyncio.sleep(5)
        assert ihd.metering is None
        assert METERING not in ihd.endpoint.out_clusters
        assert ihd.showing_energy().consumption is None
    finally:
        await close(han)


async def test_a_price_in_tier_20_is_shown_and_reads_no_block_prices_it_cannot_have(
    tmp_path,
) -> None:
    """SE 1.2: Price Tier 0xF with Extended Price Tier 5 is tier 20. The display priced its
    readings as tier 15 (the 4-bit field), and, once priced in tier 20, asked for block
    prices of a tier that has none (Block Price attributes stop at tier 15, D.4.2.2.5)."""
    han, ihd = await display(tmp_path, meter=(0x0000, SE_ENDPOINT_ID))
    try:
        han.esi.price.protocol.attributes = PriceAttributes(
            block_thresholds=(1_000_000,), threshold_multiplier=1, threshold_divisor=100,
            block_prices={(0, 1): 1500, (0, 2): 2000},
        )  # fmt: skip
        han.esi.price.serve_attributes()
        tier_20 = dataclasses.replace(
            tiered(20, unit_of_measure=UnitOfMeasure.KWH, price=3100, price_trailing_digit=4),
            start_time=0,  # now
        )
        await han.esi.price.publish(tier_20, dst=ihd.device.nwk)
        await asyncio.sleep(CONFIG.poll_interval + 2)
        serve_meter(han, 1_042_500, 0)
        await asyncio.sleep(CONFIG.poll_interval + 2)
        assert 20 in ihd.ledger.tier_prices
        blocks = await ihd.read_block_tariff()  # no ValueError for tier 20's block prices
        assert {tier for tier, _ in blocks.block_prices} == {0}
        assert ihd.showing_energy().tier == "tier 20"
    finally:
        await close(han)
