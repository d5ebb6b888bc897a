"""Hostile review of Metering (SE D.3): what a firmware team's reference tests and an attacker's
frames found, each test failing before its fix, and the hostile frames that already get the
spec's answer pinned so they keep getting it.

- A meter built with a Formatting / update period value outside its wire type (a uint8
  FastPollUpdatePeriod of 300) was taken, and every Request Fast Poll Mode then raised out of
  the frame core instead of being answered: refused at construction now.
- Get Profile (D.3.3.3.1.1) answered from the intervals closed by the last reading: an
  interval that ended after it (a meter fed by a real register, or asked between a boundary
  and the next poll) was missing, the answer's End Time older than the newest interval ended.
  Get Profile now closes them first, and the shell stores them before the answer goes out.
- A negative demand cut to zero digits was shown as ``-0.00 kW``.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from zigpy.zcl import foundation

from tests.clusters.se_frames import Dissected, air_frame, dissect
from tests.metering.test_meter_protocol import T0, fast_poll, frame, get_profile
from zse.metering.core import INTERVAL_NOT_CAPTURED, MeterCore, Readings
from zse.metering.formatting import Formatting, format_number
from zse.metering.protocol import FAST_POLL_MAX_MINUTES, MeterServerProtocol
from zse.metering.service import MeteringServer
from zse.metering.wire import Metering
from zse.se.ids import METERING, MeteringServerCommand
from zse.se.ids import MeteringAttribute as A
from zse.se.types import GetProfileStatus as S
from zse.se.types import IntervalChannel
from zse.store import Store
from zse.zcl.codec import decode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import ZclMessage, encode_zcl_header

FORMATTING = {A.UNIT_OF_MEASURE: 0, A.DIVISOR: 1000, A.FAST_POLL_UPDATE_PERIOD: 4}
DELIVERED = IntervalChannel.Consumption_Delivered
RSP = "zbee_zcl_se.met.get_profile_response."


def core(**formatting: int) -> MeterCore[Destination]:
    return MeterCore(formatting={**FORMATTING, **{A[k]: v for k, v in formatting.items()}}, now=T0)


def answer(msg: ZclMessage, p: MeterServerProtocol, now: int) -> Any:
    (send,) = p.handle(msg, now).sends
    return decode_command(Metering, send.command_id, send.payload, from_server=True)[0]


# -- values outside their wire type ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("FAST_POLL_UPDATE_PERIOD", 300),  # uint8
        ("DEFAULT_UPDATE_PERIOD", -1),
        ("MULTIPLIER", 1 << 24),  # uint24
        ("DIVISOR", -5),
        ("UNIT_OF_MEASURE", 0x100),  # enum8
        ("SUMMATION_FORMATTING", 0x1FF),  # map8
        ("METERING_DEVICE_TYPE", 256),
        ("CURRENT_SUMM_DELIVERED", 1 << 48),  # uint48
    ],
)
def test_a_value_outside_its_wire_type_is_refused_when_the_meter_is_built(
    attribute: str, value: int
) -> None:
    with pytest.raises(ValueError, match=f"0x{A[attribute]:04X} = {value} is outside"):
        core(**{attribute: value})


def test_the_widest_fast_poll_update_period_is_answered() -> None:
    """FastPollUpdatePeriod 255, the top of its uint8: the response carries it (a value above
    it used to be taken and made every Request Fast Poll Mode raise)."""
    p = MeterServerProtocol(core(FAST_POLL_UPDATE_PERIOD=255))
    response = answer(fast_poll(1, 5), p, T0)
    assert (response.applied_update_period, response.fast_poll_mode_end_time) == (255, T0 + 300)


# -- Get Profile answers the intervals ended by now ---------------------------------------------


def test_get_profile_includes_an_interval_ended_after_the_last_reading() -> None:
    m = core()
    m.update(Readings(summation_delivered=100), T0 + 60)
    asked = m.get_profile(DELIVERED, 0, 2, T0 + 1800 + 60)
    assert (asked.status, asked.end_time, asked.intervals) == (S.Success, T0 + 1800, (100,))
    # the same as a reading taken then would have closed it with
    m.update(Readings(summation_delivered=150), T0 + 1800 + 90)
    assert m.get_profile(DELIVERED, 0, 2, T0 + 1800 + 90) == asked


def test_get_profile_of_a_register_fed_rarely_counts_the_gap_not_captured() -> None:
    """Two intervals ended since the last reading: the first holds what was read in it, the
    second had no reading (not captured), newest first, End Time the newest one's."""
    p = MeterServerProtocol(core())
    p.core.update(Readings(summation_delivered=40), T0 + 100)
    response = answer(get_profile(DELIVERED, 0, 5), p, T0 + 3600 + 5)
    assert response.status == S.Success
    assert response.end_time == T0 + 3600
    assert list(response.intervals) == [INTERVAL_NOT_CAPTURED, 40]


