"""Garbage to the DRLC protocol cores at the ZCL frame (SE D.2): any command id, payload,
direction and addressing decodes to a command or raises InvalidFrame, and a command that
decodes is acted on without an exception escaping (a Report Event Status, silence or a
status), on the ESI's side and on the device's."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.drlc.test_drlc_protocol import DEVICE, frame
from zse.drlc import DrlcClientCore
from zse.drlc.protocol import DrlcClientProtocol, DrlcServerProtocol
from zse.errors import InvalidFrame

PAYLOAD = st.binary(max_size=60) | st.integers(0, 60).flatmap(
    lambda size: st.binary(min_size=size, max_size=size)
)


@settings(max_examples=150, deadline=None)
@given(
    frame_control=st.sampled_from([0x01, 0x09, 0x11, 0x19]),
    command_id=st.integers(0, 4) | st.integers(0, 255),
    payload=PAYLOAD,
    ieee=st.sampled_from([DEVICE, None]),
    group=st.sampled_from([None, 5]),
    broadcast=st.booleans(),
    now=st.integers(0, 2**32 - 1),
)
def test_garbage_frames_decode_or_raise_invalid_frame_and_are_acted_on(
    frame_control, command_id, payload, ieee, group, broadcast, now
):
    msg = dataclasses.replace(
        frame(command_id, payload, ieee=ieee),
        frame_control=frame_control,
        group=group,
        broadcast=broadcast,
    )
    core = DrlcClientCore(device_class=0x0FFF, start_randomization_minutes=0, rng=random.Random(1))
    for protocol in (DrlcServerProtocol(), DrlcClientProtocol(core)):
        try:
            command = protocol.decode(msg)
        except InvalidFrame:
            continue
        protocol.receive(msg, command, now)
