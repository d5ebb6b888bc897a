"""A cancel sent by registry group reaches every device the ESI holds the event or message
for (SE D.2.2.3.2, D.5.2.3.2).

The ESI records a cancellation for the event (or message) as a whole: Get Scheduled Events
and Get Last Message stop answering it to every recipient. The Cancel frame went only to the
group's members at the time of the cancel, so a device that got the event by that group and
left it since (or got it by another send) was never told: it ran a cancelled event to its
end, or kept showing a cancelled message, with nothing left at the ESI to tell it otherwise.
A cancel by registry group now also goes to the event's (message's) recorded recipients.

A cancel by device of an event sent to a registry group recorded the event cancelled for
every recipient while only that device was told: the others ran it to its end, the ESI
holding it cancelled for them. A cancellation is now recorded for the devices it is sent to
(D.2.2.3.2: it is addressed as any command); by broadcast, group address or to all the
event's recipients it is the event's.

A send by registry group also goes to the members it is recorded for, those of the moment
it was made, not those of the moment its fan-out starts.
"""

from __future__ import annotations

import asyncio

from tests.roles.han_builder import EUIS, close
from tests.roles.test_roles_deprovision_drop import _last, _restarted, _scheduled
from tests.roles.test_roles_esi_registry import joined_han
from zse.drlc import LoadControlEvent
from zse.messaging import Message

IHD, THERMOSTAT, LCD = EUIS["ihd"], EUIS["thermostat"], EUIS["lcd"]


def _event(issuer_event_id: int) -> LoadControlEvent:
    return LoadControlEvent(
        issuer_event_id=issuer_event_id, device_class=0x0FFF, duration_in_minutes=60,
        criticality_level=3, duty_cycle=40,
    )  # fmt: skip


async def test_a_cancel_by_group_reaches_a_device_that_left_the_group(tmp_path):
    """Event 7 and message 3 went to "street" (the thermostat and the lcd, both running /
    showing them); the lcd moved to "other", then both were cancelled by "street": the lcd
    stops running the event and showing the message too, and the result names it."""
    han = await joined_han(tmp_path, names=("thermostat", "lcd"))
    try:
        esi = han.esi
        thermostat, lcd = han.devices["thermostat"], han.devices["lcd"]
        await esi.send_load_control(_event(7), group="street")
        await esi.send_message(Message(message_id=3, text="street works"), group="street")
        await asyncio.sleep(5)
        assert (thermostat.drlc.core.active(), lcd.drlc.core.active()) == ([7], [7])
        assert lcd.messaging.current() is not None
        await han.registry.set_groups(LCD, ["other"])

        sent = await esi.cancel_load_control(7, group="street")
        cancelled = await esi.cancel_message(3, group="street")
        await asyncio.sleep(5)
        assert sorted(sent.delivered) == sorted([THERMOSTAT, LCD])
        assert sorted(cancelled.delivered) == sorted([THERMOSTAT, LCD])
        assert (thermostat.drlc.core.active(), lcd.drlc.core.active()) == ([], [])
        assert (thermostat.messaging.current(), lcd.messaging.current()) == (None, None)
        # the ESI's view: cancelled for both, as the devices now have it
        assert (_scheduled(esi, THERMOSTAT), _scheduled(esi, LCD)) == ([], [])
        assert (_last(esi, THERMOSTAT), _last(esi, LCD)) == (None, None)
    finally:
        await close(han)


async def test_a_group_send_goes_to_the_members_it_was_recorded_for(tmp_path):
    """The lcd is put in "street" while event 9 to "street" is being recorded (the DRLC
    store's write held up): the event is held for the members of the send (the
    thermostat), and it is those it goes to. The lcd got it on the air as well, yet Get
    Scheduled Events never answered it the event nor was a report expected of it."""
    han = await joined_han(tmp_path, names=("thermostat", "lcd"))
    try:
        esi = han.esi
        await han.registry.set_groups(LCD, ["other"])
        async with esi.drlc._lock:  # the event's record is being written
            sending = asyncio.ensure_future(esi.send_load_control(_event(9), group="street"))
            await asyncio.sleep(0)
            await han.registry.set_groups(LCD, ["street"])
        sent = await sending
        await asyncio.sleep(5)
        outcomes = [(o.device, o.outcome.value) for o in sent.outcomes]
        assert outcomes == [(IHD, "skipped"), (THERMOSTAT, "delivered")]  # the ihd: NEW
        assert (_scheduled(esi, THERMOSTAT), _scheduled(esi, LCD)) == ([9], [])
        assert han.devices["lcd"].drlc.core.events() == []
    finally:
        await close(han)


async def test_a_cancel_by_device_of_a_group_event_cancels_it_for_that_device_only(tmp_path):
    """Event 7 to "street" (the thermostat and the lcd); cancelled for the thermostat only:
    the ESI holds it cancelled for the thermostat (no resend, not answered to it) and
    scheduled for the lcd, which runs it, across a restart too."""
    han = await joined_han(tmp_path, names=("thermostat", "lcd"))
    try:
        esi = han.esi
        await esi.send_load_control(_event(7), group="street")
        await asyncio.sleep(5)
        sent = await esi.cancel_load_control(7, device=THERMOSTAT)
        await asyncio.sleep(5)
        assert sent.delivered == [THERMOSTAT]
        thermostat, lcd = han.devices["thermostat"], han.devices["lcd"]
        assert (thermostat.drlc.core.active(), lcd.drlc.core.active()) == ([], [7])
        assert (_scheduled(esi, THERMOSTAT), _scheduled(esi, LCD)) == ([], [7])
        assert esi.drlc.core.cancelled_at(7) is None  # not the event's: the lcd's runs on
        assert (await esi.resend_load_control(7, THERMOSTAT)).outcome.value == "ended"
        assert (await esi.resend_load_control(7, LCD)).outcome.value == "delivered"
        esi = await _restarted(han)
        assert (_scheduled(esi, THERMOSTAT), _scheduled(esi, LCD)) == ([], [7])
        await esi.cancel_load_control(7, group="street")  # to all its recipients: the event's
        assert esi.drlc.core.cancelled_at(7) is not None
    finally:
        await close(han)
