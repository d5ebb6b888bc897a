"""The MQTT bridge against a real Mosquitto over the simulated HAN (issue #17.5): Home
Assistant discovery, readings, a load control event by command with every report back, an
error naming the field, and the broker restarted mid-run with nothing lost and nothing done
twice."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import (
    Subscriber,
    handled_by_a_started_bridge,
    real_wait,
    running,
    settings,
)
from zse.cli.mqtt import simulated_esi
from zse.drlc import Status
from zse.mqtt.bridge import EXECUTED, OUTBOX, STEADY, MqttBridge, Reconnect, broker_time
from zse.mqtt.core import Publication, node_id
from zse.roles.esi import ReportReceived

# Home Assistant's documented keys, from https://www.home-assistant.io/integrations/sensor.mqtt/
# ("Configuration Variables": the sensor's keys and those of its `device` map) and the sensor
# device classes' units and state classes of https://www.home-assistant.io/integrations/sensor/
# ("Device class"); the discovery topic is <discovery_prefix>/<component>/[<node_id>/]
# <object_id>/config, ids of [a-zA-Z0-9_-] (https://www.home-assistant.io/integrations/mqtt/,
# "MQTT Discovery").
_HA_ENTITY_KEYS = {
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "default_entity_id",
    "device",
    "device_class",
    "enabled_by_default",
    "encoding",
    "entity_category",
    "icon",
    "json_attributes_template",
    "json_attributes_topic",
    "name",
    "object_id",
    "payload_available",
    "payload_not_available",
    "platform",
    "qos",
    "state_topic",
    "unique_id",
    "value_template",
}
HA_SENSOR_KEYS = _HA_ENTITY_KEYS | {
    "entity_picture",
    "expire_after",
    "force_update",
    "last_reset_value_template",
    "options",
    "state_class",
    "suggested_display_precision",
    "unit_of_measurement",
}
# The MQTT event's (https://www.home-assistant.io/integrations/event.mqtt/).
HA_EVENT_KEYS = _HA_ENTITY_KEYS | {"event_types"}
HA_DEVICE_KEYS = {
    "configuration_url",
    "connections",
    "hw_version",
    "identifiers",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "serial_number",
    "suggested_area",
    "sw_version",
    "via_device",
}
HA_ENERGY_UNITS = {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh"}
HA_POWER_UNITS = {"mW", "W", "kW", "MW", "GW", "TW"}
DISCOVERY_TOPIC = re.compile(r"homeassistant/sensor/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)/config")
TEMPLATE = re.compile(r"\{\{ value_json\.([a-z_]+)(?:\.([a-z_]+))? \}\}")


async def test_discovery_is_home_assistant_s_schema_and_readings_arrive(
    broker: Broker, tmp_path: Path
) -> None:
    async with running(broker, tmp_path) as (sim, bridge, sub):
        meter = node_id(bridge.meter)
        state = bridge.topics.state
        await sub.until(lambda: sub.on(state) == ["online"])
        configs = await sub.until(
            lambda: (
                (found := [(t, v) for t, v, _ in sub.received if DISCOVERY_TOPIC.match(t) and v])
                and len(found) == 2 + 3  # the meter's two, each device's lifecycle
                and found
            )
        )
        unique_ids = set()
        by_object = {}
        for topic, config in configs:
            match = DISCOVERY_TOPIC.fullmatch(topic)
            assert match is not None, topic
            assert set(config) <= HA_SENSOR_KEYS, set(config) - HA_SENSOR_KEYS
            assert set(config["device"]) <= HA_DEVICE_KEYS
            assert config["availability_topic"] == state
            assert config["unique_id"] not in unique_ids
            unique_ids.add(config["unique_id"])
            assert config["device"]["identifiers"]
            assert TEMPLATE.fullmatch(config["value_template"]), config["value_template"]
            by_object[match.groups()] = config
        energy = by_object[meter, "energy"]
        assert energy["device_class"] == "energy"
        assert energy["state_class"] == "total_increasing"
        assert energy["unit_of_measurement"] == "kWh"
        assert energy["unit_of_measurement"] in HA_ENERGY_UNITS
        power = by_object[meter, "power"]
        assert power["device_class"] == "power"
        assert power["state_class"] == "measurement"
        assert power["unit_of_measurement"] in HA_POWER_UNITS
        assert energy["state_topic"] == power["state_topic"] == f"zse/{meter}/metering"
        (display,) = sim.displays
        lifecycle = by_object[node_id(display), "lifecycle"]
        assert lifecycle["device"]["via_device"] == energy["device"]["identifiers"][0]
        # the display's "Message confirmed": an MQTT event
        confirmed = f"homeassistant/event/{node_id(display)}/confirmed/config"
        (event,) = await sub.until(lambda: sub.on(confirmed))
        assert set(event) <= HA_EVENT_KEYS, set(event) - HA_EVENT_KEYS
        assert event["device"] == lifecycle["device"]
        assert event["availability_topic"] == state
        # retained: a subscriber that comes later gets the discovery and the state at once
        late = Subscriber(broker, "late-subscriber")
        await late.connect()
        try:
            kept = await late.until(
                lambda: (
                    len([t for t, _, _ in late.received if DISCOVERY_TOPIC.match(t)]) == 5
                    and late.received
                )
            )
            assert all(retain for t, _, retain in kept if DISCOVERY_TOPIC.match(t))
            assert (state, "online", True) in kept
        finally:
            await late.close()

        # readings: the meter's values, raw and formatted, as they change (every 30 s)
        await asyncio.sleep(300)  # virtual
        topic = f"zse/{meter}/metering"
        readings = await sub.until(lambda: len(sub.on(topic)) >= 4 and sub.on(topic))
        sums = [r["summation_delivered_raw"] for r in readings]
        assert sums == sorted(sums)
        assert sums[-1] > sums[0]
        for reading in readings:
            assert reading["summation_delivered"] == reading["summation_delivered_raw"] / 1000
            assert reading["summation_delivered_unit"] == "kWh"
            assert reading["demand_unit"] == "kW"
            assert reading["demand"] == reading["demand_raw"] / 1000
            # what Home Assistant's templates read is a number
            assert isinstance(reading[TEMPLATE.fullmatch(energy["value_template"])[1]], float)
        core = sim.esi.meter.core
        assert readings[-1]["summation_delivered_raw"] <= core.read(0x0000)


def _lc(cid: str, duration: int = 1, **event: int) -> dict:
    return {
        "correlation_id": cid,
        "group": "sim",
        "event": {
            "issuer_event_id": 0x1234,
            "device_class": 0x0FFF,
            "duration_in_minutes": duration,
            "criticality_level": 1,
            "duty_cycle": 50,
            **event,
        },
    }


async def test_load_control_by_command_and_every_report_back(
    broker: Broker, tmp_path: Path
) -> None:
    async with running(broker, tmp_path) as (sim, bridge, sub):
        reports: list[ReportReceived] = []
        sim.esi.on_event(lambda e: reports.append(e) if isinstance(e, ReportReceived) else None)
        response = "zse/bridge/response/load_control"
        await sub.publish("zse/bridge/request/load_control", _lc("lc-1"))
        (answer,) = await sub.until(lambda: sub.on(response))
        assert answer["correlation_id"] == "lc-1"
        assert answer["status"] == "ok"
        outcomes = {o["device"]: o["outcome"] for o in answer["result"]["outcomes"]}
        assert set(outcomes) == set(sim.devices.values())
        assert set(outcomes.values()) == {"delivered"}
        await asyncio.sleep(180)  # virtual: the one-minute event runs and ends
        expected = [
            (e.device, e.report.issuer_event_id, Status(e.report.event_status).name.lower())
            for e in reports
        ]
        statuses = {status for _, _, status in expected}
        assert {"received", "started", "completed"} <= statuses

        def drlc() -> list:
            found = [
                (v["device"], v["report"]["issuer_event_id"], v["status"])
                for t, v, _ in sub.received
                if t.endswith("/drlc") and v.get("event") == "ReportReceived"
            ]
            return found if len(found) >= len(expected) else []

        assert await sub.until(drlc) == expected
        sent = [v for t, v, _ in sub.received if t == f"zse/{node_id(bridge.meter)}/drlc"]
        assert [v["event"] for v in sent] == ["LoadControlSent"]


async def test_a_gateway_without_send_events_answers_and_reports_but_publishes_no_sends(
    broker: Broker, tmp_path: Path
) -> None:
    """``send_events = false`` (a gateway serving only a headend, ADR 0023): the command is
    carried out and answered, the devices' reports published, the ESI's own sends not. The
    outbox publishes in order, so once the reports that follow the send are in, a send
    published would be too."""
    async with running(broker, tmp_path, send_events=False) as (sim, bridge, sub):
        await sub.publish("zse/bridge/request/load_control", _lc("lc-quiet"))
        (answer,) = await sub.until(lambda: sub.on("zse/bridge/response/load_control"))
        assert answer["status"] == "ok"
        assert {o["outcome"] for o in answer["result"]["outcomes"]} == {"delivered"}
        devices = {node_id(device) for device in sim.devices.values()}

        def started() -> set[str]:
            found = {
                t.split("/")[1]
                for t, v, _ in sub.received
                if t.endswith("/drlc") and v.get("status") == "started"
            }
            return found if found >= devices else set()

        assert await sub.until(started) == devices
        assert sub.on(f"zse/{node_id(bridge.meter)}/drlc") == []


async def test_a_bad_field_is_answered_with_its_name_and_the_bridge_goes_on(
    broker: Broker, tmp_path: Path
) -> None:
    async with running(broker, tmp_path) as (_sim, _bridge, sub):
        response = "zse/bridge/response/load_control"
        await sub.publish("zse/bridge/request/load_control", _lc("bad-1", duration=2000))
        await sub.publish("zse/bridge/request/load_control", {**_lc("bad-2"), "colour": 1})
        await sub.publish("zse/bridge/request/load_control", "{not json")
        await sub.publish("zse/bridge/request/load_control", _lc("good", duration=1))
        answers = await sub.until(lambda: len(sub.on(response)) == 4 and sub.on(response))
        assert [a["correlation_id"] for a in answers] == ["bad-1", "bad-2", None, "good"]
        assert [a["status"] for a in answers] == ["error", "error", "error", "ok"]
        assert answers[0]["error"]["field"] == "event.duration_in_minutes"
        assert answers[1]["error"] == {"field": "colour", "message": "unknown field"}
        assert answers[2]["error"]["field"] == "payload"


async def test_a_send_to_a_registry_group_no_device_is_in_names_the_group(
    broker: Broker, tmp_path: Path
) -> None:
    """The ESI refuses a registry group nobody is in (TargetError): answered like the other
    refusals, the field ``group``, and nothing sent."""
    async with running(broker, tmp_path) as (_sim, bridge, _sub):
        for name, body in (
            ("load_control", {**_lc("g1"), "group": "nobody"}),
            ("display_message", {"group": "nobody", "message": {"message_id": 3, "text": "hi"}}),
        ):
            payload = json.dumps({"correlation_id": "g", **body}).encode()
            answer = await bridge.handle_command(name, payload)
            assert answer["status"] == "error", answer
            assert answer["error"]["field"] == "group"
            assert "nobody" in answer["error"]["message"]


async def test_an_issuer_event_id_in_use_is_answered_with_that_field(
    broker: Broker, tmp_path: Path
) -> None:
    """The ESI refuses a load control event under an issuer event id it holds with other
    content (EventIdInUse, D.2.2.3.1.1.1): the answer names ``issuer_event_id``, as the
    in-process headend's refusal does (``refused: issuer_event_id: ...``), not the target."""
    async with running(broker, tmp_path) as (_sim, bridge, _sub):
        first = await bridge.handle_command("load_control", json.dumps(_lc("id-1")).encode())
        assert first["status"] == "ok", first
        again = json.dumps(_lc("id-2", duration=2)).encode()
        answer = await bridge.handle_command("load_control", again)
        assert answer["status"] == "error", answer
        assert answer["error"]["field"] == "issuer_event_id"
        assert str(0x1234) in answer["error"]["message"]


