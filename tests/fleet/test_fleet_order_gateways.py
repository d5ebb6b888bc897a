"""Control commands and cancels over real meter gateways (a real Mosquitto, the queue in a
real PostgreSQL): a gateway stopped while carrying out a ``provision`` answers its repeat
``started``, and the worker tries it again under a new correlation id, which the gateway
carries out (or finds done); the bridge's ``provision``, ``deprovision`` and cancels are safe
to repeat; a worker killed holding a delivery whose gateway is offline, its send cancelled
meanwhile: the cancel reaches the gateway only after the delivery, never before it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt

from tests.fleet.helpers import (
    PREFIX,
    Gateways,
    enqueue_lce,
    gateways,
    lce,
    real,
    run_out_until,
    until,
    worker,
)
from tests.mqtt.broker import Broker
from zse.headend.control import Control, ControlKind, control_key
from zse.headend.core import Outcome
from zse.headend.queue import NOT_SENT_AGAIN, open_queue
from zse.installcode import canonical_eui64
from zse.mqtt.bridge import broker_time
from zse.provisioning import LifecycleState


def cut_when_provisioned(gw: Gateways, meter: str) -> asyncio.Future[None]:
    """Stop ``meter``'s gateway (as a crash) in the middle of its first ``provision``: the
    bridge has recorded the command as started and the ESI has admitted the device, but the
    answer is never given. Done once the gateway is stopped; then its ESI is as before."""
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[None] = loop.create_future()
    esi = next(m.esi for m in gw.sims.meters if m.id == meter)
    admit = esi.provision

    async def cut(*args: Any, **kwargs: Any) -> Any:
        del esi.provision  # the next one is the ESI's own
        await admit(*args, **kwargs)
        task = loop.create_task(gw.offline(meter))  # cancels this command where it waits
        task.add_done_callback(lambda _: stopped.set_result(None))
        await loop.create_future()  # never answered

    esi.provision = cut  # type: ignore[method-assign]
    return stopped


@asynccontextmanager
async def unregistered_meter(
    broker: Broker, tmp_path: Path, postgres: Any, name: str
) -> AsyncIterator[tuple[Gateways, Control]]:
    """One gateway meter with its devices not registered, a worker, and the API's side of
    the control jobs (as ``GatewayMeters``) in the schema ``name``."""
    database = postgres.store_url(name)
    async with (
        gateways(broker, tmp_path / "meters", meters=1, provisioned=False) as gw,
        worker(broker, database, "w1"),
    ):
        queue = await open_queue(database)
        try:
            yield gw, await Control.open(queue)
        finally:
            await queue.close()


async def register_first(gw: Gateways, control: Control) -> tuple[str, str]:
    """Register the meter's first device (as the API does); its EUI-64 and provision key."""
    device = gw.sims.devices[0]
    eui64 = canonical_eui64(device.mac)
    payload = {"mac": device.mac, "install_code": device.install_code}
    await control.register(eui64, device.meter, payload, time=1, now=0.0)
    return eui64, control_key(ControlKind.PROVISION, eui64, 1)


