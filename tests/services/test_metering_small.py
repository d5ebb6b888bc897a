"""Small Metering conformance fixes (SE D.3): a Request Fast Poll Mode of 0 minutes, a
FastPollUpdatePeriod of 0, a Request Mirror not sent unicast, and MaxNumberOfPeriodsDelivered
against what one frame holds.

Second sources, read for facts only:

- Silicon Labs' simple-metering-server plugin (``simple-metering-server.c``,
  ``emberAfSimpleMeteringClusterRequestFastPollModeCallback``) clamps the duration to its
  maximum and sets the end time to now + duration x 60: a request of 0 minutes is answered
  with an end time of now, which is no fast poll at all; a request while fast poll is in force
  gets the end time in force.
- Silicon Labs' gas-proxy-function / meter-mirror plugins allocate a mirror for the EUI-64 of
  the Request Mirror's sender and answer it alone; zigpy (``zigpy/zcl/clusters/smartenergy.py``)
  and zigbee-herdsman only declare the commands. SE 5.4.6 requires the Metering commands
  APS-encrypted with the sender's link key, which no group or broadcast frame can be.
- D.3.2.2.6 (quoted in Espressif's ``esp_zigbee_zcl_metering.h``): MaxNumberOfPeriodsDelivered
  is "the maximum number of intervals the device is capable of returning in one Get Profile
  Response command", required to fit the 128-octet default fragmentation ASDU. zse does no APS
  fragmentation (``zse/se/frames.py``): one APS-encrypted unicast frame holds 70 octets of ZCL
  payload, 7 of fixed fields and 21 intervals of 3. A request for more than the meter returns is
  answered with that many and status 0x04 "More periods requested than can be returned"
  (D.3.2.3.1.1.2; Microchip's SE stack sets the same status); ZBOSS defaults the attribute to
  24, fine for a stack that fragments.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools

import pytest

from tests.metering.test_meter_protocol import T0, fast_poll, get_profile, meter
from tests.metering.test_metering_mirror import GAS, REMOVE_MIRROR, REQUEST_MIRROR, command
from tests.services.test_metering_server import START, Load, han, request_fast_poll
from tests.services.test_zcl_review import Bench
from zse.metering.core import MAX_PERIODS_DELIVERED, MeterCore, Readings
from zse.metering.mirror import MirrorAdded, MirrorPool, MirrorProtocol
from zse.metering.protocol import FastPollGranted, MeterServerProtocol
from zse.metering.service import MeteringServer
from zse.metering.wire import Metering
from zse.se.frames import max_zcl_payload
from zse.se.ids import MeteringAttribute as A
from zse.se.types import GetProfileStatus, IntervalChannel
from zse.zcl.codec import decode_command
from zse.zcl.delivery import Destination

NOW = 800_000_000


def fast_poll_answer(p: MeterServerProtocol, period: int, minutes: int, now: int):
    """(Applied Update Period, Fast Poll Mode Endtime, events) of the meter's answer."""
    step = p.handle(fast_poll(period, minutes), now)
    (send,) = step.sends
    answer, _ = decode_command(Metering, send.command_id, send.payload, from_server=True)
    return int(answer.applied_update_period), int(answer.fast_poll_mode_end_time), step.events


# -- Request Fast Poll Mode of 0 minutes (D.3.3.3.1.4, D.3.2.3.1.4) --------------------------


def test_a_zero_minute_request_grants_no_fast_poll() -> None:
    """Duration 0 asks for nothing: answered with an end time of now (fast poll ends at once,
    as Silicon Labs' plugin answers it), no FastPollGranted, the update period unchanged.
    Before, it was "granted" (an event with ``new``), and the service polled sooner."""
    p = meter()
    period, end, events = fast_poll_answer(p, 10, 0, T0)
    assert (period, end, events) == (10, T0, ())
    assert p.fast_poll is None
    assert p.update_period(T0 + 1) == 30  # DefaultUpdatePeriod


def test_a_zero_minute_request_during_fast_poll_changes_nothing() -> None:
    """A 0-minute request while fast poll is in force answers the fast poll in force, and
    does not shorten its period: before, asking 6 s for 0 minutes shortened 60 s to 6 s."""
    p = meter()
    assert fast_poll_answer(p, 60, 15, T0)[:2] == (60, T0 + 900)
    assert fast_poll_answer(p, 6, 0, T0 + 10) == (60, T0 + 900, ())
    assert p.update_period(T0 + 20) == 60


async def test_a_zero_minute_request_does_not_poll_the_source_sooner() -> None:
    """Over the air to MeteringServer: the reading source keeps its DefaultUpdatePeriod (30 s)
    after a 0-minute request, and no FastPollGranted is told. Before, the service took the
    "grant" as new and moved the next poll to now + 5 s."""
    load = Load()
    server, endpoint, clock = await han(44, source=load, fast_poll_update_period=5)
    granted: list[FastPollGranted] = []
    server.on_event(granted.append)  # type: ignore[arg-type]
    await server.start()
    await asyncio.sleep(7)
    answer = await request_fast_poll(endpoint, 2, 0)
    asked_at = clock()
    assert answer.fast_poll_mode_end_time == asked_at
    await asyncio.sleep(120)
    polls = [when + START for when in load.asked]
    assert {b - a for a, b in itertools.pairwise(polls)} == {30}
    assert [g for g in granted if isinstance(g, FastPollGranted)] == []
    await server.stop()