async def test_commands_at_qos_2_are_each_completed_once_answered(
    broker: Broker, tmp_path: Path
) -> None:
    """`qos = 2`: a command is completed (PUBCOMP) once answered; were it not, the broker
    would stop after its window of 20 unfinished messages. 25 commands, 25 answers."""
    async with running(broker, tmp_path, qos=2) as (_sim, _bridge, sub):
        response = "zse/bridge/response/load_control"
        assert sub._client is not None
        for n in range(25):
            command = json.dumps(_lc(f"q2-{n}", duration=2000))  # refused by name: quick
            await real_wait(sub._client.publish("zse/bridge/request/load_control", command, qos=2))
        answers = await sub.until(lambda: len(sub.on(response)) == 25 and sub.on(response))
    assert [a["correlation_id"] for a in answers] == [f"q2-{n}" for n in range(25)]


async def test_a_response_goes_to_the_command_s_response_topic_a_repeat_s_to_the_repeat_s(
    broker: Broker, tmp_path: Path
) -> None:
    async with running(broker, tmp_path) as (_sim, bridge, sub):
        request, default = "zse/bridge/request/load_control", "zse/bridge/response/load_control"
        one, two = "zse/apps/one/response", "zse/apps/two/response"
        await sub.publish(request, {**_lc("rt-1"), "response_topic": one})
        (answer,) = await sub.until(lambda: sub.on(one))
        assert (answer["correlation_id"], answer["status"]) == ("rt-1", "ok")
        await sub.publish(request, {**_lc("rt-1"), "response_topic": two})
        (repeat,) = await sub.until(lambda: sub.on(two))
        assert repeat["duplicate"] is True
        assert repeat["result"] == answer["result"]
        await sub.publish(request, {**_lc("rt-2"), "response_topic": "zse/+/response"})
        (refused,) = await sub.until(lambda: sub.on(default))
        assert refused["correlation_id"] == "rt-2"
        assert refused["error"]["field"] == "response_topic"
        await sub.publish(request, {**_lc("rt-3", duration=2000), "response_topic": one})
        answers = await sub.until(lambda: len(sub.on(one)) == 2 and sub.on(one))
        assert answers[1]["error"]["field"] == "event.duration_in_minutes"
        assert len(sub.on(default)) == 1
        assert len(sub.on(two)) == 1
        sent = sub.on(f"zse/{node_id(bridge.meter)}/drlc")
        assert [v["event"] for v in sent] == ["LoadControlSent"]  # rt-1 once; rt-2, rt-3 not


