"""Hostile review of inter-PAN, session 23: two long messages sent at once to one partner, an
application callback that raises (on the simulator's air), a flood that held a silent key
establishment session past its deadline (on a receive queue fed frames, as the EZSP
transport is). All on virtual time."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest
from zigpy.types import EUI64

from tests.interpan.test_interpan_acceptance import HUB, initiate
from tests.interpan.test_interpan_secured import (
    CA,
    WHITELIST,
    another_terminal,
    pair,
    transfer,
)
from zse.cbke import SUITE1
from zse.cbke.machine import Initiator, Responder
from zse.cbke.service import KeyEstablishmentFailed, eui64_bytes
from zse.interpan import InterPanFrame
from zse.interpan.ke import InterPanKeyServer, establish_over_interpan
from zse.interpan.secure import InterPanSecurity
from zse.interpan.service import InterPanService
from zse.interpan.transports import ReceiveQueue
from zse.sim import run
from zse.zcl.frame import encode_zcl_header

TUNNELING = 0x0704


async def establish(terminal: InterPanService, hub: InterPanService) -> None:
    """Suite-1 key establishment of ``terminal`` with ``hub`` (PAN 0x1111) over inter-PAN."""
    await establish_over_interpan(
        terminal,
        [CA.issue(eui64_bytes(terminal.ieee), SUITE1)],
        hub=hub.ieee,
        hub_pan_id=0x1111,
        hub_suites=1,
    )


def test_two_long_messages_at_once_to_one_partner_both_arrive():
    """Each long message goes as fragments, each answered before the next (Silicon Labs'
    inter-PAN fragmentation). Two sent at once to the same partner shared one table entry
    for their fragment responses: the first never saw its answers (FragmentFailed), and the
    second's end raised ``KeyError``. The receiver holds one message in progress per sender,
    so they now go one after the other, and both arrive whole."""

    async def main() -> tuple[list[object], list[bytes]]:
        air, hub, hht, hub_svc, hht_svc, server = await pair(71, hub_suites=(SUITE1,))
        await establish(hht_svc, hub_svc)
        inbox = hub_svc.subscribe([TUNNELING])
        messages = [transfer(bytes([n]) * 200, tsn=n) for n in (1, 2)]
        results = await asyncio.gather(
            *(
                hht_svc.send_message(
                    cluster_id=TUNNELING,
                    payload=message,
                    dst=hub_svc.ieee,
                    dst_pan_id=0x1111,
                    secure=True,
                )
                for message in messages
            ),
            return_exceptions=True,
        )
        received = []
        for _ in messages:
            got = await inbox.receive(timeout=10)
            if got is not None:
                received.append(got.payload)
        await server.stop()
        for svc in (hub_svc, hht_svc):
            await svc.close()
        for node in (hub, hht):
            await node.shutdown()
        air.close()
        return results, sorted(received) == sorted(messages)

    results, whole = run(main())
    assert results == [None, None]
    assert whole


def test_an_application_callback_that_raises_does_not_end_key_establishment(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``on_established`` raising (the application's fault) ended the hub's serving task,
    silently: every later terminal's Initiate went unanswered. It is logged, the key stays
    installed, and the next terminal establishes its key."""

    async def main() -> tuple[list[bool], bool]:
        air, hub, hht, hub_svc, hht_svc, server = await pair(72, hub_suites=(SUITE1,))
        told = []

        def on_established(event: object) -> None:
            told.append(event)
            raise RuntimeError("the application's bug")

        server.on_established = on_established
        other, other_svc = await another_terminal(air, hht_svc)
        ok = []
        for svc in (hht_svc, other_svc):
            try:
                await establish(svc, hub_svc)
            except KeyEstablishmentFailed:
                ok.append(False)
            else:
                ok.append(True)
        assert hub_svc.security is not None
        keys = all(hub_svc.security.has_key(svc.ieee) for svc in (hht_svc, other_svc))
        await server.stop()
        for svc in (hub_svc, hht_svc, other_svc):
            await svc.close()
        for node in (hub, hht, other):
            await node.shutdown()
        air.close()
        return [*ok, len(told) == 2], keys

    with caplog.at_level(logging.ERROR, logger="zse.interpan.ke"):
        ok, keys = run(main())
    assert ok == [True, True, True]
    assert keys
    assert [r.getMessage().endswith("on_established failed") for r in caplog.records] == [
        True,
        True,
    ]


