"""The ESI's SE endpoint asks for an APS acknowledgement on every unicast (ZB 2.2.8.4.1), as
an EmberZNet SE ESI does; never on a broadcast or group frame. An acknowledged send returns
only once the acknowledgement came, so a request's answer can come first: the endpoint waits
for it from before the send, and takes an answer that came although the send then failed.

On the simulated air (docs/simulator.md, "Acknowledgements"): apsAckWaitDuration 1.6 s,
apscMaxFrameRetries 3, written out here so that the tests hold the code to them.
"""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t
from zigpy.exceptions import DeliveryError

from tests.services.test_se_endpoint import MESSAGING, network, spy_sends
from zse.sim import Air, SimControllerApplication, SimDevice
from zse.zcl.endpoint import ZclMessage
from zse.zcl.se_endpoint import SeEndpoint

#: apsAckWaitDuration (ZB Table 2.24) and the attempts of apscMaxFrameRetries 3 (Table 2.23).
ACK_WAIT, ATTEMPTS = 1.6, 4
#: Display Message (SE D.5.2.3.1): message id 1, control 0, start now, 60 min, "hi".
DISPLAY = bytes((1, 0, 0, 0, 0x00, 0, 0, 0, 0, 60, 0, 2)) + b"hi"
MESSAGE_CONFIRMATION = 0x01


def answer_after(device: SimDevice, seconds: float) -> list[ZclMessage]:
    """The device answers each Display Message with a Message Confirmation ``seconds`` after it
    came (its display took that long); returns what it was handed."""
    endpoint = device.endpoints[1]
    seen: list[ZclMessage] = []

    async def confirm(msg: ZclMessage) -> None:
        seen.append(msg)
        await asyncio.sleep(seconds)
        await endpoint.reply(msg, MESSAGE_CONFIRMATION, b"\x01\x00\x00\x00")

    endpoint.add_handler(MESSAGING, confirm)
    return seen


def lose_from(air: Air, device: SimDevice, app: SimControllerApplication, until: float) -> None:
    """Every frame ``device`` sends the ESI (its APS acknowledgements among them) is lost from
    now until ``until`` seconds from now."""
    air.set_link_faults(device, app.radio, loss=1.0, both_ways=False)
    asyncio.get_running_loop().call_later(
        until, lambda: air.set_link_faults(device, app.radio, both_ways=False)
    )


async def test_unicasts_ask_for_an_aps_ack_broadcasts_and_groups_never() -> None:
    """The packets the endpoint gives zigpy: ACK on a unicast (APS-encrypted or not), none on
    a broadcast or a group frame; ``aps_ack=False`` turns it off, at any time."""
    _, app, se, device = await network(71)
    sent = spy_sends(app)
    assert device.nwk is not None
    await se.send(device.nwk, 1, MESSAGING, 0x00, DISPLAY, encrypt=True)
    await se.send(device.nwk, 1, MESSAGING, 0x00, DISPLAY, encrypt=False)
    await se.send(0xFFFD, 0xFF, MESSAGING, 0x00, DISPLAY, dst_mode=t.AddrMode.Broadcast)
    await se.send(0x0E01, 0xFF, MESSAGING, 0x00, DISPLAY, dst_mode=t.AddrMode.Group)
    se.aps_ack = False
    await se.send(device.nwk, 1, MESSAGING, 0x00, DISPLAY, encrypt=True)
    assert [p.tx_options for p in sent] == [
        t.TransmitOptions.ACK | t.TransmitOptions.APS_Encryption,
        t.TransmitOptions.ACK,
        t.TransmitOptions.NONE,
        t.TransmitOptions.NONE,
        t.TransmitOptions.APS_Encryption,
    ]


async def test_an_answer_before_the_aps_ack_is_taken() -> None:
    """The device's APS acknowledgement is lost (its frames to the ESI lost for 0.3 s); it
    answers 0.5 s later, which arrives: the answer is there while the ESI's send still waits.
    The resend 1.6 s on is acknowledged (a duplicate to the device, not handed up again) and
    the request returns the answer that came before it."""
    air, app, se, device = await network(72)
    seen = answer_after(device, 0.5)
    heard: list[float] = []
    loop = asyncio.get_running_loop()

    async def listen() -> None:
        async for _ in se.messages():
            heard.append(loop.time())

    listening = loop.create_task(listen())
    await asyncio.sleep(0)
    assert device.nwk is not None
    lose_from(air, device, app, 0.3)
    began = loop.time()
    reply = await se.request(device.nwk, 1, MESSAGING, 0x00, DISPLAY, encrypt=True)
    assert (reply.command_id, reply.payload) == (MESSAGE_CONFIRMATION, b"\x01\x00\x00\x00")
    assert loop.time() - began == pytest.approx(ACK_WAIT, abs=0.05)  # the resend's ack
    assert [round(t - began, 1) for t in heard] == [0.5]  # the answer, long before
    assert len(seen) == 1
    assert device.stats.aps_duplicates == 1
    listening.cancel()


async def test_an_answer_is_taken_although_every_aps_ack_was_lost() -> None:
    """Every APS acknowledgement of the device's lost, its answer not (its frames to the ESI
    lost but from 0.4 to 0.6 s): the ESI's send fails after four attempts, yet the request
    returns the answer, which proves the request arrived (it raised DeliveryError)."""
    air, app, se, device = await network(73)
    answer_after(device, 0.5)
    loop = asyncio.get_running_loop()
    assert device.nwk is not None
    air.set_link_faults(device, app.radio, loss=1.0, both_ways=False)
    loop.call_later(0.4, lambda: air.set_link_faults(device, app.radio, both_ways=False))
    loop.call_later(0.6, lambda: air.set_link_faults(device, app.radio, loss=1.0, both_ways=False))
    began = loop.time()
    reply = await se.request(device.nwk, 1, MESSAGING, 0x00, DISPLAY, encrypt=True)
    assert reply.command_id == MESSAGE_CONFIRMATION
    assert loop.time() - began == pytest.approx(ATTEMPTS * ACK_WAIT, abs=0.05)
    assert device.stats.aps_duplicates == ATTEMPTS - 1
    # no answer and no acknowledgement: the send's failure, with the APS text
    air.silence(device)
    with pytest.raises(DeliveryError, match=r"no APS acknowledgement from 0x[0-9A-F]{4} after 4"):
        await se.request(device.nwk, 1, MESSAGING, 0x00, DISPLAY, encrypt=True)


async def test_without_aps_acks_the_send_ends_at_the_mac_acknowledgement() -> None:
    """``aps_ack=False``: the frame asks for no APS acknowledgement; a lost MAC
    acknowledgement is the send's failure although the frame arrived, and a switched-off
    device fails with the MAC text at once."""
    air, app, _, device = await network(74)
    se = SeEndpoint(app, endpoint_id=12, in_clusters=[MESSAGING], aps_ack=False)
    await se.start()
    seen = answer_after(device, 0.0)
    assert device.nwk is not None
    air.set_link_faults(app.radio, device, ack_loss=1.0, both_ways=False)
    with pytest.raises(DeliveryError, match="no MAC acknowledgement"):
        await se.send(device.nwk, 1, MESSAGING, 0x00, DISPLAY, encrypt=True)
    await asyncio.sleep(1)
    assert len(seen) == 1  # it arrived all the same
    air.set_link_faults(app.radio, device, both_ways=False)
    air.silence(device)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(DeliveryError, match=r"no MAC acknowledgement from 0x[0-9A-F]{4} after 4"):
        await se.send(device.nwk, 1, MESSAGING, 0x00, DISPLAY, encrypt=True)
    assert loop.time() - began < 0.1