async def test_a_batch_is_its_commands_each_at_most_once_answered_together(
    broker: Broker, tmp_path: Path
) -> None:
    """docs/mqtt.md, ``batch``: the commands carried out in order, each answered as if alone
    (a repeat of one sent alone before: ``duplicate``, not carried out again; a wrong one
    refused in its place), in one response on the batch's ``response_topic``; the batch
    sent again carries nothing out again."""
    async with running(broker, tmp_path) as (_sim, bridge, sub):
        mine = "zse/apps/batcher/response"
        await sub.publish("zse/bridge/request/load_control", {**_lc("b-1"), "response_topic": mine})
        (alone,) = await sub.until(lambda: sub.on(mine))
        commands = [
            {"command": "load_control", **_lc("b-1")},  # carried out already
            {"command": "load_control", **_lc("b-2", duration=2000)},  # refused
            {"command": "load_control", **_lc("b-3", issuer_event_id=0x1235)},
            {"command": "batch", "correlation_id": "b-4"},  # no batch in a batch
        ]
        batch = {"correlation_id": "batch-1", "response_topic": mine, "commands": commands}
        await sub.publish("zse/bridge/request/batch", batch)
        answers = await sub.until(lambda: len(sub.on(mine)) == 2 and sub.on(mine))
        together = answers[1]
        assert (together["command"], together["correlation_id"]) == ("batch", "batch-1")
        first, refused, third, nested = together["responses"]
        assert first == {**alone, "duplicate": True}
        assert (refused["correlation_id"], refused["status"]) == ("b-2", "error")
        assert refused["error"]["field"] == "event.duration_in_minutes"
        assert (third["correlation_id"], third["status"]) == ("b-3", "ok")
        assert {o["outcome"] for o in third["result"]["outcomes"]} == {"delivered"}
        assert nested["correlation_id"] == "b-4"
        assert nested["error"]["field"] == "commands[3].command"
        await sub.publish("zse/bridge/request/batch", {**batch, "correlation_id": "batch-2"})
        answers = await sub.until(lambda: len(sub.on(mine)) == 3 and sub.on(mine))
        again = answers[2]["responses"]
        assert [a.get("duplicate", False) for a in again] == [True, False, True, False]
        assert (again[1], again[2]) == (refused, {**third, "duplicate": True})  # refused again
        sent = sub.on(f"zse/{node_id(bridge.meter)}/drlc")
        events = [v["issuer_event_id"] for v in sent if v["event"] == "LoadControlSent"]
        assert events == [0x1234, 0x1235]  # b-1 alone, b-3 in the batch: once each
        await sub.publish("zse/bridge/request/batch", {"correlation_id": "batch-3", "commands": 1})
        (wrong,) = await sub.until(lambda: sub.on("zse/bridge/response/batch"))
        assert (wrong["correlation_id"], wrong["error"]["field"]) == ("batch-3", "commands")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
