"""An ESI's operator publishes a price in an SE 1.2 tier above 15 (D.4.2.4.1.1.7-8, .22-24):
``[[prices]]`` and the shell's ``price --tier`` took tiers 0-15 only, so tiers 16-48, which
``zse.price`` now carries (Price Tier 0xF plus the Extended Price Tier), could not be given."""

from __future__ import annotations

import asyncio

import pytest

from tests.roles.han_builder import EUIS, build, close
from zse.cli.esi import Session
from zse.config import ConfigError, EsiConfig, parse_config, parse_price
from zse.price import TRAILERS_NOT_USED
from zse.roles.han import PriceReceived


def test_a_configured_tier_above_15_goes_as_se_1_2_sends_it() -> None:
    config = parse_config(
        '[[prices]]\nprice = "0.31"\nprice_tier = 20\nnumber_of_price_tiers = 24\n'
        "register_tier = 20\n"
    )
    (entry,) = config.prices
    price = entry.price
    assert (price.price_tier, price.extended_price_tier) == (0x0F, 5)
    assert (price.number_of_price_tiers, price.extended_number_of_price_tiers) == (0x0F, 9)
    assert (price.effective_price_tier, price.effective_register_tier) == (20, 20)
    assert all(getattr(price, name) == value for name, value in TRAILERS_NOT_USED.items())
    assert price.tier_problem() is None


def test_tiers_up_to_15_keep_the_short_form() -> None:
    price = parse_price("0.31", issuer_event_id=1, price_tier=15, number_of_price_tiers=15)
    assert (price.price_tier, price.extended_price_tier, price.price_control) == (15, None, None)


@pytest.mark.parametrize("key", ["price_tier", "number_of_price_tiers", "register_tier"])
def test_a_tier_above_48_is_one_line(key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f'[[prices]]\nprice = "0.31"\n{key} = 49\n')
    assert str(caught.value) == f"config: [[prices]] #1 {key}: 49 is outside 0..48"


async def test_the_shell_publishes_tier_20_and_a_display_receives_it(tmp_path) -> None:
    han = await build(tmp_path)
    out: list[str] = []
    session = Session(han.esi, EsiConfig(), out.append, han.clock)
    try:
        await han.esi.provision(EUIS["ihd"])
        ihd = han.add("ihd")
        await ihd.start()
        await asyncio.sleep(5)
        assert await session.execute("price 0.3100 --tier 20 --tiers 24 --id 77 --broadcast")
        await asyncio.sleep(2)
        (price,) = [
            e.price
            for e in han.device_events["ihd"]
            if isinstance(e, PriceReceived) and e.price.issuer_event_id == 77
        ]
        assert (price.effective_price_tier, price.effective_number_of_price_tiers) == (20, 24)
    finally:
        await close(han)
