"""A send to a registry group is for the group's members and no one else (SE D.2.2.4.1,
D.5.2.4.1).

A load control event sent to a registry group none of whose devices was METER READY was
stored with no expected device and never sent, so nothing named its recipients: Get Scheduled
Events answered it to every device of the meter that asked, whatever its group or retailer.
The group's members not being removed (PENDING PROVISIONING ones too: they ask when they
join) are now recorded as its recipients; a group whose members are all being removed
leaves the event for no one. Messages to a registry group already kept to its members.
"""

from __future__ import annotations

import asyncio

from tests.roles.han_builder import EUIS, build, close
from tests.roles.test_roles_deprovision_drop import _event, _last, _scheduled
from tests.roles.test_roles_esi_removal import keyed
from zse.messaging import Message
from zse.provisioning import LifecycleState
from zse.roles.esi import Outcome

IHD, THERMOSTAT, LCD = EUIS["ihd"], EUIS["thermostat"], EUIS["lcd"]


async def test_an_event_to_a_group_with_no_ready_member_is_for_its_members_alone(tmp_path):
    """No member of "street" is METER READY (the ihd NEW, the thermostat pending
    provisioning): the event is sent to no one, and held for the two of them, not for the
    lcd of another group, which joins and asks."""
    han = await build(tmp_path)
    try:
        esi = han.esi
        await han.registry.set_groups(LCD, ["other"])
        await esi.provision(THERMOSTAT)
        sent = await esi.send_load_control(_event(7), group="street")
        assert {o.device: o.outcome for o in sent.outcomes} == {
            IHD: Outcome.SKIPPED,
            THERMOSTAT: Outcome.SKIPPED,
        }
        assert (_scheduled(esi, IHD), _scheduled(esi, THERMOSTAT)) == ([7], [7])
        assert _scheduled(esi, LCD) == []
        assert esi.drlc.never_answered(7) == []  # a report is expected of METER READY ones

        # over the air: the lcd joins and asks, and is answered nothing; the thermostat
        # joins and asks, and is answered its event
        await keyed(han, "lcd")
        lcd = han.devices["lcd"]
        await lcd.resync()
        await han.add("thermostat").start()
        await asyncio.sleep(30)
        await esi.settle()
        assert esi.device(THERMOSTAT).state is LifecycleState.METER_READY
        thermostat = han.devices["thermostat"]
        await thermostat.resync()
        await asyncio.sleep(1)
        assert [e.issuer_event_id for e in thermostat.drlc.core.events()] == [7]
        assert lcd.drlc.core.events() == []

        # committed: the same after a restart
        await esi.stop()
        await esi.start()
        assert (_scheduled(esi, THERMOSTAT), _scheduled(esi, LCD)) == ([7], [])
    finally:
        await close(han)


async def test_an_event_to_a_group_whose_members_are_all_removed_is_for_no_one(tmp_path):
    """Every member of "gone" is de-provisioned (it stays listed in the group until it is
    registered again): an event or a message sent to the group is held for no one, not for
    every device that asks."""
    han = await build(tmp_path)
    try:
        esi = han.esi
        await han.registry.set_groups(LCD, ["gone"])
        await esi.provision(LCD)
        await esi.deprovision(LCD)  # never joined: removed at once
        assert esi.device(LCD).state is LifecycleState.DEPROVISION_COMPLETE
        sent = await esi.send_load_control(_event(8), group="gone")
        assert [(o.device, o.outcome) for o in sent.outcomes] == [(LCD, Outcome.SKIPPED)]
        await esi.send_message(Message(message_id=12, text="gone"), group="gone")
        for device in (IHD, THERMOSTAT, LCD):
            assert (_scheduled(esi, device), _last(esi, device)) == ([], None), device
    finally:
        await close(han)


async def test_a_message_to_a_group_with_no_ready_member_is_for_its_members_alone(tmp_path):
    """A message to "street" with no member METER READY is held for its members (NEW and
    pending provisioning alike), not for the lcd of another group."""
    han = await build(tmp_path)
    try:
        esi = han.esi
        await han.registry.set_groups(LCD, ["other"])
        await esi.provision(THERMOSTAT)
        await esi.send_message(Message(message_id=11, text="street works"), group="street")
        assert (_last(esi, IHD), _last(esi, THERMOSTAT), _last(esi, LCD)) == (11, 11, None)
    finally:
        await close(han)


async def test_a_member_not_ready_yet_gets_the_event_its_ready_group_mates_were_sent(tmp_path):
    """ "street" has a METER READY member (the ihd) and one pending provisioning (the
    thermostat): the event was held for the ready one alone (its expected device), so the
    thermostat, joining later, was never answered it. It is held for both now; a report is
    still expected of the ready one only."""
    han = await build(tmp_path)
    try:
        esi = han.esi
        await han.registry.set_groups(LCD, ["other"])
        await keyed(han, "ihd")
        await esi.provision(THERMOSTAT)
        await esi.send_load_control(_event(9), group="street")
        assert (_scheduled(esi, IHD), _scheduled(esi, THERMOSTAT)) == ([9], [9])
        assert _scheduled(esi, LCD) == []
        assert esi.drlc.never_answered(9) == [IHD]  # not the thermostat: not joined yet
    finally:
        await close(han)
