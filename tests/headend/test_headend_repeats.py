"""A Report Event Status repeat (``new`` false: the ESI had recorded it) is forwarded by
every consumer: outcomes only move forward, so it changes nothing the headend has, and it
carries a report the headend may never have had (an ESI killed between recording it and
handing it on, or a report recorded by an earlier zse without its "told" entry)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from zse.drlc.core import StatusReport
from zse.drlc.service import ReportReceived
from zse.headend.core import Outcome, SendKind
from zse.headend.gateway import _report
from zse.headend.link import EsiLink, Report
from zse.headend.service import Headend

LCD = "00:0d:6f:00:0d:00:00:51"
REPEAT = ReportReceived(
    device=LCD,
    source_nwk=0x1234,
    report=StatusReport(
        issuer_event_id=7, event_status=0x03, event_status_time=1, criticality_level_applied=4
    ),
    signed=False,
    new=False,
)
EXPECTED = Report(
    device=LCD, send=7, kind=SendKind.LOAD_CONTROL, outcome=Outcome.COMPLETED, event_status=0x03
)


def test_the_mqtt_gateway_forwards_a_repeat() -> None:
    payload = {
        "event": "ReportReceived",
        "device": LCD,
        "new": False,
        "report": {"issuer_event_id": 7, "event_status": 0x03},
    }
    assert _report(payload) == EXPECTED


def test_the_in_process_link_forwards_a_repeat() -> None:
    link = EsiLink({})
    heard: list[Report] = []
    link.on_report(heard.append)
    link._on_event(REPEAT)
    assert heard == [EXPECTED]


async def test_the_headend_service_forwards_a_repeat() -> None:
    spawned: list[Any] = []
    reported: list[tuple[str, int, Outcome]] = []

    async def record(device: str, send: int, outcome: Outcome, **_: object) -> None:
        reported.append((device, send, outcome))

    stub = SimpleNamespace(_spawn=spawned.append, _reported=record, _back=lambda device: None)
    Headend._listener(stub, SimpleNamespace(id="m1"))(REPEAT)  # type: ignore[arg-type]
    for work in spawned:
        await work
    assert reported == [(LCD, 7, Outcome.COMPLETED)]


async def test_the_in_process_link_returns_what_its_listeners_still_do() -> None:
    """The ESI marks a report told once the headend has recorded it: the link hands the
    ESI what its listeners (a worker's group commit) still do with the report."""
    link = EsiLink({})
    recorded = asyncio.get_running_loop().create_future()
    link.on_report(lambda report: recorded)
    done = link._on_event(REPEAT)
    assert done is not None
    await asyncio.sleep(0)
    assert not done.done()
    recorded.set_result(True)
    await done


async def test_the_headend_service_returns_its_recording_to_the_esi() -> None:
    reported: list[tuple[str, int, Outcome]] = []

    async def record(device: str, send: int, outcome: Outcome, **_: object) -> None:
        reported.append((device, send, outcome))

    stub = SimpleNamespace(
        _spawn=asyncio.ensure_future, _reported=record, _back=lambda device: None
    )
    done = Headend._listener(stub, SimpleNamespace(id="m1"))(REPEAT)  # type: ignore[arg-type]
    assert done is not None
    assert reported == []
    await done
    assert reported == [(LCD, 7, Outcome.COMPLETED)]