async def test_a_provision_cut_short_is_carried_out_again_under_a_new_id(
    broker: Broker, tmp_path: Path, postgres: Any
) -> None:
    async with unregistered_meter(broker, tmp_path, postgres, "cut_short") as (gw, control):
        stopped = cut_when_provisioned(gw, "meter-1")
        eui64, key = await register_first(gw, control)
        await real(stopped)  # the gateway stopped mid-command: no answer
        device = gw.sims.devices[0]
        registry = next(m.registry for m in gw.sims.meters if m.id == device.meter)
        assert gw.provisioned == {eui64: 1}

        async def state(wanted: str, detail: str) -> bool:
            ((found, now, why),) = await control.jobs()
            assert found == key
            return now == wanted and why.startswith(detail)

        async def unanswered() -> bool:
            return await state("ready", "meter meter-1 did not answer")

        await run_out_until(unanswered)  # the gateway is stopped: the link timeout, at once
        await gw.online(device.meter)
        await asyncio.sleep(31)  # virtual: the back-off; the same id is answered "started"

        async def cut_short() -> bool:
            return await state("ready", "the gateway stopped while carrying it out")

        await until(cut_short)
        await asyncio.sleep(61)  # virtual: the next back-off; a new id, carried out

        async def done() -> bool:
            return await state("done", "")

        await until(done)
        await asyncio.sleep(30)  # virtual: the device joins (every 5 s) and runs CBKE
        assert registry.get(eui64).state is LifecycleState.METER_READY
        assert gw.provisioned[eui64] in (1, 2)  # admitted again unless it had joined

        async def ready() -> bool:
            (record,) = await control.devices()
            return record.state is LifecycleState.METER_READY

        await until(ready)
        bridge = gw.bridges[device.meter]
        assert bridge.executed.get(key)["status"] == "started"  # type: ignore[index]
        assert bridge.executed.get(f"{key}:1")["status"] == "ok"  # type: ignore[index]


async def test_provision_deprovision_and_cancel_are_safe_to_repeat(
    broker: Broker, tmp_path: Path
) -> None:
    async with gateways(broker, tmp_path / "meters", meters=1) as gw:
        bridge = gw.bridges["meter-1"]
        first, second = gw.sims.devices[:2]

        async def command(name: str, cid: str, **fields: Any) -> dict[str, Any]:
            body = json.dumps({"correlation_id": cid, **fields}).encode()
            return await bridge.handle_command(name, body)

        again = await command("provision", "p-2", mac=first.mac, install_code=first.install_code)
        assert again["status"] == "ok", again
        assert again["result"]["state"] == "meter ready"
        other = await command("provision", "p-3", mac=first.mac, install_code=second.install_code)
        assert other["status"] == "error"  # another install code: not a repeat
        assert gw.provisioned == {}  # nothing admitted again
        sent = await command("load_control", "lc-1", device=second.mac, event=lce(9))
        assert sent["status"] == "ok", sent
        for cid in ("c-1", "c-2"):
            cancel = await command("cancel_load_control", cid, device=second.mac, issuer_event_id=9)
            assert cancel["status"] == "ok", cancel
        gone = await command("deprovision", "d-1", mac=first.mac)
        assert gone["status"] == "ok", gone
        twice = await command("deprovision", "d-2", mac=first.mac)
        assert twice["status"] == "ok", twice
        assert twice["result"]["state"] in ("pending de-provisioning", "de-provision complete")
        registry = gw.sims.meters[0].registry
        events = [a.event for a in await registry.audit(canonical_eui64(first.mac))]
        assert events.count("deprovision") == 1  # the repeat changed no state


@asynccontextmanager
async def observed(broker: Broker, topic: str) -> AsyncIterator[list[str]]:
    """The correlation ids of the commands published on ``topic`` (an MQTT client of its
    own), in their order (a batch's commands each)."""
    seen: list[str] = []
    client = aiomqtt.Client("127.0.0.1", broker.port, identifier="zse-test-observer")
    with broker_time():
        await client.__aenter__()
        await client.subscribe(topic, qos=1)

    async def read() -> None:
        async for message in client.messages:
            body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            seen.extend(each["correlation_id"] for each in body.get("commands", [body]))

    task = asyncio.get_running_loop().create_task(read())
    try:
        yield seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        with broker_time():
            await client.__aexit__(None, None, None)


