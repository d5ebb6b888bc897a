"""The whole headend over meter gateways (issue #19, ADR 0020): the HTTPS API, its store and
work queue in a real PostgreSQL, headend workers, and simulated meters each behind its
``zse mqtt`` bridge on a real Mosquitto. Devices are registered by install code through the
API, join, and show METER_READY in it; a group send's outcomes and reports come back; a cancel
and a de-provisioning go to the gateways; an API stopped between accepting a registration and
the gateway's answer loses nothing and does nothing twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fleet.helpers import ADMITTED, Gateways, gateways, run_out_until, until, worker
from tests.headend.helpers import START, Reply, client_context, request
from tests.mqtt.broker import Broker
from zse.headend.pki import HeadendConfig, init_directory, load_config
from zse.headend.run import RunningHeadend, start_gateway_headend
from zse.installcode import canonical_eui64

API = "/api/v1"
METERS = ["meter-1", "meter-2"]


@dataclass
class Api:
    """A served headend over gateways and a retailer's client."""

    directory: Path
    running: RunningHeadend

    async def call(self, method: str, path: str, body: object = None) -> Reply:
        context = client_context(self.directory, "retailer-a")
        base = f"https://127.0.0.1:{self.running.port}"
        return await request(base, context, method, API + path, body)

    async def state(self, mac: str) -> str:
        reply = await self.call("GET", f"/devices/{mac}")
        assert reply.status == 200, reply
        return str(reply.body["state"])


def headend_config(tmp_path: Path) -> HeadendConfig:
    directory = tmp_path / "pki"
    if not directory.exists():
        init_directory(directory, port=0)
    return load_config(directory / "headend.toml")


@asynccontextmanager
async def api(tmp_path: Path, database: str) -> AsyncIterator[Api]:
    """``zse headend serve --meter meter-1 --meter meter-2 --database ...`` in this process
    (no worker of its own: the workers run beside it)."""
    loop = asyncio.get_running_loop()
    running = await start_gateway_headend(
        headend_config(tmp_path),
        METERS,
        database=database,
        clock=lambda: START + int(loop.time()),
        port=0,
        wall=loop.time,
        sync=0.1,
    )
    try:
        yield Api(tmp_path / "pki", running)
    finally:
        await running.close()


def registration(gw: Gateways, index: int) -> dict[str, Any]:
    device = gw.sims.devices[index]
    return {
        "mac": device.mac,
        "install_code": device.install_code,
        "meter": device.meter,
        "device_type": device.device_type,
    }


async def wait_state(service: Api, macs: list[str], state: str | frozenset[str]) -> None:
    """Until each of ``macs`` is in ``state`` (or one of them)."""
    states = frozenset([state]) if isinstance(state, str) else state

    async def reached() -> bool:
        return all([await service.state(mac) in states for mac in macs])

    await until(reached)


