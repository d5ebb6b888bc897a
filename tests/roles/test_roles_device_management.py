"""Device Management (SE 1.2 D.10) between the ESI and an in-home display on the simulator:
a change of tenancy published for a time takes effect on the display (it drops the previous
tenant's messages, prices and consumption history, as the control bits ask); a display away
when it was published is told when it comes back and clears what it held; the site id, CIN,
change of supplier and a password are answered; a restart of the ESI keeps what it published;
no password reaches a log or a repr. Real components, virtual time."""

from __future__ import annotations

import asyncio
import logging

from zigpy.zcl import foundation

from tests.calendar.tou import tou_calendar
from tests.roles.han_builder import CA, EUIS, START, close
from tests.roles.test_roles_esi_registry import joined_han
from zse.calendar.protocol import CalendarReceived
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.devmgmt.core import (
    ChangeOfSupplier,
    ChangeOfTenancy,
    CustomerId,
    Password,
    SiteId,
    SupplierTakesEffect,
    TenancyTakesEffect,
)
from zse.devmgmt.protocol import (
    CinUpdated,
    PasswordRequested,
    SiteIdUpdated,
    SupplierChanged,
    TenancyChanged,
)
from zse.devmgmt.service import DEVICE_MANAGEMENT_CLUSTER
from zse.devmgmt.wire import TenancyChangeControl
from zse.messaging import Message
from zse.price import PriceEvent
from zse.price.service import PriceReceived
from zse.provisioning.registry import HanRegistry
from zse.roles.esi import DeviceManagementSent, EnergyServiceInterface
from zse.roles.han import TenancyChangeApplied
from zse.se.ids import DeviceManagementAttribute
from zse.sim import Air

CLEAR = TenancyChangeControl.Clear_IHD_Data_Consumer | TenancyChangeControl.Clear_Tariff_Plan


def of(han, kind: type) -> list:
    return [e for e in han.device_events["ihd"] if isinstance(e, kind)]


def price(issuer_event_id: int = 1) -> PriceEvent:
    return PriceEvent(
        provider_id=5,
        rate_label=b"Peak",
        issuer_event_id=issuer_event_id,
        currency=826,
        price=2451,
        price_trailing_digit=4,
        unit_of_measure=0,
        price_tier=1,
        number_of_price_tiers=1,
        register_tier=1,
        start_time=0,
        duration_in_minutes=0xFFFF,
    )


async def held_a_message_and_a_price(han) -> None:
    esi, ihd = han.esi, han.devices["ihd"]
    await esi.send_message(Message(message_id=9, text="old tenant's bill"), device=EUIS["ihd"])
    await esi.publish_price(price(), device=EUIS["ihd"])
    await asyncio.sleep(2)
    assert ihd.messaging.current() is not None
    assert ihd.price.current() is not None


async def test_a_change_of_tenancy_takes_effect_at_its_time(tmp_path) -> None:
    han = await joined_han(tmp_path, names=("ihd",))
    esi, ihd = han.esi, han.devices["ihd"]
    await held_a_message_and_a_price(han)
    at = han.clock() + 600
    change = ChangeOfTenancy(
        provider_id=5, issuer_event_id=77, implementation_time=at, control=int(CLEAR)
    )
    result = await esi.publish_change_of_tenancy(change, device=EUIS["ihd"])
    assert result.delivered == [EUIS["ihd"]]
    await asyncio.sleep(2)
    (told,) = of(han, TenancyChanged)
    assert told.change == change
    assert told.control == CLEAR
    assert of(han, TenancyChangeApplied) == []  # not yet: at its time
    assert ihd.messaging.current() is not None
    await asyncio.sleep(600)
    assert [e.change for e in of(han, TenancyTakesEffect)] == [change]
    (applied,) = of(han, TenancyChangeApplied)
    assert applied.cleared == ("messages", "prices", "calendars", "consumption history")
    assert applied.for_the_meter == ()
    assert ihd.messaging.current() is None
    # the prices held were dropped, and the price in force asked for again
    assert len(of(han, PriceReceived)) == 2
    assert any(isinstance(e, DeviceManagementSent) for e in han.events)
    # the display asks again (a resync): the same issue is not acted on twice
    await ihd.resync()
    await asyncio.sleep(2)
    assert len(of(han, TenancyChangeApplied)) == 1
    await close(han)