async def test_a_cancel_reaches_the_gateway_after_a_delivery_whose_worker_died(
    broker: Broker, tmp_path: Path, postgres: Any
) -> None:
    database = postgres.store_url("cancel_order")
    meter, send = "meter-1", 5
    async with gateways(broker, tmp_path / "meters", meters=1) as gw:
        devices = gw.devices()
        await gw.offline(meter)  # the deliveries wait at the broker
        queue = await open_queue(database)
        control = await Control.open(queue)
        dying = worker(broker, database, "dies")
        try:
            async with observed(broker, f"{PREFIX}/{meter}/bridge/request/+") as seen:
                dead = await dying.__aenter__()
                await enqueue_lce(queue, send, devices)

                async def published() -> bool:
                    return len(seen) == len(devices)

                await until(published)  # at the broker, waiting for the gateway
                await dying.__aexit__(None, None, None)  # killed: its leases stay
                rows = await queue.rows(send)
                assert {(r.state, r.outcome) for r in rows} == {("leased", Outcome.PENDING)}
                # the API cancels the send (as GatewayMeters.cancel does)
                await queue.cancel(send, now=0.0)
                kind = ControlKind.CANCEL_LOAD_CONTROL
                await control.enqueue(
                    [
                        (control_key(kind, send, d), kind, m, d, cancel_payload(d, send))
                        for d, m in devices
                    ],
                    now=0.0,
                )
                async with worker(broker, database, "lives") as lives:
                    lives.offset = dead.offset  # the same clock (this loop's) on PostgreSQL
                    await gw.online(meter)  # the deliveries that waited are carried out

                    async def executed() -> bool:
                        return len(gw.executed) == len(devices)

                    await until(executed)
                    await asyncio.sleep(60)  # virtual: "lives" polls; the leases still run
                    assert {s for _, s, _ in await control.jobs()} == {"ready"}
                    assert gw.cancelled == {}
                    await asyncio.sleep(61)  # virtual: the dead worker's leases end

                    async def cancelled() -> bool:
                        states = {s for _, s, _ in await control.jobs()}
                        return states == {"done"} and len(gw.cancelled) == len(devices)

                    await until(cancelled)
            rows = await queue.rows(send)
            assert {(r.state, r.outcome, r.detail) for r in rows} == {
                ("sent", Outcome.CANCELLED, NOT_SENT_AGAIN)
            }
            assert gw.executed == {(d, send): 1 for d, _ in devices}
            assert gw.cancelled == {(d, send): 1 for d, _ in devices}
            for device, _ in devices:  # each device: the event, then its cancel
                order = [what for what, d, s in gw.log if d == device and s == send]
                assert order == ["send", "cancel"], order
            # every command published once (the dead worker's), then the cancels
            assert len(seen) == 2 * len(devices)
        finally:
            await queue.close()


def cancel_payload(device: str, send: int) -> dict[str, Any]:
    digits = device.lower()
    return {
        "device": ":".join(digits[i : i + 2] for i in range(0, 16, 2)),
        "issuer_event_id": send,
    }


async def test_a_command_under_way_when_the_broker_goes_is_finished_not_cut(
    broker: Broker, tmp_path: Path, postgres: Any
) -> None:
    async with unregistered_meter(broker, tmp_path, postgres, "not_cut") as (gw, control):
        bridge = gw.bridges["meter-1"]
        esi = gw.sims.meters[0].esi
        admit = esi.provision

        async def slow(*args: Any, **kwargs: Any) -> Any:
            del esi.provision
            broker.restart()  # the gateway's connection is lost in the middle of the command
            record = await admit(*args, **kwargs)  # its lifecycle event: not published now
            await real(bridge.disconnected.wait())  # the bridge has seen it (cut here before)
            return record

        esi.provision = slow  # type: ignore[method-assign]
        eui64, key = await register_first(gw, control)

        async def answered() -> bool:  # or not in time: then asked again, same id
            return {s for _, s, _ in await control.jobs()} != {"leased"}

        await until(answered)
        await asyncio.sleep(31)  # virtual: the back-off, if it was not answered in time

        async def done() -> bool:
            return await control.jobs() == [(key, "done", "")]

        await until(done)
        assert bridge.executed.get(key)["status"] == "ok"  # type: ignore[index]
        assert gw.provisioned == {eui64: 1}