#: How long the hub's radio takes to send a frame (CSMA, the frame, its MAC acknowledgement),
#: and how often the flood's frames come: faster than the hub answers them.
AIRTIME = 0.005
FLOOD_GAP = 0.004
HUB_PAN = 0x1A62  # the PAN of test_interpan_acceptance's frames to HUB
TERMINAL = EUI64.convert("00:0d:6f:00:0a:00:00:01")
FLOODER = EUI64.convert("00:0d:6f:00:0a:00:66:66")


class SlowRadio(ReceiveQueue):
    """The hub's transport: received frames are delivered to it; each send takes
    :data:`AIRTIME` (virtual) on the air."""

    async def send(self, frame: InterPanFrame) -> None:
        await asyncio.sleep(AIRTIME)


def to_hub(source: EUI64, command_id: int, payload: bytes, tsn: int) -> InterPanFrame:
    """A client-to-server Key Establishment command from ``source`` to the hub (``HUB`` on
    PAN :data:`HUB_PAN`)."""
    zcl = encode_zcl_header(0x11, None, tsn, command_id) + payload
    return dataclasses.replace(initiate(source), payload=zcl)


async def initiated(radio: ReceiveQueue, server: InterPanKeyServer) -> tuple[Initiator, Responder]:
    """The terminal's Initiate delivered to the hub by ``radio``, once ``server`` answered
    it: the terminal's machine, and its session at the hub (waiting for its next message)."""
    partner = eui64_bytes(TERMINAL)
    initiator = Initiator([CA.issue(partner, SUITE1)], eui64_bytes(HUB))
    [initiate] = initiator.start(asyncio.get_running_loop().time()).send
    radio.deliver(to_hub(TERMINAL, initiate.command_id, initiate.encode(), 1))
    while (session := server.core.session(partner)) is None or session.waiting_since is None:
        await asyncio.sleep(0.01)  # the hub answered
    return initiator, session


def test_a_flood_does_not_hold_a_silent_sessions_slot_past_its_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hub's serving loop timed its sessions out only when no frame was waiting: under a
    flood it answers more slowly than frames come (here malformed Initiates, each answered
    with Terminate BAD_MESSAGE), so a terminal that went silent after its Initiate kept its
    session, and with it the hub's one slot, for as long as the flood lasted. Its timeout
    now comes at its deadline, flood or not."""

    async def main() -> tuple[float, float | None, list[str]]:
        loop = asyncio.get_running_loop()
        radio = SlowRadio()
        hub_svc = InterPanService(
            radio, ieee=HUB, pan_id=HUB_PAN, whitelist=WHITELIST, security=InterPanSecurity()
        )
        server = InterPanKeyServer(hub_svc, [CA.issue(eui64_bytes(HUB), SUITE1)], max_sessions=1)
        server.start()
        _, session = await initiated(radio, server)  # the terminal says nothing more
        deadline = session.next_deadline()
        assert deadline is not None
        garbled = to_hub(FLOODER, 0x00, b"\x01", 7)  # an Initiate cut short: BAD_MESSAGE
        while loop.time() < deadline + 1:
            radio.deliver(garbled)
            await asyncio.sleep(FLOOD_GAP)
        remaining = server.core.session(eui64_bytes(TERMINAL))
        left = None if remaining is None else remaining.next_deadline()
        await server.stop()
        await hub_svc.close()
        ended = [r.getMessage() for r in caplog.records if str(TERMINAL) in r.getMessage()]
        return deadline, left, ended

    with caplog.at_level(logging.INFO, logger="zse.interpan.ke"):
        deadline, left, ended = run(main())
    assert left is None, f"the session due at {deadline} is still held, due at {left}"
    assert len(ended) == 1
    assert "timed_out=True" in ended[0]
