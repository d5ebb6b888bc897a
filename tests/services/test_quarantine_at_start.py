"""#12.16: a store holding one wrong-shaped record (its checksum valid: written by a bug, another
version or a hand) still starts every service: the bad record is quarantined (kept, logged,
listed by ``Store.quarantined`` and told to ``Store.on_quarantine``), the rest is served."""

from __future__ import annotations

import asyncio
import logging
import random

from tests.services.test_drlc_persistence import OPEN, close_stores
from tests.services.test_drlc_services import han as drlc_han
from tests.services.test_drlc_services import lce
from tests.services.test_messaging_service import han as messaging_han
from zse.drlc import DrlcServerCore, Status, StatusReport
from zse.drlc.service import DrlcClient, DrlcServer, ReportReceived
from zse.installcode import InstallCode
from zse.messaging import Message, MessageBoard, MessageStore
from zse.messaging.service import MessagingClient, MessagingServer
from zse.provisioning import DeviceRecord
from zse.provisioning.registry import HanRegistry
from zse.store import Batch, Quarantined, Store
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

__all__ = ["close_stores"]  # the autouse fixture that closes what OPEN holds


async def store_with(path, namespace: str, records: dict, *appends) -> Store:
    store = await Store.open(path)
    OPEN.append(store)
    batch = Batch().replace(namespace, records)
    for kind, value in appends:
        batch.append(namespace, kind, value)
    await store.commit(batch)
    return store


def reported(store: Store) -> list[Quarantined]:
    seen: list[Quarantined] = []
    store.on_quarantine(seen.append)
    return seen


async def test_drlc_server_starts_without_the_bad_event_and_serves_the_others(place, caplog):
    _, _, se, nodes, clock = await drlc_han(81, {"lcd": ("00:0d:6f:00:0d:00:00:61", 0x0504, 0x80)})
    core = DrlcServerCore()
    for event_id in (1, 2):  # one after the other (overlapping, 2 would supersede 1)
        core.publish(lce(event_id, clock() + 3600 * event_id, 30), now=clock())
    records = core.records() | {"event/00000003": {"event": {"issuer_event_id": "3"}}}
    store = await store_with(place("esi.db"), "drlc.server/9", records)
    seen = reported(store)
    server = DrlcServer(se, clock=clock, store=store)
    with caplog.at_level(logging.WARNING, logger="zse.store"):
        await server.start()
    assert [e.issuer_event_id for e in server.core.events()] == [1, 2]
    assert [(q.namespace, q.key) for q in seen] == [("drlc.server/9", "event/00000003")]
    assert seen[0].reason == "value: missing cancelled_at, expected, start"
    assert await store.quarantined("drlc.server/9") == seen
    assert "record drlc.server/9/event/00000003 quarantined: value: missing" in caplog.text
    # The others are served: a device asking for the scheduled events gets both.
    client = DrlcClient(nodes["lcd"].endpoints[1], server_ep=SE_ENDPOINT_ID, device_class=0x80,
                        clock=clock, rng=random.Random(1))  # fmt: skip
    await client.start()
    await asyncio.sleep(5)
    assert sorted(e.issuer_event_id for e in client.core.events()) == [1, 2]
    await client.stop()


async def test_drlc_client_starts_with_a_bad_table_and_journal_entry(place):
    _, _, se, nodes, clock = await drlc_han(82, {"lcd": ("00:0d:6f:00:0d:00:00:62", 0x0504, 0x80)})
    server = DrlcServer(se, clock=clock)
    await server.start()
    await server.publish(lce(5, clock() + 600, 30))  # kept by the ESI, not sent
    arrivals: list[ReportReceived] = []
    server.on_event(arrivals.append)
    report = StatusReport(issuer_event_id=5, event_status=Status.RECEIVED,
                          event_status_time=clock(), criticality_level_applied=4)  # fmt: skip
    store = await store_with(
        place("lcd.db"),
        "drlc.client/1",
        {"table": {"entries": {"5": {"event": []}}}, "attributes": {"utility_enrollment_group": 7}},
        ("report", {"report": report.to_fields(), "esis": ["0:9"]}),
        ("report", {"report": report.to_fields(), "esis": ["zero:nine"]}),
    )
    seen = reported(store)
    client = DrlcClient(nodes["lcd"].endpoints[1], server_ep=SE_ENDPOINT_ID, device_class=0x80,
                        clock=clock, rng=random.Random(1), store=store)  # fmt: skip
    await client.start()
    await asyncio.sleep(5)
    assert [(q.origin, q.key) for q in seen] == [("record", "table"), ("journal", "2")]
    assert client.core.utility_enrollment_group == 7  # the good record was used
    assert [a.report.event_status for a in arrivals][:1] == [Status.RECEIVED]  # the good entry
    assert [e.issuer_event_id for e in client.core.events()] == [5]  # refilled from the ESI
    await client.stop()


