"""The in-process headend (no work queue) writes a device's copy of a send only on the copy as
it stands once the other writes of it have landed (the store updates memory once a write is on
disk), on both engines. Each write below was worked out from the copy while another write of
it was under way, and landed last:

- the device's own Report Event Status "cancelled" (0x06), come while its Cancel was under way
  and worked out once the Cancel was answered: the copy lost "cancel acknowledged by the
  device";
- a de-provisioning's ``skipped``, over a copy cancelled before it was sent: the outcome went
  back from ``cancelled``;
- a resend's ``delivered`` (a restart tries offline devices at once), over a display's
  confirmation: the outcome went back, and the send, which asked for a confirmation, never
  finished;
- a de-provisioning's ``skipped``, over a copy its ESI refused (the send's id in use there by
  another source): the refusal was lost, and the other source's event's reports moved the
  copy on;
- a de-provisioning's ``skipped`` over the send's own, for a device leaving as the send
  reached it: the copy was recorded twice.

Each interleaving is forced through the real code: an ESI's answer held until the test lets
it go, the writes of the headend's records (their commits carried out as ever) begun in the
order the test picks (:func:`~tests.headend.test_headend_queue_write_order.written_in_order`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.headend.helpers import START, registration
from tests.headend.test_headend_queue_write_order import _writes, written_in_order
from tests.postgres_server import place, postgres
from zse.drlc import LoadControlEvent
from zse.headend import service as headend_service
from zse.headend.core import CANCEL_TOLD, CANCEL_UNSENT, REFUSED_IN_USE
from zse.headend.queue import NOT_SENT_DEPROVISIONED
from zse.headend.service import Headend
from zse.headend.sim import SimDevice, SimMeters
from zse.headend.store import HeadendStore
from zse.installcode import canonical_eui64, parse_eui64
from zse.roles.esi import EsiEvent, ReportReceived
from zse.se.types import EventStatus
from zse.store import Batch, Store

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

A = "retailer-a"
EVENT = {"group": "g", "duty_cycle": 40, "duration_minutes": 30, "criticality_level": 3}
TWO = ("in-home display", "load control device")


@dataclass
class InProcess:
    """A headend over one simulated meter and its registered ``devices``, in the order the
    group's sends reach them."""

    sims: SimMeters
    store: Store
    headend: Headend
    clock: Callable[[], int]
    devices: list[SimDevice]

    def copy(self, send_id: int, device: SimDevice) -> tuple[str, str]:
        """``device``'s copy of the send: (outcome, detail)."""
        mac = canonical_eui64(device.mac)
        (view,) = [o for o in self.headend.send(A, send_id)["outcomes"] if o["mac"] == mac]
        return view["outcome"], view["detail"]

    async def restart(self) -> None:
        """The headend stopped and started again on the same records and meters."""
        await self.headend.close()
        records = await HeadendStore.open(self.store)
        self.headend = Headend(self.sims.meters, records, clock=self.clock)
        await self.headend.start()


@contextlib.asynccontextmanager
async def in_process(place: Any, tmp_path: Path, *types: str) -> AsyncIterator[InProcess]:
    """:class:`InProcess` on ``place``'s engine, a device of each of ``types`` registered, in
    group ``g`` and METER READY."""
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    sims = SimMeters(1, tmp_path / "meters", clock=clock)
    await sims.start()
    store = await Store.open(place("headend.sqlite"))
    devices = [next(d for d in sims.devices if d.device_type == t) for t in types]
    devices.sort(key=lambda d: canonical_eui64(d.mac))
    headend = Headend(sims.meters, await HeadendStore.open(store), clock=clock)
    running = InProcess(sims, store, headend, clock, devices)
    try:
        await headend.start()
        for device in devices:
            await headend.register(A, registration(device))
        await headend.put_group(A, {"name": "g", "meters": [devices[0].meter]})
        await asyncio.sleep(60)  # they join and run CBKE
        assert all(headend.device(A, d.mac)["state"] == "meter ready" for d in devices)
        yield running
    finally:
        await running.headend.close()
        await store.close()
        await sims.close()