class _Port:
    """An endpoint that records each reply with the profile the store held when it was sent."""

    endpoint_id = 9

    def __init__(self, store: Store, namespace: str) -> None:
        self.store, self.namespace = store, namespace
        self.replies: list[tuple[int, bytes, Any]] = []

    def add_handler(self, cluster_id: int, handler: Any, **_: Any) -> Any:
        return lambda: None

    def set_attribute_source(self, *_: Any) -> None:
        pass

    async def reply(self, request: ZclMessage, command_id: int, payload: bytes, **_: Any) -> None:
        stored = (await self.store.load(self.namespace)).get("profile")
        self.replies.append((command_id, payload, stored))


async def test_intervals_a_get_profile_closes_are_stored_before_the_answer(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "meter.db")
    try:
        now = [T0 + 5]
        port = _Port(store, "metering.server/9")
        server = MeteringServer(port, clock=lambda: now[0], store=store)  # type: ignore[arg-type]
        await server.feed(Readings(summation_delivered=1000))
        now[0] = T0 + 600
        await server.feed(Readings(summation_delivered=1070))
        now[0] = T0 + 1800 + 30  # no reading since the interval ended
        assert await server._on_message(get_profile(DELIVERED, 0, 1)) is None
        ((_, payload, stored),) = port.replies
        response = decode_command(Metering, 0x00, payload, from_server=True)[0]
        assert (response.end_time, list(response.intervals)) == (T0 + 1800, [70])
        assert stored is not None, "answered before the closed interval was stored"
        assert stored["channels"]["0"]["intervals"] == [[T0 + 1800, 70]]
    finally:
        await store.close()


# -- a negative value cut to zero -----------------------------------------------------------------


def test_a_negative_demand_cut_to_zero_is_shown_without_a_sign() -> None:
    formatting = Formatting(divisor=1000, demand_formatting=0x0A)  # 1 left, 2 right
    assert str(formatting.demand(-1)) == "0.00 kW"
    assert str(formatting.demand(-10)) == "-0.01 kW"
    assert format_number(Fraction(-1, 2), 0x00) == "0"
    assert format_number(Fraction(-3, 2), 0x10) == "-01"


# -- hostile frames that get the spec's answer ----------------------------------------------------


def profiled() -> MeterServerProtocol:
    p = MeterServerProtocol(core())
    for half_hour in range(1, 31):
        p.core.update(Readings(summation_delivered=half_hour * 10), T0 + half_hour * 1800 - 1)
    return p


NOW = T0 + 30 * 1800 + 1


@pytest.mark.parametrize(
    ("channel", "end_time", "periods", "status", "end", "count"),
    [
        (DELIVERED, 0, 255, S.More_Periods_Requested_Than_Can_Be_Returned, T0 + 30 * 1800, 21),
        (DELIVERED, 0, 0, S.Success, T0 + 30 * 1800, 0),
        (DELIVERED, 0xFFFFFFFF, 1, S.Invalid_End_Time, 0xFFFFFFFF, 0),
        (DELIVERED, 1, 1, S.No_Intervals_Available_For_The_Requested_Time, 1, 0),
        (IntervalChannel.Consumption_Received, 0, 1, S.Interval_Channel_Not_Supported, 0, 0),
        (0x7F, 0, 1, S.Undefined_Interval_Channel_Requested, 0, 0),
    ],
)
def test_hostile_get_profile_gets_its_status(
    channel: int, end_time: int, periods: int, status: S, end: int, count: int
) -> None:
    response = answer(get_profile(channel, end_time, periods), profiled(), NOW)
    assert (response.status, response.end_time) == (status, end)
    assert response.number_of_periods_delivered == len(response.intervals) == count


