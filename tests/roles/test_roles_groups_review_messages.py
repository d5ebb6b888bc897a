"""A display message sent to a registry group is for the members it was sent to (SE D.5.2.4.1).

It was stored under a 16-bit id hashed from the group's name (0x8000-0xFFF7), with the
group's members set afresh at each send. So two registry groups whose names hash alike
shared their messages' recipients, a ZigBee group of that id (a valid 0x0001-0xFFF7 id) had
its members replaced by the registry group's, and a later send to the same group after its
membership changed took the earlier, still-live message away from a device it was sent to.
A registry group's message is now stored for its members, by device, as they are when it is
sent.
"""

from __future__ import annotations

import zlib

from tests.roles.han_builder import EUIS, build, close
from tests.roles.test_roles_deprovision_drop import _last
from zse.messaging import Message

IHD, THERMOSTAT, LCD = EUIS["ihd"], EUIS["thermostat"], EUIS["lcd"]


def _hashed(name: str) -> int:
    """The id earlier zse stored a registry group's messages under."""
    return 0x8000 + zlib.crc32(name.encode("utf-8")) % 0x7FF8


async def test_two_groups_whose_names_hash_alike_keep_their_own_messages(tmp_path):
    """ "street-40" and "street-63" hashed to the same id: the message to the second took
    the first one's away from the ihd, its only member, and gave it to no one else."""
    assert _hashed("street-40") == _hashed("street-63")
    han = await build(tmp_path)
    try:
        esi = han.esi
        await han.registry.set_groups(IHD, ["street-40"])
        await han.registry.set_groups(LCD, ["street-63"])
        await esi.send_message(Message(message_id=1, text="for 40"), group="street-40")
        await esi.send_message(Message(message_id=2, text="for 63"), group="street-63")
        assert (_last(esi, IHD), _last(esi, LCD), _last(esi, THERMOSTAT)) == (1, 2, None)
    finally:
        await close(han)


async def test_a_registry_group_send_leaves_a_zigbee_group_of_the_same_id_alone(tmp_path):
    """The lcd is the one member of ZigBee group 0xE3B0, the id "street" hashed to: a
    message to the registry group "street" (the ihd and the thermostat) made them that
    ZigBee group's members, and the lcd lost the message sent to its group."""
    zigbee = _hashed("street")
    han = await build(tmp_path)
    try:
        esi = han.esi
        await han.registry.set_groups(LCD, ["other"])
        esi.messaging.set_group_members(zigbee, [LCD])
        await esi.send_message(Message(message_id=1, text="zigbee"), zigbee_group=zigbee)
        await esi.send_message(Message(message_id=2, text="registry"), group="street")
        assert (_last(esi, IHD), _last(esi, THERMOSTAT), _last(esi, LCD)) == (2, 2, 1)
    finally:
        await close(han)


async def test_a_later_send_to_the_group_keeps_an_earlier_message_where_it_went(tmp_path):
    """Message 1 went to "street" when the lcd was in it; the lcd then moved to "other" and
    message 2, for 10 minutes and to a short street, was sent: the lcd still gets message 1
    (it was sent to it and is live), and the ihd gets message 2. Nor does a device that
    joins the group after a send get that send's message."""
    han = await build(tmp_path)
    try:
        esi = han.esi
        await esi.send_message(Message(message_id=1, text="all of us"), group="street")
        await han.registry.set_groups(LCD, ["other"])
        await han.registry.set_groups(THERMOSTAT, ["other"])
        await esi.send_message(
            Message(message_id=2, text="short street", duration_in_minutes=10), group="street"
        )
        await han.registry.set_groups(THERMOSTAT, ["street"])  # joins after message 2
        assert (_last(esi, IHD), _last(esi, LCD), _last(esi, THERMOSTAT)) == (2, 1, 1)
        await esi.stop()
        await esi.start()  # committed as such
        assert (_last(esi, IHD), _last(esi, LCD), _last(esi, THERMOSTAT)) == (2, 1, 1)
    finally:
        await close(han)