async def test_the_broker_restarted_mid_run_nothing_lost_nothing_twice(
    broker: Broker, tmp_path: Path, sig: int
) -> None:
    """The broker stopped (SIGTERM: it saves its sessions) or killed (SIGKILL: it loses what
    it had not saved) mid-run, then started again: the bridge's outbox holds what was
    produced meanwhile, every bit arrives in order, and a command repeated is not redone."""
    async with running(broker, tmp_path, max_backoff=4) as (sim, bridge, sub):
        meter = node_id(bridge.meter)
        reports: list[ReportReceived] = []
        sim.esi.on_event(lambda e: reports.append(e) if isinstance(e, ReportReceived) else None)
        sent_topic = f"zse/{meter}/drlc"
        await sub.publish("zse/bridge/request/load_control", _lc("once", duration=2))
        await sub.until(lambda: sub.on("zse/bridge/response/load_control"))
        await asyncio.sleep(30)  # virtual
        await real_wait(_drained(bridge))

        broker.stop(sig)  # clients cut off
        await real_wait(_disconnected(bridge))
        before = len(sub.received)
        readings_before = len(sub.on(f"zse/{meter}/metering"))
        await asyncio.sleep(200)  # virtual, broker away: the event completes, readings go on
        produced_while_away = len(bridge.outbox)
        assert produced_while_away >= 5  # readings and reports, kept in the outbox
        waiting = [entry.value for entry in await bridge.store.unreported(OUTBOX)]
        assert len(waiting) == produced_while_away
        broker.start()  # on the same port
        await sub.close()
        await sub.connect()  # the subscriber's persistent session
        await asyncio.sleep(5)  # virtual: past the bridge's backoff, it reconnects
        await real_wait(bridge.connected.wait())
        await real_wait(_drained(bridge))
        assert bridge.connections == 2

        # nothing lost: every report and every reading made while away arrived, in order
        def drlc_reports() -> list:
            return [
                (v["device"], v["report"]["event_status"])
                for t, v, _ in sub.received
                if t.endswith("/drlc") and v.get("event") == "ReportReceived"
            ]

        expected = [(e.device, e.report.event_status) for e in reports]
        assert await sub.until(lambda: len(drlc_reports()) >= len(expected) and drlc_reports())
        assert set(drlc_reports()) == set(expected)
        assert Status.COMPLETED in {status for _, status in expected}
        kept = [(w["topic"], w["payload"]) for w in waiting]

        def arrived() -> list:
            found = [(t, v) for t, v, _ in sub.received[before:] if (t, v) in kept]
            return found if len(found) >= len(kept) else []

        assert await sub.until(arrived) == kept  # every one, in the order it was produced
        assert await bridge.store.unreported(OUTBOX) == []
        readings = sub.on(f"zse/{meter}/metering")
        assert len(readings) > readings_before
        times = [r["time"] for r in readings]
        assert times == sorted(times)
        assert len(sub.received) > before

        # nothing twice: the same command again is answered from the record, not carried out
        await sub.publish("zse/bridge/request/load_control", _lc("once", duration=2))
        answers = await sub.until(
            lambda: (
                len(sub.on("zse/bridge/response/load_control")) == 2
                and sub.on("zse/bridge/response/load_control")
            )
        )
        assert answers[1]["duplicate"] is True
        assert answers[1]["result"] == answers[0]["result"]
        assert [v["event"] for v in sub.on(sent_topic)] == ["LoadControlSent"]


