"""A hostile review of the MQTT bridge as a Home Assistant user and a headend integrator meet
it, on a real Mosquitto over the simulated HAN: a retained command left on the broker, a
request topic as long as MQTT allows, and an outbox entry no broker takes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import real_wait, running, settings
from tests.security.test_security_secrets import assert_hidden
from zse.installcode import InstallCode
from zse.mqtt.bridge import OUTBOX, MqttBridge
from zse.mqtt.core import MAX_COMMAND_NAME, Publication, node_id
from zse.store import Batch

#: The longest topic name MQTT 3.1.1 allows (section 1.5.3: a UTF-8 string of at most
#: 65,535 bytes), which Mosquitto delivers.
LONGEST_TOPIC = 65_535


def _message(cid: str, display: str, message_id: int) -> dict[str, object]:
    text = f"message {message_id}"
    return {
        "correlation_id": cid,
        "device": display,
        "message": {"message_id": message_id, "text": text},
    }


async def test_a_retained_command_is_not_carried_out_again_at_each_connection(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A command published with the retain flag stays on the broker, which sends it again
    (retain flag set) to every new subscription: each start and reconnection of the bridge
    (MQTT 3.1.1 sections 3.3.1.3, 3.8.4). It was carried out again once its correlation id
    was forgotten (``executed_limit`` commands later), and answered again as a duplicate
    each time before that. Only a command sent live is carried out: the retained copy is
    refused with a warning naming its topic."""
    request = "zse/bridge/request/display_message"
    async with running(broker, tmp_path, executed_limit=1) as (sim, bridge, sub):
        (display,) = sim.displays
        answers = "zse/bridge/response/display_message"
        assert sub._client is not None
        body = json.dumps(_message("kept-1", display, 1))
        await real_wait(sub._client.publish(request, body, qos=1, retain=True))
        await sub.until(lambda: len(sub.on(answers)) == 1)
        await sub.publish(request, _message("live-2", display, 2))  # kept-1 forgotten
        await sub.until(lambda: len(sub.on(answers)) == 2)
        # the answers' own acknowledgements in: none is left in the outbox to be published
        # again at the next start (the outbox is at least once: a stop before the broker's
        # PUBACK of live-2's answer sent it twice, a race under load, not the rule tested)
        await real_wait(bridge.drained.wait())
        await bridge.stop()
        again = MqttBridge(sim.esi, settings(broker, executed_limit=1), store=bridge.store)
        await again.start()
        try:
            await real_wait(again.connected.wait())
            await sub.publish(request, _message("live-3", display, 3))
            # commands are handled in the order received: the retained copy came first
            await sub.until(lambda: any(a["correlation_id"] == "live-3" for a in sub.on(answers)))
        finally:
            await again.stop()
        sent = sub.on(f"zse/{node_id(bridge.meter)}/message")
    assert [s["message_id"] for s in sent] == [1, 2, 3]  # was [1, 2, 1, 3]: sent again
    assert [a["correlation_id"] for a in sub.on(answers)] == ["kept-1", "live-2", "live-3"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("retained" in text and request in text for text in warned), warned


async def test_a_retained_command_sent_while_the_bridge_is_away_is_carried_out_once(
    broker: Broker, tmp_path: Path
) -> None:
    """Published with retain while the bridge is away, a command reaches its persistent
    session twice at the next connection: queued without the retain flag, then as the
    retained message of the new subscription. The first is carried out, the second dropped:
    nothing sent to the session is lost by the rule above."""
    request = "zse/bridge/request/display_message"
    async with running(broker, tmp_path, reading_interval=0) as (sim, bridge, sub):
        (display,) = sim.displays
        await bridge.stop()
        assert sub._client is not None
        body = json.dumps(_message("away-1", display, 1))
        await real_wait(sub._client.publish(request, body, qos=1, retain=True))
        again = MqttBridge(sim.esi, settings(broker), store=bridge.store)
        await again.start()
        try:
            await real_wait(again.connected.wait())
            await sub.publish(request, _message("live-2", display, 2))
            answers = "zse/bridge/response/display_message"
            await sub.until(lambda: any(a["correlation_id"] == "live-2" for a in sub.on(answers)))
        finally:
            await again.stop()
        sent = sub.on(f"zse/{node_id(bridge.meter)}/message")
    assert [(a["correlation_id"], a["status"]) for a in sub.on(answers)] == [
        ("away-1", "ok"),
        ("live-2", "ok"),
    ]
    assert [s["message_id"] for s in sent] == [1, 2]


async def test_a_request_topic_as_long_as_mqtt_allows_does_not_stop_the_answers(
    broker: Broker, tmp_path: Path
) -> None:
    """An unknown command is answered on ``<base>/bridge/response/<its name>``: one level
    longer than its request topic by a byte. A request topic of the 65,535 bytes MQTT allows
    made an answer topic no client may publish (paho refuses it), at the outbox's head: the
    connection ended on it, again at each reconnection, and nothing was ever published
    again (a journaled outbox: not even after a restart). The answer's topic now takes the
    name's first :data:`MAX_COMMAND_NAME` characters."""
    async with running(broker, tmp_path, reading_interval=0) as (sim, _bridge, sub):
        (display,) = sim.displays
        prefix = "zse/bridge/request/"
        name = "x" * (LONGEST_TOPIC - len(prefix))
        await sub.publish(prefix + name, {"correlation_id": "long-1"})
        await sub.publish(f"{prefix}display_message", _message("after-2", display, 2))
        (answer,) = await sub.until(lambda: sub.on("zse/bridge/response/display_message"))
        (refusal,) = sub.on(f"zse/bridge/response/{name[:MAX_COMMAND_NAME]}")
    assert answer["correlation_id"] == "after-2"
    assert answer["status"] == "ok"
    assert refusal["error"]["field"] == "command"
    assert refusal["correlation_id"] == "long-1"


async def test_an_outbox_entry_no_broker_takes_is_quarantined_not_published_forever(
    broker: Broker, tmp_path: Path
) -> None:
    """An outbox entry whose topic no client may publish (longer than 65,535 bytes, or with
    a wildcard: MQTT 3.1.1 sections 1.5.3 and 4.7.1; one journaled by an earlier version's
    answer to such an unknown command) is quarantined by the store as it loads: before, it
    stayed at the head of the outbox and ended every connection, and nothing after it went
    out."""
    async with running(broker, tmp_path, reading_interval=0) as (sim, bridge, sub):
        await bridge.stop()
        store = bridge.store
        bad = [
            Publication("zse/bridge/response/" + "x" * LONGEST_TOPIC, {"status": "error"}),
            Publication("zse/bridge/response/a+b", {"status": "error"}),
            Publication("zse/bridge/response/#", {"status": "error"}),
        ]
        batch = Batch()
        for publication in [*bad, Publication("zse/after", {"n": 1})]:
            batch.append(OUTBOX, "publish", publication.to_record())
        await store.commit(batch)
        again = MqttBridge(sim.esi, settings(broker), store=store)
        await again.start()
        try:
            assert [p.topic for _, p in again.outbox.first(10)] == ["zse/after"]
            assert await sub.until(lambda: sub.on("zse/after")) == [{"n": 1}]
        finally:
            await again.stop()
        assert len(await store.quarantined(OUTBOX)) == len(bad)


async def test_no_key_install_code_or_password_reaches_the_broker_or_the_log(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A device provisioned by MQTT (its install code in the request only), a send to it
    before it is on the network, and its de-provisioning: no payload the bridge publishes
    (answers, events, registry states, discovery) and no log line shows the install code,
    the link key it gives, the network key or the broker password, in any spelling of 8
    hex digits in a row (:func:`~tests.security.test_security_secrets.assert_hidden`); nor
    does the settings' repr show the password."""
    caplog.set_level(logging.DEBUG)
    password = "s3cret-Pa55word-for-the-broker"
    code = InstallCode.from_data(bytes.fromhex("5ec12e7000112233445566778899aabb"))
    mac = "00:0d:6f:00:0a:00:00:09"
    async with running(broker, tmp_path, reading_interval=0) as (sim, _bridge, sub):
        settings_repr = repr(settings(broker, username="u", password=password))
        prefix = "zse/bridge/request/"
        provision = {"correlation_id": "p-1", "mac": mac, "install_code": code.grouped()}
        await sub.publish(f"{prefix}provision", provision)
        await sub.publish(f"{prefix}display_message", _message("m-1", mac, 1))
        await sub.publish(f"{prefix}deprovision", {"correlation_id": "d-1", "mac": mac})
        await sub.until(lambda: sub.on("zse/bridge/response/deprovision"))
        network_key = bytes(sim.esi.app.state.network_info.network_key.key)
    (provisioned,) = sub.on("zse/bridge/response/provision")
    assert provisioned["status"] == "ok", provisioned
    (sent,) = sub.on("zse/bridge/response/display_message")
    # not on the network yet: skipped, said so (SE 5.4.8: not METER_READY)
    assert [o["outcome"] for o in sent["result"]["outcomes"]] == ["skipped"], sent
    published = [
        f"{topic} {json.dumps(value)}"
        for topic, value, _ in sub.received
        if not topic.startswith(prefix)  # the headend's own request carries the code
    ]
    # zse's own log (zigpy's DEBUG "Restoring backup" line prints the network key: not
    # zse's to change)
    logged = [r.getMessage() for r in caplog.records if r.name.split(".")[0] == "zse"]
    assert any("MQTT" in text for text in logged)
    for secret in (bytes(code), code.link_key, network_key):
        for text in [*published, *logged]:
            assert_hidden(secret, text)
    assert password not in settings_repr
    assert not [text for text in [*published, *logged] if password in text]
