"""A flood of QoS 0 commands, on a real Mosquitto over the simulated HAN: the broker bounds
the QoS 1 and 2 messages it sends a client unacknowledged (Mosquitto's
``max_inflight_messages``), not QoS 0 ones (MQTT 3.1.1 section 4.3.1: never acknowledged),
so while a command was carried out every QoS 0 command behind it waited in the client's
queue, without a bound: a publisher could grow the bridge's memory without end (300,000
commands of 300 bytes at a bridge answering 80 a second: 160 MB more). Past as many waiting
as the receiver holds (``_COMMANDS_WAITING``), a QoS 0 command is now dropped as it
arrives, with a warning; a QoS 1 one never is."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import real_wait, running
from zse.mqtt.bridge import _COMMANDS_WAITING

REQUEST = "zse/bridge/request/"
RESPONSE = "zse/bridge/response/"
IHD = "00:0d:6f:00:0a:00:00:01"
FLOOD = 1000


async def test_qos0_commands_waiting_are_bounded_qos1_ones_all_carried_out(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(broker, tmp_path, reading_interval=0) as (_sim, bridge, sub):
        client = bridge._live
        assert client is not None
        held = client._queue._queue  # type: ignore[attr-defined] # the client's waiting
        async with bridge._checking:  # the first command stops at its check: nothing goes on
            first = {"correlation_id": "first", "device": IHD, "message_id": 1}
            await sub.publish(REQUEST + "cancel_message", first)
            for i in range(FLOOD):
                await sub.publish(REQUEST + "nothing", {"correlation_id": f"q{i}"}, qos=0)
            last = {"correlation_id": "last", "device": IHD, "message_id": 2}
            await sub.publish(REQUEST + "cancel_message", last)

            async def arrived() -> None:  # the last one is in the client's queue
                while not (held and held[-1].qos == 1):
                    await asyncio.sleep(0)  # a turn of the loop, no time: its socket read

            await real_wait(arrived())
            assert len(client.messages) <= _COMMANDS_WAITING + 1
        answers = await sub.until(lambda: len(sub.on(RESPONSE + "cancel_message")) == 2 and sub)
    assert [a["correlation_id"] for a in answers.on(RESPONSE + "cancel_message")] == [
        "first",
        "last",
    ]
    refused = answers.on(RESPONSE + "nothing")
    # the receiver's own (the commands queue and the one it holds) and the client's, answered
    assert len(refused) <= _COMMANDS_WAITING + 1 + _COMMANDS_WAITING
    assert [a["error"]["field"] for a in refused] == ["command"] * len(refused)
    warned = [r.getMessage() for r in caplog.records if "QoS 0" in r.getMessage()]
    dropped = FLOOD - len(refused)
    assert [w.split(" QoS 0")[0] for w in warned] == [
        f"MQTT: {n}" for n in (1, 10, 100, 1000) if n <= dropped
    ], "said at the 1st, 10th, 100th... drop: not once a command"