class _HeldBridge(MqttBridge):
    """Holds each command, once begun, until ``release`` is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.began = asyncio.Event()
        self.release = asyncio.Event()

    async def _execute(self, command: Any) -> dict[str, Any]:
        self.began.set()
        await self.release.wait()
        return await super()._execute(command)


async def test_a_command_under_way_when_the_broker_goes_is_finished_and_answered_once(
    broker: Broker, tmp_path: Path
) -> None:
    """The connection lost while a command is carried out does not cut it short: it ends,
    its answer waits in the outbox and arrives after the reconnection, and the headend's
    repeat is answered from the record (before, the lost connection cancelled the command
    half-done and a repeat was answered ``started``)."""
    async with running(broker, tmp_path, bridge=_HeldBridge, max_backoff=4) as (_, bridge, sub):
        assert isinstance(bridge, _HeldBridge)
        meter = node_id(bridge.meter)
        await sub.publish("zse/bridge/request/load_control", _lc("held", duration=2))
        await real_wait(bridge.began.wait())
        broker.stop()  # SIGTERM: the broker keeps the subscriber's session
        await real_wait(_disconnected(bridge))
        bridge.release.set()
        await asyncio.sleep(5)  # virtual: the event is sent while the broker is away
        assert bridge.executed.get("held")["status"] == "ok"
        broker.start()
        await sub.close()
        await sub.connect()
        await asyncio.sleep(5)  # virtual: past the bridge's backoff, it reconnects
        await real_wait(bridge.connected.wait())
        await sub.publish("zse/bridge/request/load_control", _lc("held", duration=2))
        answers = await sub.until(
            lambda: (
                len(sub.on("zse/bridge/response/load_control")) == 2
                and sub.on("zse/bridge/response/load_control")
            )
        )
        assert [a["status"] for a in answers] == ["ok", "ok"]
        assert [a.get("duplicate", False) for a in answers] == [False, True]
        outcomes = answers[0]["result"]["outcomes"]
        assert [o["outcome"] for o in outcomes] == ["delivered"] * len(outcomes)
        assert [v["event"] for v in sub.on(f"zse/{meter}/drlc")].count("LoadControlSent") == 1


async def test_a_command_received_and_not_yet_answered_when_the_bridge_stops_comes_again(
    broker: Broker, tmp_path: Path
) -> None:
    """A command is acknowledged to the broker once answered: one received while another is
    carried out, still waiting its turn when the bridge stops (or its process dies), is the
    session's again at the next start, and carried out then, once (it was acknowledged on
    receipt and lost with the bridge's memory)."""
    async with running(broker, tmp_path, bridge=_HeldBridge) as (sim, bridge, sub):
        assert isinstance(bridge, _HeldBridge)
        meter = node_id(bridge.meter)
        await sub.publish("zse/bridge/request/load_control", _lc("first"))
        await real_wait(bridge.began.wait())
        await sub.publish("zse/bridge/request/load_control", _lc("second", issuer_event_id=7))

        async def waiting() -> None:
            while bridge._commands.qsize() < 1:
                await asyncio.sleep(0.01)  # real seconds: the broker's pace

        with broker_time():  # received, waiting behind "first"
            await asyncio.wait_for(waiting(), 30)
        await bridge.stop()
        assert bridge.executed.get("second") is None
        again = MqttBridge(
            sim.esi, settings(broker), store=sim.registry.store, displays=sim.displays
        )
        await again.start()
        try:
            answers = await sub.until(
                lambda: [
                    a
                    for a in sub.on("zse/bridge/response/load_control")
                    if a["correlation_id"] == "second"
                ]
            )
        finally:
            await again.stop()
    assert [a["status"] for a in answers] == ["ok"]
    sent = [v for v in sub.on(f"zse/{meter}/drlc") if v["event"] == "LoadControlSent"]
    assert [v["issuer_event_id"] for v in sent].count(7) == 1


