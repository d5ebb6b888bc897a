"""Hostile review of inter-PAN, session 23: two long messages sent at once to one partner, an
application callback that raises. On the simulator's air (virtual time)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.interpan.test_interpan_secured import CA, another_terminal, pair, transfer
from zse.cbke import SUITE1
from zse.cbke.service import KeyEstablishmentFailed, eui64_bytes
from zse.interpan.ke import establish_over_interpan
from zse.interpan.service import InterPanService
from zse.sim import run

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
