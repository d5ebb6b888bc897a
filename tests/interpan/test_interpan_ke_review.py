"""Hostile review of key establishment over inter-PAN, on the simulator's air: a terminal
that gives up half way and starts again, two terminals at once, and what a key from one
terminal opens (nothing of another's)."""

from __future__ import annotations

import asyncio

from tests.interpan.test_interpan_secured import CA, another_terminal, pair, transfer
from zse.cbke import SUITE1
from zse.cbke.service import KeyEstablishmentFailed, eui64_bytes
from zse.interpan.ke import establish_over_interpan
from zse.se.ids import KEY_ESTABLISHMENT
from zse.sim import run

TUNNELING = 0x0704


def test_a_terminal_that_gives_up_half_way_establishes_a_key_when_it_starts_again():
    """The terminal stops after the hub's first answer (its task cancelled: a power cut, a
    user) and starts key establishment again at once: the hub's half-done session for it does
    not stand in the way for longer than the terminal's own retry, and the key it ends with
    is the hub's."""

    async def main() -> tuple[bool, bytes, bytes]:
        air, hub, hht, hub_svc, hht_svc, server = await pair(61, hub_suites=(SUITE1,))
        watch = hht_svc.subscribe([KEY_ESTABLISHMENT])
        credentials = [CA.issue(eui64_bytes(hht_svc.ieee), SUITE1)]
        first = asyncio.create_task(
            establish_over_interpan(
                hht_svc, credentials, hub=hub_svc.ieee, hub_pan_id=0x1111, hub_suites=1
            )
        )
        assert await watch.receive(timeout=10) is not None  # the hub answered the Initiate
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        established = False
        for _ in range(3):  # as TerminalBootstrap does: again after a failure
            try:
                await establish_over_interpan(
                    hht_svc, credentials, hub=hub_svc.ieee, hub_pan_id=0x1111, hub_suites=1
                )
            except KeyEstablishmentFailed:  # the hub may still hold the old session
                await asyncio.sleep(5)
                continue
            established = True
            break
        keys = (
            hub_svc.security._keys[bytes(hht_svc.ieee.serialize())][0],
            hht_svc.security._keys[bytes(hub_svc.ieee.serialize())][0],
        )
        for ending in (server.stop(), hub_svc.close(), hht_svc.close()):
            await ending
        for node in (hub, hht):
            await node.shutdown()
        air.close()
        return established, *keys

    established, hub_key, hht_key = run(main())
    assert established
    assert hub_key == hht_key


def test_two_terminals_at_once_get_two_keys_and_neither_opens_the_others_frames():
    async def main() -> tuple[list[bool], dict[str, int], bool]:
        air, hub, hht, hub_svc, hht_svc, server = await pair(62, hub_suites=(SUITE1,))
        other, other_svc = await another_terminal(air, hht_svc)
        results = await asyncio.gather(
            *(
                establish_over_interpan(
                    svc,
                    [CA.issue(eui64_bytes(svc.ieee), SUITE1)],
                    hub=hub_svc.ieee,
                    hub_pan_id=0x1111,
                    hub_suites=1,
                )
                for svc in (hht_svc, other_svc)
            ),
            return_exceptions=True,
        )
        ok = [not isinstance(r, BaseException) for r in results]
        # the other terminal seals a frame with its own key but names the first terminal as
        # its sender: the hub opens it with the first terminal's key, and drops it
        plain = hht_svc.frame(
            cluster_id=TUNNELING, payload=transfer(b"x"), dst_pan_id=0x1111, dst=hub_svc.ieee
        )
        assert other_svc.security is not None
        other_svc.security.extended_nonce = False  # no source in the header to give it away
        forged = other_svc.security.seal(plain)
        await other_svc.transport.send(forged)
        got = await hub_svc.receive(timeout=2)
        dropped = dict(hub_svc.security.dropped)
        for svc in (hub_svc, hht_svc, other_svc):
            await svc.close()
        await server.stop()
        for node in (hub, hht, other):
            await node.shutdown()
        air.close()
        return ok, dropped, got is None

    ok, dropped, nothing = run(main())
    assert ok == [True, True]
    assert nothing
    assert dropped["bad_mic"] == 1, dropped
