"""The ESI tells its application the Report Event Status it recorded but never told (killed
in between) once a listener is attached, even one attached after ``start()`` as the MQTT
bridge, the headend and the CLI attach theirs."""

from __future__ import annotations

from tests.roles.han_builder import build, close
from tests.services.test_drlc_told import LCD, publish_and_report
from zse.drlc.service import ReportReceived
from zse.provisioning.registry import HanRegistry


async def test_a_report_never_told_reaches_the_listener_attached_after_start(tmp_path):
    registry = await HanRegistry.open(tmp_path / "han.db")
    told: list[ReportReceived] = []
    await publish_and_report(registry.store, told.append, tell=False)  # killed before telling
    await registry.close()
    assert told == []
    han = await build(tmp_path)  # esi.start(), then esi.on_event(han.events.append)
    await han.esi.settle()
    reports = [e for e in han.events if isinstance(e, ReportReceived)]
    assert [(r.device, r.report.event_status, r.new) for r in reports] == [(LCD, 0x01, True)]
    assert await han.registry.store.unreported(han.esi.drlc.namespace) == []
    await close(han)
