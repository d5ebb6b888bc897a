"""#12.24: the ESI records Report Event Status only for events it issued, and keeps a bounded
history per device and event (SE D.2.3.3.1: a report answers a Load Control Event)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.drlc.test_drlc_client_core import MIN, T0, event
from tests.drlc.test_drlc_server_core import report
from zse.drlc import DrlcServerCore, Status, UnknownEvent
from zse.drlc.service import _REPORT_EVENT_STATUS, DRLC, DrlcServer, _report_payload
from zse.installcode import InstallCode
from zse.sim import Air, SimDevice, run
from zse.store import Store
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

DEVICE = "00:0d:6f:00:0d:00:00:21"


def report_rows(records: dict) -> list[str]:
    return [key for key in records if key.startswith("report/")]


def test_reports_for_events_never_issued_are_refused_and_not_stored() -> None:
    server = DrlcServerCore()
    server.publish(event(7, T0 + MIN, 30), now=T0)
    server.changes()
    for issuer_event_id in range(10_000):
        if issuer_event_id == 7:
            continue
        with pytest.raises(UnknownEvent):
            server.record(DEVICE, report(issuer_event_id, Status.RECEIVED, T0 + 1))
    assert report_rows(server.records()) == []
    assert server.changes() == {}
    assert server.view(8) == {}
    # the event it issued is still reported on
    assert server.record(DEVICE, report(7, Status.RECEIVED, T0 + 1))
    assert report_rows(server.records()) == [f"report/{DEVICE}/00000007/01/{T0 + 1:08x}"]


def test_the_history_per_device_and_event_is_bounded_to_the_latest() -> None:
    server = DrlcServerCore(max_statuses=4)
    server.publish(event(7, T0 + MIN, 30), now=T0)
    mirror: dict = server.changes()
    for second in range(1, 101):  # a device flipping opt-out / opt-in every second
        status = Status.OPTED_OUT if second % 2 else Status.OPTED_IN
        assert server.record(DEVICE, report(7, status, T0 + second))
        for key, value in server.changes().items():
            if value is None:
                mirror.pop(key)
            else:
                mirror[key] = value
        assert len(report_rows(mirror)) == min(second, 4)
    assert mirror == server.records()
    view = server.view(7)[DEVICE]
    assert [when - T0 for _, when in view.statuses] == [97, 98, 99, 100]
    # a report older than everything kept is not recorded; another device has its own bound
    assert not server.record(DEVICE, report(7, Status.RECEIVED, T0 + 1))
    assert server.changes() == {}
    assert server.record("other", report(7, Status.RECEIVED, T0 + 1))
    assert len(report_rows(server.records())) == 5
    with pytest.raises(ValueError, match="max_statuses"):
        DrlcServerCore(max_statuses=0)


def test_a_normal_lifecycle_is_kept_whole_by_default() -> None:
    server = DrlcServerCore()
    server.publish(event(7, T0 + MIN, 30), now=T0)
    for status, at in [
        (Status.RECEIVED, T0 + 1),
        (Status.OPTED_OUT, T0 + 2),
        (Status.OPTED_IN, T0 + 3),
        (Status.STARTED, T0 + MIN),
        (Status.COMPLETED, T0 + 31 * MIN),
    ]:
        assert server.record(DEVICE, report(7, status, at))
    assert len(server.view(7)[DEVICE].statuses) == 5
    assert server.started(7) == [DEVICE]


async def esi_and_device(
    *, seed: int, device: str, device_type: int
) -> tuple[SeEndpoint, SimDevice]:
    """An ESI's SE endpoint serving DRLC and a device joined with its install code, its
    endpoint 1 a DRLC client (``device_type``), on a simulated air of ``seed``."""
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    se = SeEndpoint(app, in_clusters=[DRLC])
    await se.start()
    code = InstallCode.generate(rng=air.rng)
    node = air.device(device, install_code=code, channel=15)
    node.add_endpoint(1, device_type=device_type, out_clusters=[DRLC])
    await app.permit_with_link_key(node.ieee, t.KeyData(code.link_key), 60)
    await node.join()
    return se, node


def test_reports_for_unknown_events_over_the_air_get_not_found_and_no_row(tmp_path: Path) -> None:
    """A joined device sends 2,000 unsigned reports for events the ESI never issued: each
    is answered Default Response NOT_FOUND and the store holds no report row; its report on
    the event the ESI did issue is stored."""

    async def main() -> tuple[list[int], list[str], list[str], int]:
        se, node = await esi_and_device(seed=24, device=DEVICE, device_type=0x0503)
        loop = asyncio.get_running_loop()
        async with await Store.open(tmp_path / "esi.db") as store:
            server = DrlcServer(se, clock=lambda: T0 + int(loop.time()), store=store)
            await server.start()
            await server.publish(event(7, T0 + 60 * MIN, 30))
            endpoint = node.endpoints[1]
            statuses = []
            for issuer_event_id in range(1000, 3000):
                payload = _report_payload(report(issuer_event_id, Status.RECEIVED, T0 + 1), None)
                reply = await endpoint.request(
                    0x0000, SE_ENDPOINT_ID, DRLC, _REPORT_EVENT_STATUS, payload, encrypt=True
                )
                assert reply.command_id == foundation.GeneralCommand.Default_Response
                statuses.append(reply.payload[1])
            unknown_rows = report_rows(await store.load(server.namespace))
            payload = _report_payload(report(7, Status.RECEIVED, T0 + 2), None)
            reply = await endpoint.request(
                0x0000, SE_ENDPOINT_ID, DRLC, _REPORT_EVENT_STATUS, payload, encrypt=True
            )
            statuses.append(reply.payload[1])
            rows = report_rows(await store.load(server.namespace))
            return statuses, unknown_rows, rows, server.unknown_reports

    statuses, unknown_rows, rows, refused = run(main())
    assert statuses[:-1] == [foundation.Status.NOT_FOUND] * 2000
    assert statuses[-1] == foundation.Status.SUCCESS
    assert unknown_rows == []
    assert rows == [f"report/{DEVICE}/00000007/01/{T0 + 2:08x}"]
    assert refused == 2000
