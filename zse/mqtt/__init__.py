"""The MQTT bridge (issue #17): an ESI's meter data and Smart Energy events on an MQTT broker,
Home Assistant discovery, and commands back.

:mod:`zse.mqtt.core` is the sans-IO part (settings, topics, JSON payloads, discovery, the
command schema, the at-most-once record and the outbox's bound); :mod:`zse.mqtt.bridge` is its
asyncio shell on the optional ``aiomqtt`` client (``pip install "zigpy-se[mqtt]"``). Nothing here
is imported by ``import zse``. The topics and payloads are in docs/mqtt.md.
"""