async def _drained(bridge: MqttBridge) -> None:
    await bridge.drained.wait()


async def _disconnected(bridge: MqttBridge) -> None:
    await bridge.disconnected.wait()


async def test_executed_ids_survive_a_restart_of_the_bridge(broker: Broker, tmp_path: Path) -> None:
    """At most once across a restart: the ids are in the store before the command runs."""
    async with simulated_esi(tmp_path) as sim:
        await asyncio.sleep(30)  # virtual: the HAN joins
        store = sim.registry.store
        (display,) = sim.displays
        command = {"correlation_id": "m-1", "device": display, "message": {"message_id": 7}}
        command["message"]["text"] = "hello"
        payload = json.dumps(command).encode()
        first = MqttBridge(sim.esi, settings(broker), store=store)
        answer = await first.handle_command("display_message", payload)
        assert answer["status"] == "ok"
        assert [o["outcome"] for o in answer["result"]["outcomes"]] == ["delivered"]
        again = await handled_by_a_started_bridge(
            sim.esi, broker, store, "display_message", payload
        )
        assert again == {**answer, "duplicate": True}
        stored = await store.load(EXECUTED)
        assert stored["m-1"]["response"] == answer


async def test_a_full_outbox_drops_the_oldest_and_says_so(broker: Broker, tmp_path: Path) -> None:
    """docs/mqtt.md: past ``outbox_limit`` the oldest entries go, the journal marks them
    done, and the count is published (retained) at the next connection."""
    limits = {"outbox_limit": 3, "max_backoff": 4, "reading_interval": 0}
    async with running(broker, tmp_path, **limits) as (_sim, bridge, sub):
        await real_wait(_drained(bridge))
        broker.stop()
        await real_wait(_disconnected(bridge))
        for i in range(8):
            bridge.publish(Publication(f"zse/test/{i}", {"i": i}))
        await asyncio.sleep(0)  # the writer journals them
        await asyncio.sleep(1)  # virtual
        assert len(bridge.outbox) == 3
        assert bridge.outbox.dropped >= 5
        kept = [entry.value["topic"] for entry in await bridge.store.unreported(OUTBOX)]
        assert len(kept) == 3
        broker.start()
        await sub.close()
        await sub.connect()
        await asyncio.sleep(5)  # virtual: past the backoff
        await real_wait(bridge.connected.wait())
        await real_wait(_drained(bridge))
        said = await sub.until(lambda: sub.on("zse/bridge/outbox"))
        assert said[-1] == {"dropped": bridge.outbox.dropped, "limit": 3}
        arrived = await sub.until(
            lambda: (
                len([t for t, _, _ in sub.received if t.startswith("zse/test/")]) == 3
                and [t for t, _, _ in sub.received if t.startswith("zse/test/")]
            )
        )
        assert arrived == kept  # the newest three, in order