# -- FastPollUpdatePeriod of 0 (D.3.2.2.1) ---------------------------------------------------


def test_a_fast_poll_update_period_of_0_is_refused() -> None:
    """0 s is not a period the meter can keep (it refreshes at most once a second, and an
    Applied Update Period of 0 would promise more): the meter refuses it when built, 1 s is
    the least. Before, 0 was taken and a request for 0 s was answered "0 s"."""
    with pytest.raises(ValueError, match="0x000B = 0 is outside 1-255"):
        MeterCore[Destination](formatting={A.FAST_POLL_UPDATE_PERIOD: 0}, now=T0)
    with pytest.raises(ValueError, match="outside 1-255"):
        MeteringServer(Bench(), fast_poll_update_period=0, clock=lambda: T0)
    core = MeterCore[Destination](formatting={A.FAST_POLL_UPDATE_PERIOD: 1}, now=T0)
    period, end, _ = fast_poll_answer(MeterServerProtocol(core), 0, 1, T0)
    assert (period, end) == (1, T0 + 60)


# -- Request Mirror not unicast (D.3.2.3.1.2, SE 5.4.6) --------------------------------------


@pytest.mark.parametrize("where", [{"broadcast": True}, {"group": 0x0E00}])
def test_a_request_mirror_sent_to_many_creates_no_mirror(where: dict[str, object]) -> None:
    """A Request Mirror broadcast or sent to a group is ignored: no mirror is allocated, no
    answer. Before, each such frame took a mirror endpoint from the pool."""
    core = MirrorProtocol(MirrorPool([10, 11]))
    step = core.receive(dataclasses.replace(command(REQUEST_MIRROR), **where), None, NOW)
    assert (step.sends, step.events, step.status) == ((), (), None)
    assert core.pool.free == 2
    assert core.pool.endpoint_of(GAS) is None
    # the same request unicast gets its mirror
    step = core.receive(command(REQUEST_MIRROR), None, NOW)
    assert step.events == (MirrorAdded(device=GAS, endpoint=10, new=True),)


@pytest.mark.parametrize("where", [{"broadcast": True}, {"group": 0x0E00}])
def test_a_remove_mirror_sent_to_many_frees_nothing(where: dict[str, object]) -> None:
    """Remove Mirror is the same unicast dialog: sent to many, it frees no mirror."""
    core = MirrorProtocol(MirrorPool([10]))
    core.receive(command(REQUEST_MIRROR), None, NOW)
    step = core.receive(dataclasses.replace(command(REMOVE_MIRROR), **where), None, NOW)
    assert (step.sends, step.events) == ((), ())
    assert core.pool.endpoint_of(GAS) == 10


# -- MaxNumberOfPeriodsDelivered and one frame (D.3.2.2.6, D.3.2.3.1.1) ----------------------


def test_max_number_of_periods_delivered_fits_one_frame() -> None:
    """21 intervals fit one APS-encrypted unicast frame (7 + 3 x 21 = 70 octets); 22 do not,
    and the meter refuses to be built with more. Before, up to 39 were taken (a 124-octet
    payload no radio sends unfragmented)."""
    assert MAX_PERIODS_DELIVERED == 21
    room = max_zcl_payload(group=False, aps_encrypted=True)
    assert room == 70
    assert 7 + 3 * MAX_PERIODS_DELIVERED <= room < 7 + 3 * (MAX_PERIODS_DELIVERED + 1)
    with pytest.raises(ValueError, match="MaxNumberOfPeriodsDelivered 22 is outside 1-21"):
        MeterCore[Destination](formatting={}, now=T0, max_periods=22)


def test_a_larger_request_gets_the_maximum_and_status_0x04_in_one_frame() -> None:
    """A Get Profile for 255 periods of a meter with the default MaxNumberOfPeriodsDelivered:
    MaxNumberOfPeriodsDelivered intervals, status 0x04, and a payload one frame holds. Before,
    the default (24) made a 79-octet payload, over the 70 an APS-encrypted frame carries."""
    p = meter()
    assert p.core.read(A.MAX_NUMBER_OF_PERIODS_DELIVERED) == MAX_PERIODS_DELIVERED
    for half_hour in range(1, 31):
        p.core.update(Readings(summation_delivered=half_hour * 10), T0 + half_hour * 1800 - 1)
    msg = get_profile(IntervalChannel.Consumption_Delivered, 0, 255)
    (send,) = p.handle(msg, T0 + 30 * 1800 + 1).sends
    answer, _ = decode_command(Metering, send.command_id, send.payload, from_server=True)
    assert answer.status == GetProfileStatus.More_Periods_Requested_Than_Can_Be_Returned
    assert answer.number_of_periods_delivered == len(answer.intervals) == MAX_PERIODS_DELIVERED
    assert len(send.payload) <= max_zcl_payload(group=False, aps_encrypted=True)
