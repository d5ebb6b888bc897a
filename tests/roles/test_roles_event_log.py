"""The ESI's event logs (SE 1.2 D.11) read and cleared by an in-home display on the simulator:
what Device Management publishes is logged as the event configuration says (a change of
tenancy also pushed to the display as Publish Event); the display reads the log with filters
over several Publish Event Log and clears it; a restart of the ESI keeps its logs. Real
components, virtual time."""

from __future__ import annotations

import asyncio

from tests.roles.han_builder import CA, START, close
from tests.roles.test_roles_esi_registry import joined_han
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.devmgmt.core import ChangeOfTenancy, Password, SiteId
from zse.events.core import EventId
from zse.events.protocol import EventLogClearRequested, EventPublished
from zse.events.wire import ClearedLogs, LogId
from zse.provisioning.registry import HanRegistry
from zse.roles.esi import EnergyServiceInterface
from zse.sim import Air


async def test_the_display_reads_the_log_with_filters_and_clears_it(tmp_path) -> None:
    han = await joined_han(tmp_path, names=("ihd",))
    esi, ihd = han.esi, han.devices["ihd"]
    for issue in range(1, 9):
        await esi.update_site_id(SiteId(issuer_event_id=issue, provider_id=5, site_id=f"S{issue}"))
        await asyncio.sleep(10)
    change = ChangeOfTenancy(provider_id=5, issuer_event_id=40, implementation_time=START + 9999)
    await esi.publish_change_of_tenancy(change)
    await asyncio.sleep(1)  # newest first goes by time: a second apart
    await esi.set_password(Password(password_type=1, issuer_event_id=1, value=b"pw"))
    await asyncio.sleep(2)
    # pushed as the configuration says (the change of tenancy only), with its issuer event id
    pushed = [e for e in han.device_events["ihd"] if isinstance(e, EventPublished)]
    assert [(e.event.event_id, e.event.data) for e in pushed] == [
        (EventId.PUBLISH_COT_ACTIONED, (40).to_bytes(4, "little"))
    ]

    read = await ihd.event_log.get_event_log()  # every log, newest first, in several frames
    assert read is not None
    assert read.total_matching == 10
    assert [e.event_id for e in read.events[:2]] == [
        EventId.CHANGE_PASSWORD_ACTIONED,
        EventId.PUBLISH_COT_ACTIONED,
    ]
    assert read.events[0].log_id == LogId.SECURITY
    assert ihd.event_log.last_read == read
    site_ids = await ihd.event_log.get_event_log(
        log_id=LogId.GENERAL,
        event_id=EventId.UPDATE_SITE_ID_ACTIONED,
        number_of_events=3,
        event_offset=1,
    )
    assert site_ids is not None
    assert site_ids.total_matching == 8
    assert [int.from_bytes(e.data, "little") for e in site_ids.events] == [7, 6, 5]
    times = [e.time for e in read.events if e.event_id == EventId.UPDATE_SITE_ID_ACTIONED]
    window = await ihd.event_log.get_event_log(start_time=times[5], end_time=times[3], full=False)
    assert window is not None
    assert [e.time for e in window.events] == times[3:6]
    assert all(e.data == b"" for e in window.events)

    cleared = await ihd.event_log.clear_event_log(LogId.ALL)
    general_and_others = ClearedLogs.Fault_Log | ClearedLogs.General_Event_Log
    assert cleared == int(general_and_others | ClearedLogs.Network_Event_Log)
    await asyncio.sleep(1)
    assert any(isinstance(e, EventLogClearRequested) for e in han.events)
    left = await ihd.event_log.get_event_log()
    assert left is not None
    # the security log stays, and now notes the clearing (Event Log Cleared, log id 0)
    assert [(e.event_id, e.data) for e in left.events] == [
        (EventId.EVENT_LOG_CLEARED, b"\x00"),
        (EventId.CHANGE_PASSWORD_ACTIONED, b"\x01"),
    ]
    assert await ihd.event_log.get_event_log(log_id=LogId.GENERAL) is None  # NOT_FOUND
    await close(han)


async def test_a_restart_of_the_esi_keeps_its_logs(tmp_path) -> None:
    han = await joined_han(tmp_path, names=("ihd",))
    await han.esi.update_site_id(SiteId(issuer_event_id=3, provider_id=5, site_id="S"))
    logged = han.esi.event_logs.log.matching()
    assert [e.event_id for e in logged] == [EventId.UPDATE_SITE_ID_ACTIONED]
    await close(han)
    registry = await HanRegistry.open(tmp_path / "han.db")
    air = Air(seed=2)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()
    esi = EnergyServiceInterface(
        app,
        credentials=[CA.issue(eui64_bytes(app.state.node_info.ieee), SUITE1)],
        registry=registry,
        clock=lambda: START + int(loop.time()),
    )
    try:
        await esi.start()
        assert esi.event_logs.log.matching() == logged
    finally:
        await esi.stop()
        await registry.close()
        air.close()