async def test_clearing_the_tariff_plan_drops_the_previous_tenant_s_calendars(tmp_path) -> None:
    """A calendar the display holds from the previous tenant (here one the ESI no longer
    has) is dropped with the tariff plan; the calendar the ESI holds now is asked again."""
    han = await joined_han(tmp_path, names=("ihd",))
    esi, ihd = han.esi, han.devices["ihd"]
    await esi.publish_calendar(tou_calendar(), device=EUIS["ihd"])
    await asyncio.sleep(10)
    assert len(of(han, CalendarReceived)) == 1
    old = tou_calendar(provider_id=4, issuer_calendar_id=7, issuer_event_id=9, calendar_type=1)
    ihd.calendar.calendars.put(old, han.clock())
    assert ihd.calendar_at(calendar_type=1) is not None
    change = ChangeOfTenancy(provider_id=5, issuer_event_id=79, control=int(CLEAR))
    await esi.publish_change_of_tenancy(change, device=EUIS["ihd"])
    await asyncio.sleep(10)
    (applied,) = of(han, TenancyChangeApplied)
    assert "calendars" in applied.cleared
    assert ihd.calendar_at(calendar_type=1) is None  # the previous tenant's: gone
    # the ESI's calendar asked again and put together anew
    assert [e.calendar.issuer_calendar_id for e in of(han, CalendarReceived)] == [40, 40]
    assert ihd.calendar_at() is not None
    await close(han)


async def test_each_control_bit_clears_what_it_names_on_the_display(tmp_path) -> None:
    """D.10.2.4.1.1.5 bit by bit: Clear IHD Data (Consumer) the messages and the consumption
    history, Clear Standing Charge the prices, Clear Tariff Plan and Clear IHD Data (Supplier)
    the prices and calendars, Clear Historical Load Profile Information the consumption
    history; a bit of the meter's clears nothing on the display."""
    han = await joined_han(tmp_path, names=("ihd",))
    ihd, bit = han.devices["ihd"], TenancyChangeControl
    expected = {
        bit.Clear_IHD_Data_Consumer: ("messages", "consumption history"),
        bit.Clear_Standing_Charge: ("prices",),
        bit.Clear_Tariff_Plan: ("prices", "calendars"),
        bit.Clear_IHD_Data_Supplier: ("prices", "calendars"),
        bit.Clear_Historical_Load_Profile_Information: ("consumption history",),
        bit.Reset_Billing_Period: (),
    }
    for event_id, (control, cleared) in enumerate(expected.items(), start=90):
        change = ChangeOfTenancy(provider_id=5, issuer_event_id=event_id, control=int(control))
        applied = await ihd.change_of_tenancy(change)
        assert (applied.cleared, applied.for_the_meter) == (
            cleared,
            () if cleared else ("Reset_Billing_Period",),
        ), control
    await close(han)


async def test_a_display_away_at_the_change_is_told_when_it_comes_back(tmp_path) -> None:
    han = await joined_han(tmp_path, names=("ihd",))
    esi, ihd = han.esi, han.devices["ihd"]
    await held_a_message_and_a_price(han)
    await ihd.leave()
    await asyncio.sleep(5)
    at = han.clock() + 60
    change = ChangeOfTenancy(
        provider_id=5, issuer_event_id=78, implementation_time=at, control=int(CLEAR)
    )
    recorded = await esi.publish_change_of_tenancy(change)  # for devices as they join or ask
    assert recorded.outcomes == ()
    await esi.update_site_id(SiteId(issuer_event_id=3, provider_id=5, site_id="1200023305967"))
    await esi.update_cin(CustomerId(issuer_event_id=4, provider_id=5, cin="CIN-0042"))
    supplier = ChangeOfSupplier(
        current_provider_id=5,
        issuer_event_id=6,
        proposed_provider_id=9,
        implementation_time=at,
        provider_name="Bright Power",
        contact_details="0800 000 000",
    )
    await esi.publish_change_of_supplier(supplier)
    await asyncio.sleep(120)  # the change's time passes while the display is away
    await ihd.rejoin()
    await asyncio.sleep(5)
    assert [e.change for e in of(han, TenancyChanged)] == [change]
    (applied,) = of(han, TenancyChangeApplied)
    assert applied.change == change
    assert applied.cleared == ("messages", "prices", "calendars", "consumption history")
    # the old tenant's message is gone, and the ESI no longer gives it (Get Last Message)
    assert ihd.messaging.current() is None
    assert [e.site.site_id for e in of(han, SiteIdUpdated)] == ["1200023305967"]
    assert [e.customer.cin for e in of(han, CinUpdated)] == ["CIN-0042"]
    assert [e.change for e in of(han, SupplierChanged)] == [supplier]
    assert [e.change for e in of(han, SupplierTakesEffect)] == [supplier]
    assert ihd.device_management.kept.supplier == supplier
    await close(han)