def _held(esi: Any, name: str) -> tuple[asyncio.Event, asyncio.Event]:
    """``esi``'s ``name`` carried out once the first event returned is set (a slow unicast);
    the second is set once it is called."""
    gate, called = asyncio.Event(), asyncio.Event()
    real = getattr(esi, name)

    async def held(*args: Any, **kw: Any) -> Any:
        called.set()
        await gate.wait()
        return await real(*args, **kw)

    setattr(esi, name, held)
    return gate, called


def one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The meter's copies go out one at a time (:data:`~zse.headend.service.
    UNICASTS_PER_METER` 1; the headend sends a few together): a copy then waits for the
    one before it, held, in the order the group's sends reach the devices."""
    monkeypatch.setattr(headend_service, "UNICASTS_PER_METER", 1)


async def _second_pending(
    running: InProcess, monkeypatch: pytest.MonkeyPatch
) -> tuple[asyncio.Event, int]:
    """A message sent to both devices, the first's unicast held until the event returned is
    set: the second's copy is pending meanwhile (:func:`one_at_a_time`). Returns the event
    and the send's id."""
    one_at_a_time(monkeypatch)
    first = running.devices[0]
    gate, sending = _held(running.headend.meters[first.meter].esi, "send_message")
    sent = await running.headend.send_message(A, {"group": "g", "text": "hi"})
    await sending.wait()
    return gate, int(sent["id"])


def _answer_after(
    esi: Any, name: str, come: asyncio.Event, done: Callable[[], None] = lambda: None
) -> None:
    """``esi``'s ``name`` answers only once ``come`` is set (at most 60 virtual seconds): what
    the radio brought meanwhile is heard before the answer; ``done()`` once it is carried
    out."""
    real = getattr(esi, name)

    async def late(*args: Any, **kw: Any) -> Any:
        result = await real(*args, **kw)
        done()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                await come.wait()
        return result

    setattr(esi, name, late)


async def test_the_devices_cancelled_report_keeps_the_cancels_detail(
    place: Any, tmp_path: Path
) -> None:
    async with in_process(place, tmp_path, "load control device") as running:
        headend = running.headend
        (lcd,) = running.devices
        sent = await headend.send_load_control(A, EVENT)
        await asyncio.sleep(30)
        assert running.copy(sent["id"], lcd)[0] == "started"
        esi = headend.meters[lcd.meter].esi
        reported = asyncio.Event()

        def cancelled(event: EsiEvent) -> None:
            if (
                isinstance(event, ReportReceived)
                and event.report.event_status == EventStatus.CANCELLED
            ):
                reported.set()

        esi.on_event(cancelled)
        _answer_after(esi, "cancel_load_control", reported)  # 0x06 heard before the answer
        await headend.cancel(A, sent["id"])
        await asyncio.sleep(30)
        assert reported.is_set()
        # was: ("cancelled", ""): the report, worked out from "started", landed last
        assert running.copy(sent["id"], lcd) == ("cancelled", CANCEL_TOLD)


async def test_a_copy_cancelled_before_it_was_sent_is_not_skipped_after(
    place: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with in_process(place, tmp_path, *TWO) as running:
        first, second = running.devices
        gate, send_id = await _second_pending(running, monkeypatch)
        earlier, later = partial(_writes, outcome="cancelled"), partial(_writes, outcome="skipped")
        cancel_writing = written_in_order(monkeypatch, running.store, earlier, later)
        cancelling = asyncio.ensure_future(running.headend.cancel(A, send_id))
        await cancel_writing.wait()  # "cancelled before it was sent", its write under way
        await running.headend.deprovision(A, second.mac)
        await cancelling
        gate.set()
        await asyncio.sleep(60)
        # was: ("skipped", NOT_SENT_DEPROVISIONED), worked out from "pending"
        assert running.copy(send_id, second) == ("cancelled", CANCEL_UNSENT)
        assert running.copy(send_id, first)[0] == "cancelled"


async def test_a_confirmation_is_not_undone_by_a_resends_answer(
    place: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with in_process(place, tmp_path, "in-home display") as running:
        (ihd,) = running.devices
        air = running.sims.air_of(ihd)
        air.silence(parse_eui64(ihd.mac))  # away: both messages offline
        first = await running.headend.send_message(A, {"group": "g", "text": "one"})
        body = {"group": "g", "text": "two", "confirmation_required": True}
        second = await running.headend.send_message(A, body)
        await asyncio.sleep(20)
        assert running.copy(first["id"], ihd)[0] == running.copy(second["id"], ihd)[0] == "offline"
        air.restore(parse_eui64(ihd.mac))
        gate, resending = _held(running.headend.meters[ihd.meter].esi, "resend_message")
        earlier, later = (
            partial(_writes, outcome="confirmed", send=second["id"]),
            partial(_writes, outcome="delivered", send=second["id"]),
        )
        confirm_writing = written_in_order(monkeypatch, running.store, earlier, later)
        one_at_a_time(monkeypatch)  # the second message's resend waits for the first's
        await running.restart()  # both tried again at once, the first message first
        await resending.wait()
        await ihd.role.messaging.fetch()  # the display, back, fetches the last message
        confirming = asyncio.ensure_future(ihd.role.confirm(second["id"]))
        await confirm_writing.wait()  # the confirmation's write under way
        gate.set()
        assert await confirming
        await asyncio.sleep(60)
        # was: "delivered", worked out from "offline", landed last
        assert running.copy(second["id"], ihd)[0] == "confirmed"
        assert running.headend.send(A, second["id"])["finished"]


async def test_a_refused_copy_keeps_its_refusal_over_a_deprovisioning(
    place: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with in_process(place, tmp_path, "load control device") as running:
        (lcd,) = running.devices
        theirs = LoadControlEvent(
            issuer_event_id=1, device_class=0xFFFF, duration_in_minutes=300, criticality_level=1
        )  # another source's event of the send's id: the ESI refuses the headend's
        await running.headend.meters[lcd.meter].esi.send_load_control(theirs, device=lcd.mac)
        earlier, later = (
            partial(_writes, outcome="skipped", detail=REFUSED_IN_USE),
            partial(_writes, outcome="skipped", detail=NOT_SENT_DEPROVISIONED),
        )
        refusal_writing = written_in_order(monkeypatch, running.store, earlier, later)
        sent = await running.headend.send_load_control(A, EVENT)
        assert sent["id"] == 1
        await refusal_writing.wait()
        await running.headend.deprovision(A, lcd.mac)
        await asyncio.sleep(30)
        # was: NOT_SENT_DEPROVISIONED, worked out from "pending", landed last (then the other
        # source's event's reports moved the copy on: "started")
        outcome, detail = running.copy(sent["id"], lcd)
        assert outcome == "skipped"
        assert detail.startswith(REFUSED_IN_USE), detail


async def test_a_copy_not_sent_to_a_device_leaving_is_recorded_once(
    place: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with in_process(place, tmp_path, *TWO) as running:
        second = running.devices[1]
        gate, send_id = await _second_pending(running, monkeypatch)
        earlier, later = partial(_writes, outcome="skipped"), partial(_writes, outcome="skipped")
        unsent_writing = written_in_order(monkeypatch, running.store, earlier, later)
        ordered = running.store.commit
        skipped: list[Batch] = []

        async def counted(batch: Batch) -> list[int]:
            if _writes(batch, "skipped", send_id):
                skipped.append(batch)
            return await ordered(batch)

        monkeypatch.setattr(running.store, "commit", counted)
        # the device leaving, the send goes on to it; its de-provisioning takes in its copies
        # once the send's write of it has come
        esi = running.headend.meters[second.meter].esi
        _answer_after(esi, "deprovision", unsent_writing, gate.set)
        await running.headend.deprovision(A, second.mac)
        await asyncio.sleep(60)
        assert running.copy(send_id, second) == ("skipped", NOT_SENT_DEPROVISIONED)
        # was: 2, by the send and by the de-provisioning (each from "pending")
        assert len(skipped) == 1
