"""A publication queued in the turn of the loop a connection is lost logs no traceback.

paho asks aiomqtt to watch its socket for writing when a packet is queued, and aiomqtt makes
that registration on the loop's next turn (``call_soon_threadsafe``: paho may ask from the
thread that connects). A connection closed in between (the broker's close read by the
reader callback after the publication in the same turn; here a client id taken over) left it
to register a closed descriptor:
``Exception in callback BaseSelectorEventLoop.add_writer(12, ...)`` ... ``OSError: [Errno 9]
Bad file descriptor`` from ``asyncio``, 62 of them at once when the 5,000-meter benchmark's
utility stopped; a descriptor reused meanwhile by another connection would have had its
writer replaced by the dead client's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket

import aiomqtt
import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import REAL_TIMEOUT, real_wait
from zse.mqtt.bridge import broker_time, mqtt_client
from zse.mqtt.core import parse_settings


async def test_a_publication_queued_as_the_broker_closes_registers_no_closed_socket(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    settings = parse_settings({"url": broker.url, "client_id": "taken-over"})
    client = mqtt_client(settings)
    with broker_time():
        await client.__aenter__()
    sock = client._client.socket()  # type: ignore[attr-defined]
    assert isinstance(sock, socket.socket)
    publishing: asyncio.Task[None] | None = None
    # the broker closes the connection when another takes its client id over (MQTT 3.1.1
    # section 3.1.4-2): connected here without a turn of the loop, whose reader callback
    # would read the close at once
    other = socket.create_connection(("127.0.0.1", broker.port), timeout=REAL_TIMEOUT)
    try:
        other.sendall(_connect("taken-over"))
        assert other.recv(4) == b"\x20\x02\x00\x00"  # CONNACK: accepted
        # the close has reached the socket (a bounded wait, not a pause) ...
        readable, _, _ = select.select([sock], [], [], REAL_TIMEOUT)
        assert readable, "the broker did not close the first connection"
        # ... and the publication goes ahead of its reading in the loop's next turn
        publishing = asyncio.create_task(client.publish("closed/socket", "x", qos=1))
        with pytest.raises(aiomqtt.MqttError):
            await real_wait(client.messages.__anext__())  # the connection lost
        for _ in range(3):  # the turns in which the registration would run
            await asyncio.sleep(0)
    finally:
        other.close()
        if publishing is not None:
            publishing.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await publishing
        with broker_time(), contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def _connect(client_id: str) -> bytes:
    """An MQTT 3.1.1 CONNECT of ``client_id``, clean session, keepalive 60 s (section 3.1)."""
    name = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(name).to_bytes(2, "big") + name
    return bytes([0x10, len(body)]) + body
