"""Hostile review of inter-PAN, session 23: two long messages sent at once to one partner.
On the simulator's air (virtual time)."""

from __future__ import annotations

import asyncio

from tests.interpan.test_interpan_secured import CA, pair, transfer
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.interpan.ke import establish_over_interpan
from zse.sim import run

TUNNELING = 0x0704


def test_two_long_messages_at_once_to_one_partner_both_arrive():
    """Each long message goes as fragments, each answered before the next (Silicon Labs'
    inter-PAN fragmentation). Two sent at once to the same partner shared one table entry
    for their fragment responses: the first never saw its answers (FragmentFailed), and the
    second's end raised ``KeyError``. The receiver holds one message in progress per sender,
    so they now go one after the other, and both arrive whole."""

    async def main() -> tuple[list[object], list[bytes]]:
        air, hub, hht, hub_svc, hht_svc, server = await pair(71, hub_suites=(SUITE1,))
        await establish_over_interpan(
            hht_svc,
            [CA.issue(eui64_bytes(hht_svc.ieee), SUITE1)],
            hub=hub_svc.ieee,
            hub_pan_id=0x1111,
            hub_suites=1,
        )
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
