"""Over the MQTT bridge, a send to one device being removed or removed is refused naming
the field ``device`` and the device's state, nothing held for it (SE 5.4.8.1); a headend
worker takes that answer as a refusal, final, never sent again (zse.headend.gateway)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.mqtt.broker import Broker, running_broker
from tests.mqtt.helpers import running
from zse.headend.core import Outcome
from zse.headend.gateway import _answer

broker = pytest.fixture(running_broker, name="broker")


async def test_a_command_to_a_removed_device_is_refused_on_the_field_device(
    broker: Broker, tmp_path: Path
) -> None:
    async with running(broker, tmp_path) as (sim, bridge, _sub):
        mac = sim.registry.devices()[0].eui64
        await sim.esi.deprovision(mac)
        state = sim.esi.device(mac).state.value
        assert "de-provision" in state
        event = {"issuer_event_id": 0x4321, "device_class": 0x0FFF, "duration_in_minutes": 1,
                 "criticality_level": 1, "duty_cycle": 50}  # fmt: skip
        for name, body in (
            ("load_control", {"event": event}),
            ("display_message", {"message": {"message_id": 3, "text": "hi"}}),
        ):
            payload = json.dumps({"correlation_id": name, "device": mac, **body}).encode()
            answer = await bridge.handle_command(name, payload)
            assert answer["status"] == "error", answer
            assert answer["error"]["field"] == "device"
            assert f"is {state}" in answer["error"]["message"]
            told = _answer(answer)  # what a headend worker records of it
            assert (told.outcome, told.final) == (Outcome.SKIPPED, True)
        assert 0x4321 not in sim.esi.drlc.core
        assert sim.esi.messaging.stored(3) is None
