"""A stop that lands as the broker answers is not lost: on Python 3.11 aiomqtt waits for the
broker with ``asyncio.wait_for``, which swallows a cancellation arriving in the loop turn the
answer ends the wait (CPython gh-86296). ``zse sim utility`` Ctrl-C'd just as the broker
acknowledged its ``ready`` state went on watching its workers, never stopped them, and never
ended (``test_ctrl_c_stops_every_worker`` timed out). Each test cancels in exactly that turn:
the client's acknowledgement callback schedules the cancel right after it ends the wait."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import real_wait, settings
from tests.mqtt.test_mqtt_cli import TIMEOUT, sub
from zse.mqtt.bridge import mqtt_client
from zse.sim.utility import UtilityPlan, meter_topic, run_utility


def _cancel_after(
    callback: Callable[..., None], task: Callable[[], asyncio.Task[Any]], accepted: list[bool]
) -> Any:
    """``callback`` (the client's handler of the broker's answer), then ``task()`` cancelled
    in the same turn of the loop: after the answer has ended the wait, before it returns (on
    Python 3.11, where ``wait_for`` runs the wait as a task of its own; on 3.12 and later the
    task may have returned already: the cancel is then refused, ``accepted`` says which)."""
    loop = asyncio.get_running_loop()

    def answered(*args: Any) -> None:
        callback(*args)
        loop.call_soon(lambda: accepted.append(task().cancel()))

    return answered


@pytest.mark.parametrize("call", ["connect", "publish", "subscribe"])
async def test_a_cancel_as_the_broker_answers_is_raised(broker: Broker, call: str) -> None:
    """Cancelled in the turn its CONNACK, PUBACK or SUBACK arrived, the bridge's client
    returned as if never cancelled (a stopped bridge then set up its connection and served
    on, and its stop waited for ever)."""
    client = mqtt_client(settings(broker, client_id=f"zse-cancel-{call}"), clean=True)
    paho = client._client
    tasks: list[asyncio.Task[Any]] = []
    accepted: list[bool] = []
    if call == "connect":
        paho.on_connect = _cancel_after(paho.on_connect, lambda: tasks[0], accepted)
        tasks.append(asyncio.create_task(client.__aenter__()))
    else:
        await real_wait(client.__aenter__())
        if call == "publish":
            paho.on_publish = _cancel_after(paho.on_publish, lambda: tasks[0], accepted)
            tasks.append(asyncio.create_task(client.publish("zse/cancel", b"x", qos=1)))
        else:
            paho.on_subscribe = _cancel_after(paho.on_subscribe, lambda: tasks[0], accepted)
            tasks.append(asyncio.create_task(client.subscribe("zse/cancel", qos=1)))
    try:
        await real_wait(asyncio.wait(tasks))
        assert accepted in ([True], [False])
        if sys.version_info < (3, 12):  # wait_for's own task: the race is there to lose
            assert accepted == [True]
        # a cancel accepted while the call was still pending must end it cancelled
        assert tasks[0].cancelled() or not accepted[0], f"{call}: the cancellation was swallowed"
    finally:
        with contextlib.suppress(aiomqtt.MqttError):
            await real_wait(client.__aexit__(None, None, None))


def _utility_workers() -> list[int]:
    """This process's child processes that are a simulated utility's workers."""
    pid = os.getpid()
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child)
        for child in children
        if b"zse.sim.utility" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


@pytest.mark.parametrize(("acknowledged", "state"), [(1, "starting"), (2, "ready")])
def test_a_utility_stopped_as_the_broker_acknowledges_its_state_stops(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, acknowledged: int, state: str
) -> None:
    """Ctrl-C as the broker acknowledged ``starting`` or ``ready`` was swallowed: the utility
    went on (started its workers, watched them) and never stopped; it stops now, its worker
    gone, ``stopped`` said."""
    plan = UtilityPlan(meters=1, devices_per_meter=1, workers=1)
    on_publish = aiomqtt.Client._on_publish  # type: ignore[attr-defined]
    acks = 0

    async def main() -> asyncio.Task[None]:
        utility = asyncio.create_task(
            run_utility(plan, settings(broker, client_id="zse-utility"), directory=tmp_path)
        )
        cancel = _cancel_after(on_publish, lambda: utility, [])  # pending: accepted

        def acknowledged_one(*args: Any) -> None:  # this process's one client: the utility's
            nonlocal acks
            acks += 1
            (cancel if acks == acknowledged else on_publish)(*args)

        monkeypatch.setattr(aiomqtt.Client, "_on_publish", acknowledged_one)
        async with asyncio.timeout(TIMEOUT):  # a bound: it ends once the worker has stopped
            await asyncio.wait([utility])
        return utility

    utility = asyncio.run(main())
    assert utility.cancelled(), f"cancelled as {state} was acknowledged: went on"
    assert acks >= acknowledged
    assert _utility_workers() == []
    assert sub(broker, "zse/utility/state", 1) == ["zse/utility/state stopped"]
    if state == "ready":
        assert sub(broker, f"{meter_topic('zse', 0)}/bridge/state", 1) == [
            f"{meter_topic('zse', 0)}/bridge/state offline"
        ]
