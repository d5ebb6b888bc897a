"""The display's Metering client hears the supply (SE 1.2 Supply Status, 0x0014) on the
simulated air: it asks for its reports when it starts, and the utility's Change Supply shows
on the display without a read (:class:`SupplyStatusChanged`, ``supply_status``), across a
restart of the ESI and of the display's client; a meter without supply control is said once
and its summation still followed by reports. Real components, virtual time."""

from __future__ import annotations

import asyncio

from tests.roles.han_builder import EUIS, build, close
from tests.roles.test_roles_prepayment import METER
from tests.roles.test_roles_supply import joined, restarted_esi
from zse.metering.protocol import (
    SUPPLY_STATUS,
    AttributeUnsupported,
    MeteringClientConfig,
    Polling,
    SupplyStatusChanged,
)
from zse.metering.service import MeteringClient
from zse.metering.supply import ARMED, OFF, ON

FOLLOW = {"metering_config": MeteringClientConfig(supply_status=True)}


def heard(events: list[object]) -> list[tuple[int, int | None, bool]]:
    """The Supply Status changes a display's listener heard: (status, before, reported)."""
    return [(e.status, e.before, e.reported) for e in events if isinstance(e, SupplyStatusChanged)]


async def test_the_display_hears_the_utility_turn_the_supply_off_and_on_across_restarts(
    tmp_path,
) -> None:
    han, ihd, _ = await joined(tmp_path, display=FOLLOW)
    meter = han.esi.meter
    events = han.device_events["ihd"]
    try:
        client = ihd.metering
        assert client is not None
        assert client.supply_status == ON  # read when it started
        assert (client.protocol.supply_reporting, client.protocol.polling) == (True, False)
        assert heard(events) == [(ON, None, False)]
        await meter.change_supply(OFF)
        await asyncio.sleep(2)
        assert client.supply_status == OFF
        assert heard(events)[1:] == [(OFF, ON, True)]  # reported: nothing was read
        # the ESI restarts: the reporting record is stored, the display asks nothing again
        again = await restarted_esi(han)
        await asyncio.sleep(60)
        await again.meter.change_supply(ARMED)
        await asyncio.sleep(2)
        assert heard(events)[2:] == [(ARMED, OFF, True)]
        # the display's client restarts (a new process): it reads the supply and asks again
        await client.stop()
        fresh = MeteringClient(
            ihd.endpoint,
            meter_ep=client.meter.endpoint,
            config=MeteringClientConfig(supply_status=True),
            clock=han.clock,
        )
        told: list[object] = []
        fresh.on_event(told.append)
        fresh.start()
        await asyncio.sleep(5)
        assert heard(told) == [(ARMED, None, False)]
        assert await ihd.local_change_supply() is not None  # the consumer restores it
        await asyncio.sleep(2)
        assert heard(told)[1:] == [(ON, ARMED, True)]
        assert fresh.supply_status == ON
        await asyncio.sleep(2 * 3600)  # hourly reports of an unchanged supply say nothing new
        assert len(heard(told)) == 2
        assert not [e for e in told if isinstance(e, Polling)]
        await fresh.stop()
    finally:
        await close(han)


async def test_a_supply_status_read_by_the_display_is_heard_before_its_report(tmp_path) -> None:
    """The display reads the supply (``read_supply_status``) before the meter may report it
    (a minimum interval of 10 minutes): the value read is the client's and a
    SupplyStatusChanged (not reported), and the report that follows says nothing new."""
    slow = MeteringClientConfig(supply_status=True, supply_min_interval=600)
    han, ihd, _ = await joined(tmp_path, display={"metering_config": slow})
    events = han.device_events["ihd"]
    try:
        client = ihd.metering
        assert client is not None
        await han.esi.meter.change_supply(OFF)
        assert await client.read_supply_status() == OFF
        assert client.supply_status == OFF
        assert heard(events) == [(ON, None, False), (OFF, ON, False)]
        await asyncio.sleep(600)
        assert len(heard(events)) == 2
    finally:
        await close(han)


async def test_a_meter_without_supply_control_is_said_once_and_its_summation_still_reported(
    tmp_path,
) -> None:
    han = await build(tmp_path, meter=METER)
    await han.esi.provision(EUIS["ihd"])
    ihd = han.add("ihd", metering=True, **FOLLOW)
    try:
        await ihd.start()
        await asyncio.sleep(2 * 3600)
        events = han.device_events["ihd"]
        refused = [e.attribute for e in events if isinstance(e, AttributeUnsupported)]
        assert refused.count(SUPPLY_STATUS) == 1  # said once, not read again
        assert ihd.metering is not None
        assert ihd.metering.supply_status is None
        assert (ihd.metering.protocol.reporting, ihd.metering.protocol.polling) == (True, False)
        assert not [e for e in events if isinstance(e, Polling)]
    finally:
        await close(han)
