"""#14.2: the frames the meter's protocol core sends, as Wireshark dissects them: Configure
Reporting Response (ZCL 2.5.8), Report Attributes of CurrentSummationDelivered (uint48) and
InstantaneousDemand (int24) (2.5.11), Get Profile Response (D.3.2.3.1.1) and Request Fast Poll
Mode Response (D.3.2.3.1.4): the same values, no malformed packet."""

from __future__ import annotations

import pytest

from tests.clusters.se_frames import Dissected, air_frame, dissect
from tests.metering.test_meter_protocol import (
    INT24,
    T0,
    UINT48,
    configure,
    fast_poll,
    get_profile,
    meter,
    record,
)
from zse.metering.core import Readings
from zse.se.ids import METERING
from zse.se.types import IntervalChannel
from zse.zcl.frame import Step, encode_zcl_header

P = "zbee_zcl_se.met."
SUMMATION = 0x0102_0304_0506


def steps() -> list[Step]:
    p = meter()
    for minute in range(0, 61, 30):
        p.core.update(Readings(summation_delivered=minute * 7), T0 + minute * 60)
    p.core.update(Readings(summation_delivered=SUMMATION, instantaneous_demand=-1500), T0 + 3700)
    return [
        p.handle(
            configure(record(0, UINT48, 1, 60, 5), record(0x0400, INT24, 1, 60, 5)), T0 + 3700
        ),
        p.handle(
            configure(record(0, UINT48, 1, 60, 5), record(0x0400, UINT48, 1, 60, 5)), T0 + 3700
        ),
        p.handle_timeout(T0 + 3760),
        p.handle(get_profile(IntervalChannel.Consumption_Delivered, 0, 2), T0 + 3760),
        p.handle(fast_poll(2, 60), T0 + 3760),
    ]


@pytest.fixture(scope="module")
def packets(tmp_path_factory) -> list[Dissected]:
    frames = []
    for seq, step in enumerate(steps()):
        (send,) = step.sends
        frame_control = (0x01 if send.cluster_specific else 0x00) | 0x18  # server to client, DDR
        zcl = encode_zcl_header(frame_control, None, seq, send.command_id) + send.payload
        frames.append(air_frame(METERING, zcl, seq))
    found = dissect(frames, tmp_path_factory.mktemp("tshark"))
    for packet in found:
        assert not packet.malformed, [f for f in packet.fields if f[0].startswith("_ws")]
    return found


@pytest.mark.oracle
def test_configure_reporting_response(packets: list[Dissected]) -> None:
    ok, refused = packets[0], packets[1]
    assert ok.show("zbee_zcl.cmd.id") == ["0x07"]
    assert ok.show("zbee_zcl.attr.status") == ["0x00"]
    assert refused.show("zbee_zcl.attr.status") == ["0x8d"]  # INVALID_DATA_TYPE
    assert refused.show(P + "attr_id") == ["0x0400"]


@pytest.mark.oracle
def test_report_attributes_summation_uint48_and_demand_int24(packets: list[Dissected]) -> None:
    report = packets[2]
    assert report.show("zbee_zcl.cmd.id") == ["0x0a"]
    assert report.show(P + "attr_id") == ["0x0000", "0x0400"]
    assert report.show("zbee_zcl.attr.data.type") == ["0x25", "0x2a"]
    assert report.show("zbee_zcl.attr.uint48") == [str(SUMMATION)]
    assert report.show("zbee_zcl.attr.int24") == ["-1500"]


@pytest.mark.oracle
def test_get_profile_response(packets: list[Dissected]) -> None:
    answer = packets[3]
    assert answer.show(P + "cmd.srv_tx.id") == ["0x00"]
    assert answer.show(P + "get_profile_response.status") == ["0x00"]
    assert answer.show(P + "get_profile_response.profile_interval_period") == ["2"]
    assert answer.show(P + "get_profile_response.number_of_periods_delivered") == ["2"]
    assert answer.raw(P + "get_profile_response.end_time") == [
        (T0 + 3600).to_bytes(4, "little").hex()
    ]
    assert [int(v) for v in answer.show(P + "get_profile_response.intervals")] == [
        210,
        0,
    ]  # read in the interval it arrived in


@pytest.mark.oracle
def test_request_fast_poll_mode_response(packets: list[Dissected]) -> None:
    answer = packets[4]
    assert answer.show(P + "cmd.srv_tx.id") == ["0x03"]
    assert [
        int(v) for v in answer.show(P + "request_fast_poll_mode_response.applied_update_period")
    ] == [4]
    end = (T0 + 3760 + 900).to_bytes(4, "little").hex()
    assert answer.raw(P + "request_fast_poll_mode_response.fast_poll_mode_end_time") == [end]
