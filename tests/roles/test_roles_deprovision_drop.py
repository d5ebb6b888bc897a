"""A de-provisioned device is dropped from what the ESI holds for it (SE 5.4.8.1).

The ESI kept the recipients of its load control events and messages by EUI-64 and nothing
removed a de-provisioned device from them: registered again (by another retailer), the
device asked Get Scheduled Events (SE D.2.2.4.1) and Get Last Message (D.5.2.4.1) and was
answered what had been sent for it before. The drop is committed, survives a restart, is
made at the next start when a crash cut it short, and leaves the group's other devices their
events and messages.
"""

from __future__ import annotations

import asyncio

from tests.roles.han_builder import EUIS, START, build, close
from tests.roles.test_roles_esi_removal import keyed
from zse.drlc import LoadControlEvent
from zse.messaging import Message
from zse.provisioning import LifecycleEvent
from zse.roles.esi import EnergyServiceInterface

LCD, THERMOSTAT = EUIS["lcd"], EUIS["thermostat"]


def _event(issuer_event_id: int) -> LoadControlEvent:
    return LoadControlEvent(
        issuer_event_id=issuer_event_id, device_class=0x0FFF, duration_in_minutes=1440,
        criticality_level=15, duty_cycle=0,
    )  # fmt: skip


def _scheduled(esi: EnergyServiceInterface, device: str) -> list[int]:
    """The ids Get Scheduled Events answers ``device`` (SE D.2.2.4.1)."""
    now = START + int(asyncio.get_running_loop().time())
    events = esi.drlc.core.scheduled(start_time=0, number_of_events=0, now=now, device=device)
    return [e.issuer_event_id for e in events]


def _last(esi: EnergyServiceInterface, device: str) -> int | None:
    """The id Get Last Message answers ``device`` (SE D.5.2.4.1), None for NOT_FOUND."""
    now = START + int(asyncio.get_running_loop().time())
    answer = esi.messaging.messages.last_message(device, now)
    return None if answer is None else answer[0].message_id


async def _restarted(han) -> EnergyServiceInterface:
    """The ESI stopped and started again: its state read back from the store."""
    await han.esi.stop()
    await han.esi.start()
    return han.esi


async def test_a_removed_device_gets_none_of_its_sends_and_the_group_keeps_theirs(tmp_path):
    han = await build(tmp_path)
    try:
        await keyed(han, "lcd")
        await keyed(han, "thermostat")
        esi = han.esi
        await esi.send_load_control(_event(7), group="street")
        await esi.send_message(Message(message_id=9, text="street notice"), group="street")
        await esi.send_load_control(_event(8), device=LCD)  # the lcd's alone
        await esi.send_message(Message(message_id=10, text="for the lcd"), device=LCD)
        assert (_scheduled(esi, LCD), _last(esi, LCD)) == ([7, 8], 10)

        await esi.deprovision(LCD)
        await esi.settle()
        assert esi.device(LCD).groups == {"street"}  # still listed until registered again
        assert (_scheduled(esi, LCD), _last(esi, LCD)) == ([], None)
        # the group's other device keeps its event and message; the lcd's alone became
        # no one's (not everyone's)
        assert (_scheduled(esi, THERMOSTAT), _last(esi, THERMOSTAT)) == ([7], 9)
        assert esi.messaging.stored(10) is None
        # a message sent to the group afterwards is not held for the device being removed
        await esi.send_message(Message(message_id=11, text="later"), group="street")
        assert (_last(esi, LCD), _last(esi, THERMOSTAT)) == (None, 11)

        esi = await _restarted(han)  # the drop was committed
        assert (_scheduled(esi, LCD), _last(esi, LCD)) == ([], None)
        assert (_scheduled(esi, THERMOSTAT), _last(esi, THERMOSTAT)) == ([7], 11)
        # over the air: the other device asks again and is answered its event
        thermostat = han.devices["thermostat"]
        await thermostat.resync()
        assert [e.issuer_event_id for e in thermostat.drlc.core.events()] == [7]
    finally:
        await close(han)


async def test_a_drop_a_crash_cut_short_is_made_at_the_next_start(tmp_path):
    """The registry's DEPROVISION is committed before the drop: killed in between, the ESI
    drops a device recorded as being removed when it starts again."""
    han = await build(tmp_path)
    try:
        await keyed(han, "lcd")
        await han.esi.send_load_control(_event(8), device=LCD)
        await han.esi.send_message(Message(message_id=10, text="for the lcd"), device=LCD)
        await han.esi.stop()
        await han.registry.apply(LCD, LifecycleEvent.DEPROVISION, "requested by headend")
        esi = await _restarted(han)
        assert (_scheduled(esi, LCD), _last(esi, LCD)) == ([], None)
        assert (_scheduled(esi, THERMOSTAT), _last(esi, THERMOSTAT)) == ([], None)
    finally:
        await close(han)