async def test_a_password_is_answered_and_never_logged(tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    han = await joined_han(tmp_path, names=("ihd",))
    esi, ihd = han.esi, han.devices["ihd"]
    secret = b"Tr0ub4dor&3"
    password = Password(password_type=2, issuer_event_id=12, value=secret, duration_in_minutes=30)
    await esi.set_password(password)
    assert await ihd.device_management.request_password(1) is None  # none of type 1
    got = await ihd.device_management.request_password(2)
    assert got == password
    await asyncio.sleep(1)
    asked = [e for e in han.events if isinstance(e, PasswordRequested)]
    assert [(e.password_type, e.answered) for e in asked] == [(1, False), (2, True)]
    texts = [repr(got), str(got), repr(esi.device_management.published.passwords), caplog.text]
    texts += [repr(e) for e in han.events + han.device_events["ihd"]]
    for text in texts:
        assert "Tr0ub4dor" not in text
        assert secret.hex() not in text
    await close(han)


async def test_a_restart_of_the_esi_keeps_what_it_published(tmp_path) -> None:
    han = await joined_han(tmp_path, names=("ihd",))
    change = ChangeOfTenancy(provider_id=5, issuer_event_id=79, implementation_time=START + 10)
    site = SiteId(issuer_event_id=3, provider_id=5, site_id="1200023305967")
    password = Password(password_type=1, issuer_event_id=1, value=b"secret-1")
    await han.esi.publish_change_of_tenancy(change)
    await han.esi.update_site_id(site)
    await han.esi.set_password(password)
    await close(han)
    registry = await HanRegistry.open(tmp_path / "han.db")
    air = Air(seed=2)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()
    esi = EnergyServiceInterface(
        app,
        credentials=[CA.issue(eui64_bytes(app.state.node_info.ieee), SUITE1)],
        registry=registry,
        clock=lambda: START + int(loop.time()),
    )
    try:
        await esi.start()
        published = esi.device_management.published
        assert (published.tenancy, published.site_id) == (change, site)
        assert published.passwords == {1: password}
    finally:
        await esi.stop()
        await registry.close()
        air.close()


async def read_device_management(han, *attributes: int) -> dict[int, object]:
    """Read Attributes of Device Management on the ESI, from the display's endpoint."""
    ihd = han.devices["ihd"]
    reply = await ihd.endpoint.request(
        0x0000,
        ihd.esi_endpoint,
        DEVICE_MANAGEMENT_CLUSTER,
        foundation.GeneralCommand.Read_Attributes,
        b"".join(a.to_bytes(2, "little") for a in attributes),
        cluster_specific=False,
        direction=foundation.Direction.Client_to_Server,
        encrypt=True,
    )
    schema = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Read_Attributes_rsp].schema
    records, _ = schema.deserialize(reply.payload)
    return {
        r.attrid: r.value.value if r.status == foundation.Status.SUCCESS else r.status
        for r in records.status_records
    }


async def test_the_display_reads_the_provider_and_tenancy_attributes(tmp_path) -> None:
    han = await joined_han(tmp_path, names=("ihd",))
    esi = han.esi
    a = DeviceManagementAttribute
    assert (await read_device_management(han, a.PROVIDER_ID))[a.PROVIDER_ID] == (
        foundation.Status.UNSUPPORTED_ATTRIBUTE
    )
    at = han.clock() + 60
    await esi.publish_change_of_tenancy(
        ChangeOfTenancy(provider_id=5, issuer_event_id=1, implementation_time=at, control=0x220)
    )
    await esi.publish_change_of_supplier(
        ChangeOfSupplier(
            current_provider_id=5,
            issuer_event_id=2,
            proposed_provider_id=9,
            implementation_time=at,
            provider_name="Bright Power",
        )
    )
    before = await read_device_management(
        han, a.PROVIDER_ID, a.PROPOSED_PROVIDER_NAME, a.PROPOSED_TENANCY_CHANGE_CONTROL
    )
    assert before == {
        a.PROVIDER_ID: 5,
        a.PROPOSED_PROVIDER_NAME: b"Bright Power",
        a.PROPOSED_TENANCY_CHANGE_CONTROL: 0x220,
    }
    await asyncio.sleep(61)
    after = await read_device_management(han, a.PROVIDER_ID, a.PROVIDER_NAME)
    assert after == {a.PROVIDER_ID: 9, a.PROVIDER_NAME: b"Bright Power"}
    await close(han)
