"""What real meters send (tests/vectors/real-meters.json, each fact with its source), served
by the ESI's endpoint or reported by it to an in-home display on the simulator: the display
shows what the meter means, says "unknown" (None) rather than a bogus figure, and counts no
consumption that was not used. Virtual time."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.conftest import load_vectors
from tests.metering.test_metering_client_protocol import TYPES
from tests.roles.han_builder import close
from tests.roles.test_roles_ihd_energy import display, serve
from zse.se.ids import METERING
from zse.se.ids import MeteringAttribute as A
from zse.zcl.reporting import report_payload

VECTORS = load_vectors("real-meters.json")
METERS = {meter["id"]: meter for meter in VECTORS["meters"]}
VALUES = {value["id"]: value for value in VECTORS["values"]}


def raw(name: str) -> int:
    value: int = VALUES[name]["raw"]
    return value


async def report(han: Any, ihd: Any, summation: int) -> None:
    """The meter reports its CurrentSummationDelivered to the display (ZCL 2.5.11)."""
    payload = report_payload([(A.CURRENT_SUMM_DELIVERED, summation)], TYPES)
    await han.esi.endpoint.send(
        ihd.device.nwk, 1, METERING, 0x0A, payload, cluster_specific=False, encrypt=True
    )
    await asyncio.sleep(1)


async def back_to_half_a_kwh_more(han: Any, ihd: Any) -> None:
    """The meter reports 1000.5 kWh, 0.5 kWh above its first reading: shown, and only that
    0.5 kWh counted as used (0.2450/kWh: 0.12)."""
    await report(han, ihd, 1_000_500)
    screen = ihd.showing_energy()
    assert (screen.consumption, screen.used, screen.cost) == ("1000.500 kWh", "0.500 kWh", "0.12")


@pytest.mark.parametrize("name", sorted(METERS))
async def test_a_real_meters_attributes_are_shown_as_it_means_them(tmp_path, name: str) -> None:
    meter = METERS[name]
    served = {int(attr, 16): (kind, value) for attr, (kind, value) in meter["attributes"].items()}
    han, ihd = await display(tmp_path, served)
    try:
        screen = ihd.showing_energy()
        shown = meter["shown"]
        assert (screen.consumption, screen.demand) == (shown["consumption"], shown["demand"])
    finally:
        await close(han)


async def test_a_summation_of_all_ones_is_unknown_and_counts_nothing(tmp_path, caplog) -> None:
    han, ihd = await display(tmp_path)
    try:
        assert ihd.showing_energy().consumption == "1000.000 kWh"
        with caplog.at_level(logging.WARNING, logger="zse"):
            await report(han, ihd, raw("summation-all-ones"))
        screen = ihd.showing_energy()
        assert screen.consumption is None  # unknown, not 281474976.710 kWh
        assert (screen.used, screen.cost) == ("0.000 kWh", "0.00")
        assert "is 0xFFFFFFFFFFFF (no value): shown as unknown" in caplog.text
        await back_to_half_a_kwh_more(han, ihd)
    finally:
        await close(han)


async def test_a_tier_summation_of_all_ones_is_not_held(tmp_path) -> None:
    han, ihd = await display(tmp_path)
    try:
        tier1 = int(VALUES["tier-summation-all-ones"]["attribute"], 16)
        serve(han, {tier1: (0x25, raw("tier-summation-all-ones")), tier1 + 2: (0x25, 1234)})
        tiers = await ihd.metering.read_tier_summations((1, 2))
        assert tiers[1].delivered is None  # as a tier the meter does not count
        assert str(tiers[2].delivered) == "1.234 kWh"
    finally:
        await close(han)


async def test_a_summation_that_drops_to_zero_and_comes_back_counts_only_what_was_used(
    tmp_path,
) -> None:
    han, ihd = await display(tmp_path)
    try:
        await report(han, ihd, raw("summation-drops-to-zero"))
        await report(han, ihd, raw("summation-drops-to-zero"))
        await back_to_half_a_kwh_more(han, ihd)
    finally:
        await close(han)


async def test_a_replaced_meter_counting_from_zero_is_counted_from_its_new_start(tmp_path) -> None:
    han, ihd = await display(tmp_path)
    try:
        await report(han, ihd, 0)  # a new meter: it counts up from 0, never back to 1000 kWh
        await report(han, ihd, 500)
        screen = ihd.showing_energy()
        assert (screen.consumption, screen.used) == ("0.500 kWh", "0.500 kWh")
    finally:
        await close(han)