async def test_messaging_server_starts_without_the_bad_message(place):
    _, _, se, _, _, clock = await messaging_han(83, names=(), serve=False)
    messages = MessageStore()
    messages.display(Message(message_id=1, text="good"), clock(), device="00:0d:6f:00:0e:00:00:01")
    records = messages.to_records() | {"msg/00000002": {"message": {"text": 2}}}
    store = await store_with(
        place("esi.db"),
        "messaging.server/9",
        records,
        ("confirmed", {"device": "x", "nwk": "0x1234", "message_id": 1, "received_at": 0}),
    )
    seen = reported(store)
    server = MessagingServer(se, clock=clock, store=store)
    await server.start()
    await server.stop()
    assert sorted(server.messages.messages) == [1]
    assert [(q.origin, q.key) for q in seen] == [("record", "msg/00000002"), ("journal", "1")]
    assert seen[1].reason == ".nwk: expected int, got str"


async def test_messaging_client_starts_without_the_bad_message(place):
    _, _, _, _, [(_, ep)], clock = await messaging_han(84)
    board = MessageBoard()
    board.display(Message(message_id=1, text="good"), clock())
    records = board.to_records() | {"msg/00000002": {"message": None}}
    store = await store_with(
        place("ihd.db"),
        "messaging.client/1",
        records,
        ("confirm", {"message_id": 1, "confirmation_time": -1}),
    )
    seen = reported(store)
    client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock, store=store)
    await client.start(fetch=False)
    await client.stop()
    assert [m.message_id for m in client.held()] == [1]
    assert [(q.origin, q.key) for q in seen] == [("record", "msg/00000002"), ("journal", "1")]
    assert seen[1].reason == ".confirmation_time: integer outside 0..4294967295"


async def test_registry_opens_without_the_bad_device_and_never_prints_its_install_code(
    place, caplog
):
    good = DeviceRecord(
        eui64="000D6F000A000001", install_code=str(InstallCode.from_data(bytes(16)))
    )
    secret = str(InstallCode.from_data(bytes(range(16, 32))))
    bad = {"eui64": "000D6F000A000002", "install_code": secret, "state": "lost"}
    path = place("registry.db")
    store = await store_with(
        path, "registry.devices", {good.eui64: good.to_json(), bad["eui64"]: bad}
    )
    await store.close()
    with caplog.at_level(logging.DEBUG):
        registry = await HanRegistry.open(path)
    try:
        assert registry.devices() == [good]
        [found] = await registry.store.quarantined()
        assert (found.key, found.reason) == ("000D6F000A000002", "invalid value (ValueError)")
        assert secret in str(found.value)  # kept for the operator
    finally:
        await registry.close()
    assert "record registry.devices/000D6F000A000002 quarantined" in caplog.text
    assert secret not in caplog.text
    assert secret.replace("-", "") not in caplog.text


async def test_registry_audit_skips_and_reports_a_wrong_shaped_entry(place):
    path = place("registry.db")
    registry = await HanRegistry.open(path, clock=lambda: 1_800_000_000.5)
    try:
        await registry.register("00:0d:6f:00:0a:00:00:01", str(InstallCode.from_data(bytes(16))))
        await registry.store.commit(Batch().append("registry.audit", "registered", {"eui64": 1}))
        [entry] = await registry.audit()
        assert (entry.eui64, entry.event, entry.time) == ("000D6F000A000001", "register",
                                                          1_800_000_000.5)  # fmt: skip
        [bad] = await registry.store.quarantined("registry.audit")
        assert (bad.origin, bad.key) == ("journal", "2")
        assert bad.reason == "value: missing detail, event, from_state, time, to_state"
    finally:
        await registry.close()


async def test_esi_starts_with_a_damaged_public_key_record_quarantined(tmp_path):
    """The ESI's stored CBKE public keys load like the other namespaces: a record with a bad
    EUI-64 or a value that is not hex is quarantined, the others load (#12.16)."""
    from tests.roles.han_builder import CA, build, close  # noqa: PLC0415
    from zse.cbke import SUITE1  # noqa: PLC0415
    from zse.cbke.service import eui64_bytes  # noqa: PLC0415
    from zse.roles.esi import EnergyServiceInterface  # noqa: PLC0415

    han = await build(tmp_path)
    await han.esi.stop()
    store = han.registry.store
    good = "00:0d:6f:00:0a:00:00:01"
    await store.commit(
        Batch().replace(
            "esi.public_keys",
            {good: "02" + "ab" * 21, "not an eui": "02" + "cd" * 21, "00:0d:6f:00:0a:00:00:02": 7},
        )
    )
    seen = reported(store)
    credentials = CA.issue(eui64_bytes(han.app.state.node_info.ieee), SUITE1)
    esi = EnergyServiceInterface(han.app, credentials=credentials, registry=han.registry)
    await esi.start()
    try:
        assert sorted(q.key for q in seen) == ["00:0d:6f:00:0a:00:00:02", "not an eui"]
        assert [str(k) for k in esi._public_keys] == [good]
    finally:
        await esi.stop()
        han.esi = esi
        await close(han)