def test_get_profile_blocks_page_back_as_the_spec_says() -> None:
    """D.3.3.3.1.1: the next block is asked with the previous End Time - intervals x period."""
    p = profiled()
    first = answer(get_profile(DELIVERED, 0, 4), p, NOW)
    second = answer(get_profile(DELIVERED, first.end_time - 4 * 1800, 4), p, NOW)
    assert second.end_time == first.end_time - 4 * 1800
    assert list(first.intervals) == [10, 10, 10, 10] == list(second.intervals)


@pytest.mark.parametrize(
    ("command", "payload"),
    [
        (MeteringServerCommand.GET_PROFILE, b"\x00\x01\x02"),
        (MeteringServerCommand.GET_PROFILE, b""),
        (MeteringServerCommand.REQUEST_FAST_POLL_MODE, b"\x05"),
    ],
)
def test_truncated_commands_are_malformed_not_a_crash(command: int, payload: bytes) -> None:
    step = MeterServerProtocol(core()).handle(frame(command, payload), T0)
    assert (step.sends, step.status) == ((), foundation.Status.MALFORMED_COMMAND)


def test_a_flood_of_fast_poll_requests_never_extends_it() -> None:
    """D.3.2.3.1.4: a request during fast poll does not extend it; no client gets more than
    15 minutes out of one request."""
    p = MeterServerProtocol(core())
    ends = set()
    for second in range(0, FAST_POLL_MAX_MINUTES * 60, 7):
        sender = dataclasses.replace(fast_poll(1 + second % 9, 255), src_nwk=0x1000 + second)
        ends.add(answer(sender, p, T0 + second).fast_poll_mode_end_time)
    assert ends == {T0 + FAST_POLL_MAX_MINUTES * 60}
    assert p.update_period(T0 + FAST_POLL_MAX_MINUTES * 60) == 30  # DefaultUpdatePeriod again


# -- tshark reads the refusals as zse sent them ------------------------------------------------


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> list[Dissected]:
    p = profiled()
    p.core.update(Readings(), NOW + 3 * 1800)  # then three intervals without a reading
    asked = [get_profile(DELIVERED, 0, 255), get_profile(0x7F, 0, 1)]
    frames = []
    for seq, msg in enumerate(asked):
        (send,) = p.handle(msg, NOW + 3 * 1800).sends
        zcl = encode_zcl_header(0x19, None, seq, send.command_id) + send.payload
        frames.append(air_frame(METERING, zcl, seq))
    found = dissect(frames, tmp_path_factory.mktemp("tshark"))
    assert not any(packet.malformed for packet in found)
    return found


@pytest.mark.oracle
def test_tshark_reads_more_periods_than_can_be_returned(refusals: list[Dissected]) -> None:
    packet = refusals[0]
    assert packet.show(RSP + "status") == ["0x04"]
    assert packet.show(RSP + "number_of_periods_delivered") == ["21"]  # the default, the most
    intervals = [int(v) for v in packet.show(RSP + "intervals")]
    assert intervals == [INTERVAL_NOT_CAPTURED] * 3 + [10] * 18  # newest first, uint24 each


@pytest.mark.oracle
def test_tshark_reads_an_undefined_channel_refusal(refusals: list[Dissected]) -> None:
    packet = refusals[1]
    assert packet.show(RSP + "status") == ["0x01"]
    assert packet.show(RSP + "number_of_periods_delivered") == ["0"]
    assert packet.show(RSP + "intervals") == []
