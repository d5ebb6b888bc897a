"""``[device_management]`` in the ESI's configuration (SE 1.2 D.10): the site id, CIN, a
change of tenancy (control bits by name) and of supplier, published at start for devices as
they join or ask; every mistake is one ConfigError line naming the table and key."""

from __future__ import annotations

import asyncio

import pytest

from tests.roles.han_builder import EUIS, build, close
from zse.cli.esi import Session
from zse.config import ConfigError, parse_config
from zse.devmgmt.core import ChangeOfSupplier, ChangeOfTenancy, CustomerId, SiteId
from zse.devmgmt.protocol import CinUpdated, SiteIdUpdated, TenancyChanged
from zse.devmgmt.wire import TenancyChangeControl

CONFIG = """
[device_management]
site_id = "1200023305967"
cin = "CIN-0042"
tenancy_time = 830000000
tenancy_control = ["Clear_IHD_Data_Consumer", "Clear_Tariff_Plan"]
supplier_provider_id = 9
supplier_name = "Bright Power"
supplier_contact = "0800 000 000"
"""


def test_the_table_is_what_the_esi_publishes() -> None:
    entry = parse_config(CONFIG).device_management
    assert entry.auto_id
    tenancy, supplier, site, cin = entry.items
    assert tenancy == ChangeOfTenancy(
        provider_id=1,
        issuer_event_id=0,
        implementation_time=830000000,
        control=int(
            TenancyChangeControl.Clear_IHD_Data_Consumer | TenancyChangeControl.Clear_Tariff_Plan
        ),
    )
    assert supplier == ChangeOfSupplier(
        current_provider_id=1,
        issuer_event_id=0,
        proposed_provider_id=9,
        provider_name="Bright Power",
        contact_details="0800 000 000",
    )
    assert site == SiteId(issuer_event_id=0, provider_id=1, site_id="1200023305967")
    assert cin == CustomerId(issuer_event_id=0, provider_id=1, cin="CIN-0042")
    assert parse_config("").device_management.items == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[device_management]\nsite = 1\n", "[device_management]: unknown key 'site'"),
        (
            '[device_management]\ntenancy_control = ["Clear_Everything"]\n',
            "tenancy_control: 'Clear_Everything' is not a control bit",
        ),
        ("[device_management]\ntenancy_time = -1\n", "tenancy_time: -1 is outside"),
        (
            '[device_management]\nsupplier_name = "X"\n',
            "a change of supplier needs supplier_provider_id",
        ),
        (f'[device_management]\nsite_id = "{"x" * 255}"\n', "site id is longer than 254"),
    ],
)
def test_a_mistake_is_one_config_error_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    shown = str(caught.value)
    assert message in shown, shown
    assert "\n" not in shown


async def test_the_esi_publishes_the_configuration_and_a_display_asks_for_it(tmp_path) -> None:
    han = await build(tmp_path)
    out: list[str] = []
    session = Session(han.esi, parse_config(CONFIG), out.append, han.clock)
    try:
        assert await session.apply_config()
        assert han.esi.device_management.published.site_id is not None
        await han.esi.provision(EUIS["ihd"])
        await han.add("ihd").start()
        await asyncio.sleep(5)
        events = han.device_events["ihd"]
        assert [e.site.site_id for e in events if isinstance(e, SiteIdUpdated)] == ["1200023305967"]
        assert [e.customer.cin for e in events if isinstance(e, CinUpdated)] == ["CIN-0042"]
        (told,) = [e for e in events if isinstance(e, TenancyChanged)]
        assert told.change.implementation_time == 830000000
        assert sum("devices as they join or ask" in line for line in out) == 4, out
    finally:
        await close(han)
