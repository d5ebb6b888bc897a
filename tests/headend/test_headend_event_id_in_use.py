"""The in-process headend (no work queue) and an ESI that holds the send's issuer event id from
another source with other content (a Home Assistant user of the same ESI): the ESI refuses the
headend's Load Control Event (:class:`~zse.drlc.core.EventIdInUse`: devices ignore an id they
hold). The refusal escaped the headend's send, so the send's later devices were never sent it
and their outcomes stayed ``pending``. Now that device's copy is recorded refused, as the
queue's worker and a gateway's bridge record it (``skipped``, "refused: issuer_event_id:
..."), final: the other devices are sent it; neither a restart nor a retry resends it (a
resend would send the ESI's event of that id, the other source's), nor does a cancel of the
send reach that device (it would cancel the other source's event)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from tests.headend.helpers import START, registration
from zse.drlc import LoadControlEvent
from zse.headend.service import Headend
from zse.headend.sim import SimDevice, SimMeters
from zse.headend.store import HeadendStore
from zse.installcode import canonical_eui64
from zse.sim import SimDevice as HanDevice
from zse.store import Store

RETAILER = "retailer-a"
EVENT = {"group": "g", "duration_minutes": 30, "criticality_level": 3, "duty_cycle": 50}


@contextlib.asynccontextmanager
async def in_process(tmp_path: Path) -> AsyncIterator[tuple[SimMeters, Store]]:
    loop = asyncio.get_running_loop()
    sims = SimMeters(2, tmp_path / "meters", clock=lambda: START + int(loop.time()))
    await sims.start()
    store = await Store.open(tmp_path / "headend.sqlite")
    try:
        yield sims, store
    finally:
        await store.close()
        await sims.close()


async def headend_on(sims: SimMeters, store: Store) -> Headend:
    loop = asyncio.get_running_loop()
    headend = Headend(
        sims.meters, await HeadendStore.open(store), clock=lambda: START + int(loop.time())
    )
    await headend.start()
    return headend


def outcomes(headend: Headend, send: int) -> dict[str, tuple[str, str]]:
    view = headend.send(RETAILER, send)
    return {o["mac"]: (o["outcome"], o["detail"]) for o in view["outcomes"]}


async def test_an_event_id_in_use_is_refused_for_that_device_only(tmp_path: Path) -> None:
    async with in_process(tmp_path) as (sims, store):
        headend = await headend_on(sims, store)
        lcds: list[SimDevice] = [d for d in sims.devices if d.device_type == "load control device"]
        first, second = sorted(lcds, key=lambda d: d.meter)  # sent in this order
        assert first.meter != second.meter
        for device in lcds:
            await headend.register(RETAILER, registration(device))
        await headend.put_group(RETAILER, {"name": "g", "meters": [first.meter, second.meter]})
        await asyncio.sleep(60)  # they join and run CBKE
        esi = headend.meters[first.meter].esi
        theirs = LoadControlEvent(
            issuer_event_id=1, device_class=0xFFFF, duration_in_minutes=300, criticality_level=1
        )
        await esi.send_load_control(theirs, device=first.mac)
        sent = await headend.send_load_control(RETAILER, EVENT)
        assert sent["id"] == 1
        await asyncio.sleep(30)
        got = outcomes(headend, 1)
        mine = got[canonical_eui64(first.mac)]
        assert mine[0] == "skipped"
        assert mine[1].startswith("refused: issuer_event_id: issuer event id 1 is in use")
        assert got[canonical_eui64(second.mac)][0] == "started"  # the send went on
        assert headend.retries.pending() == []  # final: not tried again

        await headend.close()  # a restart does not send it again either
        headend = await headend_on(sims, store)
        assert headend.retries.pending() == []
        await asyncio.sleep(60)
        assert outcomes(headend, 1)[canonical_eui64(first.mac)] == mine

        await headend.cancel(RETAILER, 1)  # no Cancel of id 1 to that device: theirs
        await asyncio.sleep(3600)
        assert outcomes(headend, 1)[canonical_eui64(first.mac)] == mine
        held = esi.drlc.resent(1)  # the ESI's event of that id: theirs, not cancelled
        assert held is not None
        assert (held.criticality_level, held.duration_in_minutes) == (1, 300)
        assert headend.send(RETAILER, 1)["finished"]
        await headend.close()


async def test_a_copy_refused_is_not_resent_when_tried_again(tmp_path: Path) -> None:
    """A retry due for a copy refused (scheduled by hand: the headend schedules none) sends
    nothing: a resend would send the ESI's event of that id, the other source's."""
    async with in_process(tmp_path) as (sims, store):
        headend = await headend_on(sims, store)
        lcd = next(d for d in sims.devices if d.device_type == "load control device")
        await headend.register(RETAILER, registration(lcd))
        await headend.put_group(RETAILER, {"name": "g", "meters": [lcd.meter]})
        await asyncio.sleep(60)
        esi = headend.meters[lcd.meter].esi
        theirs = LoadControlEvent(
            issuer_event_id=1, device_class=0xFFFF, duration_in_minutes=300, criticality_level=1
        )
        await esi.send_load_control(theirs, device=lcd.mac)
        await headend.send_load_control(RETAILER, EVENT)
        await asyncio.sleep(30)
        mac = canonical_eui64(lcd.mac)
        before = outcomes(headend, 1)[mac]
        assert before[0] == "skipped"
        headend.retries.schedule(1, mac, asyncio.get_running_loop().time())
        headend._timer.update()  # due now
        await asyncio.sleep(60)
        assert outcomes(headend, 1)[mac] == before
        await headend.close()


async def test_a_report_on_a_copy_not_sent_yet_does_not_stand_for_the_send(tmp_path: Path) -> None:
    """The send goes meter by meter. While the first meter's device takes its time (frames on
    its air delayed 10 s), the second device reports ``started`` on the other source's event
    of the same id: that report moved the second copy, still to be sent, forward, and the
    headend then never sent it (its copy was no longer ``pending``), recording ``started`` for
    an event the device never had. The report is left alone now, the copy sent in its turn,
    and the ESI refuses it for its id (that device's only)."""
    async with in_process(tmp_path) as (sims, store):
        headend = await headend_on(sims, store)
        lcds: list[SimDevice] = [d for d in sims.devices if d.device_type == "load control device"]
        first, second = sorted(lcds, key=lambda d: d.meter)  # sent in this order
        for device in lcds:
            await headend.register(RETAILER, registration(device))
        await headend.put_group(RETAILER, {"name": "g", "meters": [first.meter, second.meter]})
        await asyncio.sleep(60)  # they join and run CBKE
        loop = asyncio.get_running_loop()
        theirs = LoadControlEvent(
            issuer_event_id=1,
            start_time=START + int(loop.time()) + 5,  # started in 5 s: within the first's wait
            device_class=0xFFFF,
            duration_in_minutes=300,
            criticality_level=1,
        )
        await headend.meters[second.meter].esi.send_load_control(theirs, device=second.mac)
        slow = sims.air_of(first)
        slow.set_faults(delay=10.0)
        for node in slow.nodes:  # on a 10 s path no APS ack comes within 1.6 s: none asked
            if isinstance(node, HanDevice):
                node.aps_ack = False
        sent = await headend.send_load_control(RETAILER, EVENT)
        assert sent["id"] == 1
        await asyncio.sleep(60)
        got = outcomes(headend, 1)
        outcome, detail = got[canonical_eui64(second.mac)]
        assert (outcome, detail[:44]) == ("skipped", "refused: issuer_event_id: issuer event id 1 ")
        assert got[canonical_eui64(first.mac)][0] in {"delivered", "started"}
        await headend.close()
