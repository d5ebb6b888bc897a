"""The DRLC client's optional random delay before each Report Event Status: every report leaves
within ``report_delay`` seconds of its transition, drawn from the injected RNG, in order."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.drlc import LoadControlEvent, Status
from zse.drlc.service import REPORT_DELAY_MAX, DrlcClient
from zse.drlc.wire import Drlc
from zse.sim import VirtualClockLoop
from zse.zcl.codec import encode_command
from zse.zcl.endpoint import ZclMessage

START = 800_000_000
ESI_NWK = 0x0000


class RecordingEndpoint:
    """A ZclPort that records when each frame is sent (virtual loop time)."""

    endpoint_id = 1

    def __init__(self) -> None:
        self.handlers: list[Any] = []
        self.sent: list[tuple[float, int, bytes]] = []

    def set_attribute(self, *args: Any) -> None:
        pass

    def set_writable(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_undivided_commit(self, *args: Any) -> None:
        pass

    def add_handler(self, cluster_id: int, handler: Any) -> Any:
        self.handlers.append(handler)
        return lambda: self.handlers.remove(handler)

    async def send(self, dst: int, dst_ep: int, cluster_id: int, command_id: int, payload=b"", **_):
        self.sent.append((asyncio.get_running_loop().time(), command_id, bytes(payload)))
        return 0


def event_frame(issuer_event_id: int, minutes: int) -> ZclMessage:
    """A Load Control Event starting now, without randomization, from the ESI."""
    event = LoadControlEvent(
        issuer_event_id=issuer_event_id,
        device_class=0x0080,
        start_time=0,
        duration_in_minutes=minutes,
        criticality_level=4,
        event_control=0,
    )
    schema = Drlc.ClientCommandDefs.load_control_event.schema
    return ZclMessage(
        src_nwk=ESI_NWK,
        src_ieee=None,
        src_ep=9,
        dst_ep=1,
        cluster_id=0x0701,
        profile_id=0x0109,
        frame_control=0x19,  # cluster command, server to client, no default response
        manufacturer=None,
        tsn=issuer_event_id & 0xFF,
        command_id=0x00,
        payload=encode_command(schema(**event.to_fields())),
        aps_encrypted=True,
        group=None,
        broadcast=False,
        timestamp=0.0,
    )


def client_of(endpoint: RecordingEndpoint, clock: Any, seed: int, delay: float) -> DrlcClient:
    """A DRLC client of device class 0x0080 without randomization, for the ESI at endpoint 9."""
    return DrlcClient(
        endpoint,  # type: ignore[arg-type]
        server_ep=9,
        device_class=0x0080,
        start_randomization_minutes=0,
        duration_randomization_minutes=0,
        clock=clock,
        rng=random.Random(seed),
        report_delay=delay,
    )


def run(seed: int, delay: float, gaps: list[int]) -> tuple[list[float], list[float], list[int]]:
    """Events of one minute each, received ``gaps`` seconds apart; returns when each report
    was queued (its transition), when it was sent, and its status."""
    loop = VirtualClockLoop()

    async def main() -> tuple[list[float], list[float], list[int]]:
        endpoint = RecordingEndpoint()
        client = client_of(endpoint, lambda: START + int(loop.time()), seed, delay)
        await client.start(get_scheduled_events=False)
        queued: list[float] = []
        for number, gap in enumerate(gaps, 1):
            await asyncio.sleep(gap)
            queued += [loop.time(), loop.time()]  # Received and Started at once
            await endpoint.handlers[0](event_frame(number, 1))
            queued.append(loop.time() + 60)  # Completed a minute later
        await asyncio.sleep(120)
        await client.stop()
        reports = [(at, payload) for at, command, payload in endpoint.sent if command == 0x00]
        return [at for at, _ in reports], queued, [payload[4] for _, payload in reports]

    try:
        sent, queued, status = loop.run_until_complete(main())
    finally:
        loop.close()
    return sorted(queued), sent, status


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    delay=st.floats(0.0, REPORT_DELAY_MAX),
    gaps=st.lists(st.integers(61, 300), min_size=1, max_size=3),
)
def test_each_report_leaves_within_the_delay_in_order_with_draws_from_the_rng(seed, delay, gaps):
    queued, sent, statuses = run(seed, delay, gaps)
    assert statuses == [Status.RECEIVED, Status.STARTED, Status.COMPLETED] * len(gaps)
    assert sent == sorted(sent)
    for at, due in zip(sent, queued, strict=True):
        assert due <= at <= due + delay + 1e-9
    # The delays are the RNG's draws, one per report, a report never overtaking the last.
    rng = random.Random(seed)
    expected: list[float] = []
    for due in queued:
        draw = due + rng.uniform(0, delay) if delay else due
        expected.append(max(draw, expected[-1]) if expected else draw)
    assert sent == pytest.approx(expected, abs=1e-9)


def test_without_a_delay_reports_leave_at_their_transition():
    queued, sent, _ = run(1, 0.0, [61, 61])
    assert sent == queued


def test_a_five_second_delay_spreads_reports():
    queued, sent, _ = run(7, REPORT_DELAY_MAX, [61])
    assert all(at > due for at, due in zip(sent, queued, strict=True))