async def test_every_command_is_carried_out_on_the_esi(broker: Broker, tmp_path: Path) -> None:
    """Each command of docs/mqtt.md on the ESI, answered with its outcomes, and each send on
    the meter's topics (the ESI's send events) once."""
    async with running(broker, tmp_path, reading_interval=0) as (sim, bridge, sub):
        heater = sim.devices["LoadControlDevice"]
        price = {
            "provider_id": 1,
            "rate_label": "PEAK",
            "issuer_event_id": 77,
            "unit_of_measure": 0,
            "currency": 826,
            "price_trailing_digit": 4,
            "price_tier": 1,
            "number_of_price_tiers": 1,
            "register_tier": 1,
            "start_time": 0,
            "duration_in_minutes": 60,
            "price": 3500,
        }
        commands = [
            ("publish_price", {"group": "sim", "price": price}),
            ("load_control", {**_lc("x"), "group": None, "enrollment_group": 1}),
            ("cancel_load_control", {"device": heater, "issuer_event_id": 0x1234}),
            ("display_message", {"zigbee_group": 9, "message": {"message_id": 3, "text": "hi"}}),
            ("cancel_message", {"broadcast": True, "message_id": 3}),
            ("deprovision", {"mac": heater}),
        ]
        answers = []
        for i, (name, given) in enumerate(commands):
            body = {k: v for k, v in given.items() if v is not None}
            payload = json.dumps({**body, "correlation_id": f"c{i}"}).encode()
            answers.append(await bridge.handle_command(name, payload))
        assert [a["status"] for a in answers] == ["ok"] * 6, answers
        price_answer, lc_answer, cancel_lc, message, cancel, gone = answers
        assert {o["outcome"] for o in price_answer["result"]["outcomes"]} == {"delivered"}
        assert len(price_answer["result"]["outcomes"]) == 3
        assert lc_answer["result"]["multicast"] is True  # an enrollment group: broadcast
        assert cancel_lc["result"]["outcomes"] == [
            {"device": heater, "outcome": "delivered", "detail": ""}
        ]
        assert message["result"]["multicast"] is True
        assert cancel["result"]["target"] == "broadcast"
        # DEPROVISION, then a Mgmt_Leave_req asks it to leave (the registry says where it is)
        assert gone["result"] == {"device": heater, "state": "pending de-provisioning"}
        # each send's publication goes out before its answer, in order: all are in once the
        # sixth answer is
        await sub.until(
            lambda: len([t for t, _, _ in sub.received if "/bridge/response/" in t]) == 6
        )
        meter = node_id(bridge.meter)
        sent = {kind: sub.on(f"zse/{meter}/{kind}") for kind in ("price", "drlc", "message")}
        assert [v["event"] for v in sent["price"]] == ["PriceEvent"]
        assert sent["price"][0]["price_per_unit"] == 0.35
        assert [v["event"] for v in sent["drlc"]] == ["LoadControlSent", "LoadControlCancelSent"]
        assert [v["event"] for v in sent["message"]] == ["MessageSent", "MessageCancelSent"]
        assert sent["drlc"][1]["outcomes"] == cancel_lc["result"]["outcomes"]
        assert sent["drlc"][0]["utility_enrollment_group"] == 1


