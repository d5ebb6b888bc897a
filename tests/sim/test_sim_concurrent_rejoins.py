"""Two rejoins (ZB 3.6.1.4.2, 4.6.3.6) of one device under way at once. A device keeps one
Rejoin Request in flight, as a real stack does: a second rejoin waits for the first to end,
then sends its own, and each is told its own answer. Both used to read the request in flight
from one attribute, which the second overwrote: the first was told the second's answer.

``b`` missed a key rotation, so its secured request (old key) gets no answer and its Trust
Center rejoin gets the new key. Secured first: it was told True on the Trust Center rejoin's
answer. Trust Center rejoin first: the secured call had cleared what lets the device take
the unsecured Rejoin Response, so that answer was dropped and both were told False."""

from __future__ import annotations

import asyncio

import pytest

from tests.sim.test_sim_faults_capture import han


@pytest.mark.parametrize(
    ("first_secured", "told"),
    [
        (True, [False, True]),  # the old key: no answer; then the Trust Center rejoin
        (False, [True, True]),  # the Trust Center rejoin brings the key the second uses
    ],
)
async def test_two_rejoins_of_one_device_are_each_told_their_own_answer(
    first_secured: bool, told: list[bool]
) -> None:
    air, esi, (_a, b) = await han(73)
    try:
        air.silence(b)
        new = bytes(range(16, 32))
        await esi.rotate_network_key(new)
        air.restore(b)
        results = await asyncio.gather(
            b.rejoin(secure=first_secured),
            b.rejoin(secure=not first_secured),
            return_exceptions=True,
        )
        assert results == told
        assert (b.network_key, b.network_key_seq) == (new, 1)
        assert esi.radio.children[b.ieee] == b.nwk
    finally:
        air.close()
