"""Inter-PAN reception goes on after one frame fails (audit of asyncio, finding 2).

A fragment is answered to its source PAN id, which the sender chooses; Z-Stack's transport
refuses PAN 0x0000 with a ``ValueError``, which the service did not catch (only ``OSError``):
one fragment from PAN 0 ended the receive pump, silently, and no frame was received after it.
The transport is :class:`~zse.radios.znp.ZnpTransport` over the fake Z-Stack of
``test_interpan_znp_transport``; the clock is the simulator's virtual-time loop."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from zigpy.types import EUI64

from tests.interpan.test_interpan_znp_transport import (
    HHT,
    LOCAL,
    FakeZStack,
    _connected,
    transport_for,
)
from zse.interpan.fragment import Reassembler, fragment_response, split
from zse.interpan.service import InterPanService
from zse.sim import run

PRICE = 0x0700
STRANGER = EUI64.convert("aa:00:00:00:00:00:00:01")
MESSAGE = bytes((0x01, 0x21, 0x00)) + bytes(range(256))  # Get Current Price, 3 fragments


def test_a_fragment_response_the_transport_refuses_does_not_stop_reception(
    serial_link: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    """A fragment from PAN 0x0000 is counted and logged as unanswered; the message of another
    sender that follows is answered and received whole."""

    async def main() -> None:
        radio = FakeZStack()
        api = await _connected(serial_link, radio)
        transport = transport_for(api)
        await transport.start(register=True)
        service = InterPanService(transport, ieee=LOCAL, pan_id=0x1A2B, reassembler=Reassembler())
        inbox = service.subscribe()
        fragments = split(MESSAGE, 91)
        radio.hear(src=STRANGER, src_pan=0x0000, cluster=PRICE, payload=fragments[0])
        for fragment in fragments:
            radio.hear(src=HHT, src_pan=0x3333, cluster=PRICE, payload=fragment)
        got = await inbox.receive(timeout=5)
        assert got is not None
        assert (got.payload, got.src_ieee) == (MESSAGE, HHT)
        assert service.unanswered == 1
        assert [(r["dst_pan"], r["payload"]) for r in radio.data_requests] == [
            (0x3333, fragment_response(i, ok=True)) for i in range(3)
        ]
        await service.close()
        api.close()

    with caplog.at_level(logging.WARNING, logger="zse.interpan.service"):
        run(main())
    assert any(
        "fragment response to aa:00:00:00:00:00:00:01 on PAN 0x0000 not sent" in r.getMessage()
        for r in caplog.records
    )


def test_a_frame_that_fails_is_logged_and_the_next_is_received(
    serial_link: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    """Any unexpected error of one frame (here the application's clock failing once) is
    logged; before, it ended the pump and with it all reception."""

    async def main() -> None:
        radio = FakeZStack()
        api = await _connected(serial_link, radio)
        transport = transport_for(api)
        await transport.start(register=True)
        calls = 0

        def clock() -> float:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("clock not set")
            return 0.0

        service = InterPanService(transport, ieee=LOCAL, pan_id=0x1A2B, clock=clock)
        inbox = service.subscribe()
        get_price = bytes([0x01, 0x21, 0x00, 0x00])
        radio.hear(src=HHT, src_pan=0x3333, cluster=PRICE, payload=get_price)
        radio.hear(src=HHT, src_pan=0x3333, cluster=PRICE, payload=get_price[:1] + b"\x22\0\0")
        got = await inbox.receive(timeout=5)
        assert got is not None
        assert got.payload[1] == 0x22
        await service.close()
        api.close()

    with caplog.at_level(logging.ERROR, logger="zse.interpan.service"):
        run(main())
    assert [r.getMessage() for r in caplog.records] == [f"inter-PAN frame from {HHT} not handled"]
