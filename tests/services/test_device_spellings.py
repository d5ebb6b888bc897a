"""The Messaging and DRLC servers take devices in any printed spelling or as zigpy EUI64s and
match them to the names they give devices (``00:0d:6f:...``): a device that confirmed or
reported is never listed as silent because it was asked about in another spelling."""

from __future__ import annotations

import pytest
import zigpy.types as t

from tests.drlc.test_drlc_client_core import MIN, T0, event
from tests.services.test_server_records import Port, report_frame
from zse.drlc import Status
from zse.drlc.service import DRLC, DrlcServer
from zse.errors import InvalidEui64
from zse.messaging import Confirmation, Message
from zse.messaging.service import MessagingServer

#: report_frame(1, ...) comes from this device.
REPORTER = "00:0d:6f:00:00:01:00:01"
SILENT = "00:0d:6f:00:00:01:00:02"
SPELLINGS = ["000D6F0000010001", "00-0D-6F-00-00-01-00-01", "0x000d6f0000010001"]


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_unconfirmed_matches_any_spelling(spelling) -> None:
    clock = iter(range(T0, T0 + 10**6)).__next__
    server = MessagingServer(Port(), clock=clock)
    await server.record(Message(message_id=7, text="hi", start_time=0))
    server.messages.confirm(REPORTER, Confirmation(message_id=7, confirmation_time=T0), T0)
    assert server.unconfirmed(7, [spelling, "000D6F0000010002"]) == [SILENT]
    assert server.unconfirmed(7, [t.EUI64.convert(REPORTER), t.EUI64.convert(SILENT)]) == [SILENT]


async def test_messaging_refuses_devices_that_are_not_eui64s() -> None:
    server = MessagingServer(Port(), clock=lambda: T0)
    with pytest.raises(InvalidEui64, match="not int"):
        server.unconfirmed(7, [0x000D6F0000010001])  # type: ignore[list-item]
    with pytest.raises(InvalidEui64, match="not a single str"):
        server.unconfirmed(7, REPORTER)
    with pytest.raises(InvalidEui64, match="not int"):
        await server.record(Message(message_id=8, text="x"), device=0x000D6F0000010001)  # type: ignore[arg-type]


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_never_answered_matches_any_spelling_of_the_expected(spelling) -> None:
    clock = iter(range(T0, T0 + 10**6)).__next__
    port = Port()
    server = DrlcServer(port, clock=clock)
    await server.start()
    await server.publish(event(1, T0 + MIN, 30), expected=[spelling, t.EUI64.convert(SILENT)])
    await port.handlers[DRLC](report_frame(1, Status.RECEIVED, T0 + 1))
    assert list(server.view(1)) == [REPORTER]
    assert server.never_answered(1) == [SILENT]


async def test_drlc_refuses_expected_devices_that_are_not_eui64s() -> None:
    server = DrlcServer(Port(), clock=lambda: T0)
    await server.start()
    with pytest.raises(InvalidEui64, match="not int"):
        await server.publish(event(1, T0 + MIN, 30), expected=[0x000D6F0000010001])  # type: ignore[list-item]
    assert server.core.events() == []