async def test_a_command_sent_while_the_bridge_is_away_waits_at_the_broker(
    broker: Broker, tmp_path: Path
) -> None:
    """The bridge's session is persistent: a command published while it is stopped is
    delivered, carried out and answered when it is back."""
    async with running(broker, tmp_path) as (sim, bridge, sub):
        await bridge.stop()
        (display,) = sim.displays
        message = {"message_id": 9, "text": "while you were away"}
        command = {"correlation_id": "away-1", "device": display, "message": message}
        await sub.publish("zse/bridge/request/display_message", command)
        again = MqttBridge(sim.esi, settings(broker), store=sim.registry.store)
        await again.start()
        try:
            (answer,) = await sub.until(lambda: sub.on("zse/bridge/response/display_message"))
        finally:
            await again.stop()
        assert answer["correlation_id"] == "away-1"
        assert answer["status"] == "ok"
        assert answer["result"]["outcomes"][0]["outcome"] == "delivered"


class _SettingUp(MqttBridge):
    """A bridge that says when its connection's set-up (after ``online``, before the
    subscriptions) has begun."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setting_up = asyncio.Event()

    def _discovery(self) -> list[Publication]:
        found = super()._discovery()
        self.setting_up.set()
        return found


async def test_a_bridge_stopped_while_it_sets_its_connection_up_says_offline(
    broker: Broker, tmp_path: Path
) -> None:
    """``online`` goes out first on each connection; a stop before the set-up ends (the
    discovery and the subscriptions still to publish) still leaves ``offline`` retained: a
    clean disconnection drops the Will, so the bridge says it itself (a utility's worker
    stopped by SIGTERM while a meter was reconnecting left it ``online``)."""
    async with simulated_esi(tmp_path) as sim:
        bridge = _SettingUp(sim.esi, settings(broker), store=sim.registry.store)
        await bridge.start()
        try:
            await real_wait(bridge.setting_up.wait())
            assert not bridge.connected.is_set()  # the set-up is under way
        finally:
            await bridge.stop()
        sub = Subscriber(broker, "after-the-stop")
        await sub.connect()
        try:
            assert await sub.until(lambda: sub.on("zse/bridge/state")) == ["offline"]
        finally:
            await sub.close()


async def test_two_bridges_with_one_client_id_back_off_and_say_why(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two bridges with one client id on a broker take the session from each other (MQTT
    3.1.4-3: the broker disconnects the existing client): each reconnected every second, for
    ever, with a warning each time that did not say why. A connection that ends within
    STEADY s is now tried again on the growing back-off, and the warning names the id."""
    from zse.store import Store  # noqa: PLC0415

    caplog.set_level(logging.WARNING, logger="zse.mqtt.bridge")
    async with running(broker, tmp_path, max_backoff=30) as (sim, bridge, _sub):
        store = await Store.open(tmp_path / "twin.db")
        twin = MqttBridge(sim.esi, settings(broker, max_backoff=30), store=store)
        await twin.start()
        try:
            await asyncio.sleep(120)  # virtual
        finally:
            await twin.stop()
            await store.close()
        made = bridge.connections + twin.connections
    # 1 s, 2, 4, 8, 16, 30, 30...: a handful in two minutes each, not one a second
    assert made <= 24, made  # 16 here; 121 when each tried again every second
    assert "is another client using the client id 'zse-bridge'?" in caplog.text


def test_reconnect_waits_grow_until_a_connection_lasts() -> None:
    """The waits of the bridge's and the headend link's reconnections (``Reconnect``): a
    connection that lasted STEADY s starts them again at 1 s; none made, or one that ended
    sooner, does not, and says why it may have ended."""
    reconnect = Reconnect(max_backoff=8)
    waits, hints = [], []
    for began, ended in [(None, 0), (1, 2), (4, 5), (9, 10), (None, 20), (30, 30 + STEADY)]:
        hints.append(reconnect.ended(began, ended, "w1"))
        waits.append(reconnect.wait())
    assert waits == [1, 2, 4, 8, 8, 1]
    assert hints[0] == hints[4] == hints[5] == ""
    assert all("client id 'w1'" in hint for hint in hints[1:4])
