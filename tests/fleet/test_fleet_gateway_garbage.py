"""The headend's gateway link on whatever a broker hands it: any payload on its response and
event topics is handled or dropped, never an exception out of the link's task (one ended the
link for good before: tests/fleet/test_fleet_routing.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fleet.helpers import PREFIX
from zse.headend.gateway import GatewayLink
from zse.headend.link import Lifecycle, Report
from zse.mqtt.core import parse_settings

MAC = "00:0d:6f:00:0a:00:00:01"
BASE = f"{PREFIX}/meter-1/000d6f000a000001"
#: The events' topics, the link's answers' (under the meter's base, ADR 0021's amendment) and
#: a batch of events'.
TOPICS = [
    f"{BASE}/drlc",
    f"{BASE}/message",
    f"{BASE}/lifecycle",
    f"{PREFIX}/meter-1/bridge/response/w1",
    f"{PREFIX}/meter-1/bridge/events",
]

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["ReportReceived", "MessageConfirmed", "LifecycleChanged", MAC])
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["event", "device", "report", "issuer_event_id", "event_status", "message",
             "message_id", "time", "to_state", "from_state", "lifecycle_event", "new",
             "command", "correlation_id", "responses"]
        ) | st.text(max_size=8),
        inner,
        max_size=6,
    ),
    max_leaves=12,
)  # fmt: skip


def _encoded(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()  # NaN and Infinity too, as a sender may


@pytest.fixture(scope="module")
def link() -> Iterator[tuple[GatewayLink, list[Any]]]:
    """A link with its listeners (never connected: ``_handle`` is what its task runs for
    each message), made on a loop of its own, closed after the module."""
    seen: list[Any] = []

    async def made() -> GatewayLink:
        settings = parse_settings({"url": "mqtt://127.0.0.1", "client_id": "w1"})
        link = GatewayLink(settings, prefix=PREFIX)
        link.on_report(seen.append)
        link.on_lifecycle(seen.append)
        return link

    loop = asyncio.new_event_loop()
    try:
        yield loop.run_until_complete(made()), seen
    finally:
        loop.close()


@settings(max_examples=400, deadline=None)
@given(
    topic=st.sampled_from(TOPICS),
    payload=_VALUES.map(_encoded) | st.binary(max_size=64) | st.just(b"[" * 5000),
)
def test_any_payload_is_handled_or_dropped(
    link: tuple[GatewayLink, list[Any]], topic: str, payload: bytes
) -> None:
    gateway, seen = link
    seen.clear()
    waits = gateway._handle(topic, payload)
    assert isinstance(waits, list)
    for item in seen:  # what reached the listeners is well formed
        assert isinstance(item, Report | Lifecycle)
        if isinstance(item, Report):
            assert 0 <= item.send <= 0xFFFFFFFF
            assert isinstance(item.device, str)
