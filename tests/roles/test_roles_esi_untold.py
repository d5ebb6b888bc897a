"""The ESI tells its application the Report Event Status it recorded but never told (killed
in between) once a listener is attached, even one attached after ``start()`` as the MQTT
bridge, the headend and the CLI attach theirs."""

from __future__ import annotations

from fractions import Fraction

from tests.roles.han_builder import build, close
from tests.services.test_drlc_told import LCD, publish_and_report
from tests.services.test_prepayment_told import CONFIG, START, PrepayPort
from zse.drlc.service import ReportReceived
from zse.prepayment.core import CreditExhausted, LowCredit, SupplyInterrupted
from zse.prepayment.service import PrepaymentServer
from zse.provisioning.registry import HanRegistry
from zse.zcl.se_endpoint import SE_ENDPOINT_ID


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


async def test_prepay_events_never_told_reach_the_listener_attached_after_start(tmp_path):
    """The supply interrupted and stored by an ESI killed before it told anyone: the ESI
    started again on that store tells it to its first listener, once."""
    registry = await HanRegistry.open(tmp_path / "han.db")
    prepay = PrepaymentServer(
        PrepayPort(SE_ENDPOINT_ID), config=CONFIG, clock=lambda: START, store=registry.store
    )
    await prepay.start(tell=False)
    await prepay.consume(Fraction(10), Fraction(20))  # stored, held: never told
    await prepay.stop()
    await registry.close()
    han = await build(tmp_path, prepayment={"config": CONFIG})
    await han.esi.settle()
    assert han.esi.prepayment is not None
    assert han.esi.prepayment.account.interrupted
    told = [e for e in han.events if isinstance(e, LowCredit | CreditExhausted | SupplyInterrupted)]
    assert told == [LowCredit(-100, 0), CreditExhausted(-100), SupplyInterrupted(START)]
    assert await han.registry.store.unreported(han.esi.prepayment.namespace) == []
    await close(han)