async def finished(service: Api, send: int, outcomes: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def check() -> bool:
        nonlocal found
        found = (await service.call("GET", f"/sends/{send}")).body
        return bool(found["outcomes"]) and {o["outcome"] for o in found["outcomes"]} <= outcomes

    try:
        await until(check)
    except TimeoutError:
        raise AssertionError(f"send {send} not settled: {found}") from None
    return found


async def test_register_send_cancel_and_deprovision_through_the_gateways(
    broker: Broker, tmp_path: Path, postgres: Any
) -> None:
    database = postgres.store_url("serve_story")
    async with (
        gateways(broker, tmp_path / "meters", provisioned=False) as gw,
        api(tmp_path, database) as service,
        worker(broker, database, "w1"),
        worker(broker, database, "w2"),
    ):
        macs = [d.mac for d in gw.sims.devices]
        for index in range(len(macs)):
            reply = await service.call("POST", "/devices", registration(gw, index))
            assert reply.status == 201, reply
            assert reply.body["state"] == "new"
            assert "install_code" not in reply.body
        again = await service.call("POST", "/devices", registration(gw, 0))
        assert again.status == 409, again
        await wait_state(service, macs, ADMITTED)
        await asyncio.sleep(60)  # virtual: the devices join (every 5 s) and run CBKE
        await wait_state(service, macs, "meter ready")
        assert gw.provisioned == {canonical_eui64(mac): 1 for mac in macs}
        history = (await service.call("GET", f"/devices/{macs[0]}/history")).body["history"]
        assert [h["to_state"] for h in history][-1] == "meter ready"
        assert history[0]["event"] == "register"
        keys = await service.running.headend.directory.control.jobs()  # type: ignore[attr-defined]
        assert {state for _, state, _ in keys} == {"done"}
        assert "install_code" not in str(await _payloads(service))

        group = await service.call("POST", "/groups", {"name": "all", "meters": METERS})
        assert group.status == 201, group
        sent = await service.call(
            "POST",
            "/sends/load-control",
            {"group": "all", "duty_cycle": 50, "duration_minutes": 1, "criticality_level": 3},
        )
        assert sent.status == 202, sent
        lce = sent.body["id"]
        await finished(service, lce, {"delivered", "received", "started"})
        await asyncio.sleep(90)  # virtual: the event's minute runs
        view = await finished(service, lce, {"completed"})
        assert {o["attempts"] for o in view["outcomes"]} == {1}
        assert gw.executed == {(canonical_eui64(mac), lce): 1 for mac in macs}
        # the API marked what it took in: the workers' purge keeps the rest (however long
        # the API is away)
        assert await _read_marks(service) == ["api"]

        message = await service.call(
            "POST", "/sends/message", {"group": "all", "text": "Peak at 6", "duration_minutes": 60}
        )
        assert message.status == 202, message
        note = message.body["id"]
        await finished(service, note, {"delivered"})
        # each device's job carries the message's window from the send's creation (a job
        # carried out late shows what is left of it, nothing once it is over), not "now"
        created = service.running.headend.records.sends[note].created
        assert await _job_starts(service, note) == {created}
        cancel = await service.call("POST", f"/sends/{note}/cancel")
        assert cancel.status == 202, cancel

        async def cancelled() -> bool:
            return len(gw.cancelled) == len(macs)

        await until(cancelled)
        assert gw.cancelled == {(canonical_eui64(mac), note): 1 for mac in macs}
        view = (await service.call("GET", f"/sends/{note}")).body
        assert {o["outcome"] for o in view["outcomes"]} == {"cancelled"}

        gone = await service.call("POST", f"/devices/{macs[0]}/deprovision")
        assert gone.status == 202, gone
        await wait_state(service, macs[:1], "de-provision complete")
        twice = await service.call("POST", f"/devices/{macs[0]}/deprovision")
        assert twice.status == 202, twice  # a repeat is accepted (its keys erased again)
        assert await service.state(macs[1]) == "meter ready"
        back = await service.call("POST", "/devices", registration(gw, 0))  # registered again
        assert back.status == 201, back
        await wait_state(service, macs[:1], ADMITTED)  # the gateway admitted it
        assert gw.provisioned[canonical_eui64(macs[0])] == 2


async def _job_starts(service: Api, send: int) -> set[int]:
    """The start times of the message jobs of ``send``."""
    queue = service.running.headend.queue
    assert queue is not None
    async with queue.transaction("read jobs") as db:
        rows = await db.fetch("SELECT payload FROM headend_jobs WHERE send = ?", (send,))
    return {json.loads(row[0])["start_time"] for row in rows}


async def _payloads(service: Api) -> list[Any]:
    queue = service.running.headend.queue
    assert queue is not None
    async with queue.transaction("read payloads") as db:
        return await db.fetch("SELECT payload FROM headend_control")


async def test_an_api_stopped_before_the_gateway_answered_loses_nothing_and_does_nothing_twice(
    broker: Broker, tmp_path: Path, postgres: Any
) -> None:
    database = postgres.store_url("serve_restart")
    async with gateways(broker, tmp_path / "meters", provisioned=False) as gw:
        await gw.offline("meter-1")  # its gateway away: the registration waits in the queue
        async with worker(broker, database, "w1"):  # first, in a new schema
            async with api(tmp_path, database) as first:
                reply = await first.call("POST", "/devices", registration(gw, 0))
                assert reply.status == 201, reply
                control = first.running.headend.directory.control  # type: ignore[attr-defined]

                async def tried() -> bool:
                    return any(d.startswith("meter meter-1") for _, _, d in await control.jobs())

                # the worker found the gateway away (no gateway: the link timeout, at once);
                # the API stops now
                await run_out_until(tried)
            mac = gw.sims.devices[0].mac
            assert gw.provisioned == {}
            async with api(tmp_path, database) as second:
                control = second.running.headend.directory.control  # type: ignore[attr-defined]
                assert await second.state(mac) == "new"
                await gw.online("meter-1")  # the command that waited at the broker arrives
                await wait_state(second, [mac], ADMITTED)
                await asyncio.sleep(60)  # virtual: the device joins; the worker tries again
                await wait_state(second, [mac], "meter ready")

                async def answered() -> bool:
                    return {s for _, s, _ in await control.jobs()} == {"done"}

                await until(answered)  # the retry (same key) answered from the record
                assert gw.provisioned == {canonical_eui64(mac): 1}
                devices = (await second.call("GET", "/devices")).body
                assert [d["mac"] for d in devices["devices"]] == [canonical_eui64(mac)]


async def _read_marks(service: Api) -> list[str]:
    queue = service.running.headend.queue
    assert queue is not None
    async with queue.transaction("read the readers") as db:
        return [row[0] for row in await db.fetch("SELECT reader FROM headend_readers")]
