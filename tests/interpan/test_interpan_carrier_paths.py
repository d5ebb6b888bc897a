"""The HHT carrier on both paths of one meter: a transaction executed over inter-PAN (from a
terminal that never joined) is answered DUPLICATE when replayed over the network (from a joined
device, through the meter's SE endpoint), and the other way round."""

from __future__ import annotations

import asyncio
from typing import Any

import zigpy.types as t

from zse.installcode import InstallCode
from zse.interpan.hht import (
    CARRIER_CLUSTER_ID,
    DEFAULT_MANUFACTURER_CODE,
    Command,
    Execute,
    HhtMeter,
    HhtTerminal,
    MemoryLog,
    Result,
    Status,
    carrier_whitelist,
    decode,
    encode,
)
from zse.interpan.service import (
    InterPanService,
    run_terminal,
    serve_carrier_on_endpoint,
    serve_meter,
)
from zse.interpan.transports.sim import SimTransport
from zse.interpan.window import CommandWhitelist, InterPanWindow
from zse.sim import Air, run
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

MFR = DEFAULT_MANUFACTURER_CODE
BUMP = 0x20
METER_PAN = 0x4D4D


async def over_the_network(endpoint: Any, request_id: int, command: Command) -> Result:
    """The head-end's path: the carrier frame from a joined device to the meter's endpoint."""
    frame = encode(Execute(request_id, 0, 1, command), tsn=0, manufacturer_code=MFR)
    reply = await endpoint.request(
        0x0000,
        SE_ENDPOINT_ID,
        CARRIER_CLUSTER_ID,
        frame[4],
        frame[5:],
        manufacturer=MFR,
        encrypt=True,
    )
    _, result = decode(bytes(reply.header.serialize()) + reply.payload, manufacturer_code=MFR)
    assert isinstance(result, Result)
    return result


def over_inter_pan(air: Air, app: Any) -> tuple[InterPanService, InterPanService]:
    """The meter's inter-PAN service on ``app`` (its window open to the terminal) and the
    service of a terminal that never joined, listening on the meter's channel (15)."""
    hht = air.device("00:0d:6f:00:00:00:00:77", channel=15)
    hht.listen()
    whitelist = CommandWhitelist(carrier_whitelist())
    window = InterPanWindow(whitelist=whitelist)
    meter_svc = InterPanService(
        SimTransport(app), ieee=app.state.node_info.ieee, pan_id=METER_PAN, window=window
    )
    window.open(meter_svc.now(), trusted=[hht.ieee])
    hht_svc = InterPanService(SimTransport(hht), ieee=hht.ieee, pan_id=0xFFFF, whitelist=whitelist)
    return meter_svc, hht_svc


async def shut_down(app: Any, serving: asyncio.Task[None], *services: InterPanService) -> None:
    """Close the services, wait for the meter's serving task to end, shut the meter down."""
    for service in services:
        await service.close()
    await serving
    await app.shutdown()


def test_duplicates_are_rejected_across_inter_pan_and_the_network() -> None:
    async def main() -> dict[str, Any]:
        air = Air(seed=21)
        app = await air.coordinator(channel=15, pan_id=METER_PAN)
        meter_ieee = app.state.node_info.ieee
        bumps: list[int] = []

        def bump(body: bytes) -> bytes:
            bumps.append(body[0])
            return bytes([len(bumps)])

        carrier = HhtMeter(MemoryLog(), {BUMP: bump})
        se = SeEndpoint(app, in_clusters=[CARRIER_CLUSTER_ID])
        await se.start()
        serve_carrier_on_endpoint(se, carrier)

        meter_svc, hht_svc = over_inter_pan(air, app)
        serving = asyncio.get_running_loop().create_task(serve_meter(meter_svc, carrier))

        code = InstallCode.generate(rng=air.rng)
        head_end = air.device("00:0d:6f:00:00:00:00:88", install_code=code, channel=15)
        endpoint = head_end.add_endpoint(1, out_clusters=[CARRIER_CLUSTER_ID])
        await app.permit_with_link_key(head_end.ieee, t.KeyData(code.link_key), 60)
        await head_end.join()

        first, second = Command(0xA001, BUMP, b"\x01"), Command(0xA002, BUMP, b"\x02")
        out: dict[str, Any] = {}
        inter_pan = await run_terminal(
            hht_svc, HhtTerminal(1, [first]), meter=meter_ieee, meter_pan_id=METER_PAN
        )
        out["first_inter_pan"] = inter_pan[0xA001]
        out["first_network"] = await over_the_network(endpoint, 1, first)
        out["second_network"] = await over_the_network(endpoint, 2, second)
        again = await run_terminal(
            hht_svc, HhtTerminal(2, [second]), meter=meter_ieee, meter_pan_id=METER_PAN
        )
        out["second_inter_pan"] = again[0xA002]
        out["bumps"], out["executions"] = bumps, carrier.executions
        await shut_down(app, serving, hht_svc, meter_svc)
        return out

    out = run(main())
    assert out["first_inter_pan"] == Result(0xA001, Status.EXECUTED, b"\x01")
    assert out["first_network"] == Result(0xA001, Status.DUPLICATE, b"\x01")
    assert out["second_network"] == Result(0xA002, Status.EXECUTED, b"\x02")
    assert out["second_inter_pan"] == Result(0xA002, Status.DUPLICATE, b"\x02")
    assert out["bumps"] == [1, 2]
    assert out["executions"] == 2
