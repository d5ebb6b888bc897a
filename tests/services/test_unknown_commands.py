"""ZCL 2.5.12: a cluster-specific command id the cluster does not define is answered
UNSUP_CLUSTER_COMMAND; MALFORMED_COMMAND is for a defined command whose payload is wrong.
Each SE service, both ways where zse serves both sides (the Messaging services have their
own tests: tests/services/test_messaging_catch_up.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from zigpy.zcl import foundation

from tests.services.test_start_order import Port, frame
from zse.drlc.service import DrlcClient, DrlcServer
from zse.metering.service import MeteringServer
from zse.price.service import PriceClient, PriceServer
from zse.se.ids import DRLC, METERING, PRICE, TUNNELING
from zse.tunneling.service import TunnelingServer

DEVICE = "00:0d:6f:00:0d:00:00:71"
UNDEFINED = 0x7E  # no SE cluster defines a command 0x7E either way


class MeterPort(Port):
    """A port that also takes computed attributes (the Metering server's)."""

    def set_attribute_source(self, *args: Any, **kwargs: Any) -> None:
        return None


async def _start(service: Any) -> None:
    started = service.start()
    if isinstance(started, Awaitable):
        await started


SERVICES: list[tuple[str, int, bool, Callable[[Port], Any]]] = [
    ("DRLC server", DRLC, False, DrlcServer),
    ("DRLC client", DRLC, True, lambda port: DrlcClient(port, server_ep=9, device_class=0x0FFF)),
    ("Price server", PRICE, False, PriceServer),
    ("Price client", PRICE, True, lambda port: PriceClient(port, server_ep=9)),
    ("Metering server", METERING, False, MeteringServer),
    ("Tunneling server", TUNNELING, False, TunnelingServer),
]


@pytest.mark.parametrize(
    ("cluster", "from_server", "make"),
    [service[1:] for service in SERVICES],
    ids=[service[0] for service in SERVICES],
)
async def test_an_undefined_command_is_unsup_cluster_command(
    cluster: int, from_server: bool, make: Callable[[Port], Any]
) -> None:
    port = MeterPort(9 if not from_server else 1)
    await _start(make(port))
    handler = port.handlers[cluster]
    undefined = frame(cluster, UNDEFINED, b"", from_server=from_server, ieee=DEVICE)
    assert await handler(undefined) == foundation.Status.UNSUP_CLUSTER_COMMAND
