"""The ESI's DRLC server tells the application each new Report Event Status once: a "told"
journal entry is committed with the report's record and marked once the listeners ran, so a
process killed in between tells it after its restart (the device does not repeat it)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.services.test_server_records import event
from tests.services.test_start_order import Port, frame
from tests.store.helpers import killed_itself
from zse.drlc.core import StatusReport
from zse.drlc.protocol import report_payload, unsigned
from zse.drlc.service import DrlcServer, ReportReceived
from zse.messaging.service import MessagingServer
from zse.se.ids import DRLC
from zse.store import Store
from zse.zcl.frame import ZclMessage

START = 800_000_000
LCD = "00:0d:6f:00:0d:00:00:51"

CHILD = """
import asyncio, os, signal, sys
from tests.services.test_drlc_told import START, publish_and_report
from zse.store import Store

async def main(path):
    store = await Store.open(path)
    def told(event):
        if event.new:  # the report is committed: killed before anyone downstream has it
            print("told", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    await publish_and_report(store, told)

asyncio.run(main(sys.argv[1]))
"""


def report_frame(status: int):
    report = StatusReport(
        issuer_event_id=7,
        event_status=status,
        event_status_time=START,
        criticality_level_applied=4,
    )
    return frame(DRLC, 0x00, report_payload(report, *unsigned(report)), from_server=False, ieee=LCD)


async def publish_and_report(store: Store, listener, *, tell: bool = True) -> DrlcServer:
    """Event 7 published, then the device's report "received" (0x01) taken."""
    port = Port(9)
    server = DrlcServer(port, clock=lambda: START, store=store)
    server.on_event(listener)
    await (server.start() if tell else server.start(tell=False))
    await server.publish(event(7, START + 60, 30))
    await port.handlers[DRLC](report_frame(0x01))
    return server


async def held_then_live(
    path: Any, server_class: Any, cluster: int, held: ZclMessage, live: ZclMessage
) -> list[Any]:
    """What a server of ``server_class`` started on the store at ``path`` with ``tell=False``
    tells: the frame ``held`` taken before its ``tell_untold()`` (told nothing), then
    ``live`` after it; every event it journalled is then marked told."""
    told: list[Any] = []
    async with await Store.open(path) as store:
        port = Port(9)
        server = server_class(port, clock=lambda: START, store=store)
        server.on_event(told.append)
        await server.start(tell=False)
        await port.handlers[cluster](held)
        assert told == []
        await server.tell_untold()
        await port.handlers[cluster](live)
        assert await store.unreported(server.namespace) == []
        if isinstance(server, MessagingServer):  # its timer (the DRLC server has no stop)
            await server.stop()
    return told


async def restarted(path) -> tuple[Port, list[ReportReceived]]:
    told: list[ReportReceived] = []
    port = Port(9)
    async with await Store.open(path) as store:
        server = DrlcServer(port, clock=lambda: START, store=store)
        server.on_event(told.append)
        await server.start()
        await port.handlers[DRLC](report_frame(0x01))  # the device repeats it after all
        assert await store.unreported(server.namespace) == []
    return port, told


def test_a_report_committed_then_killed_is_told_after_the_restart(tmp_path) -> None:
    path = tmp_path / "esi.db"
    assert killed_itself(CHILD, str(path)) == "told\n"
    _, told = asyncio.run(restarted(path))
    # told once, as new, at the start; the device's repeat is not new
    assert [(r.device, r.report.event_status, r.new) for r in told] == [
        (LCD, 0x01, True),
        (LCD, 0x01, False),
    ]
    _, again = asyncio.run(restarted(path))
    assert [r.new for r in again] == [False]  # told before: not told again


async def test_held_until_told(tmp_path) -> None:
    """``start(tell=False)``: the reports not told before and those received since wait for
    ``tell_untold()``, then come in order; each once."""
    path = tmp_path / "esi.db"
    told: list[ReportReceived] = []
    async with await Store.open(path) as store:
        await publish_and_report(store, told.append, tell=False)  # stopped before telling
    assert told == []
    told = await held_then_live(path, DrlcServer, DRLC, report_frame(0x02), report_frame(0x03))
    assert [r.report.event_status for r in told if r.new] == [0x01, 0x02, 0x03]
