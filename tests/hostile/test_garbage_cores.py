"""Garbage to the Messaging (SE D.5), Events (SE 1.2 D.11), Device Management (SE 1.2 D.10)
and Metering server (SE D.3) cores at the ZCL frame, the way their shells feed them: each
cluster's commands, both directions, valid payloads mutated (cut short, grown, counts and
lengths changed, bytes flipped). A frame decodes to a command or raises InvalidFrame
(answered with its Default Response status), and a command that decodes is acted on
without an exception escaping, on the ESI's side and on the device's, timers included."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.drlc.test_drlc_protocol import frame
from tests.garbage import command_seeds, near_valid
from tests.metering.test_meter_protocol import T0
from tests.metering.test_supply_core import meter as supply_meter
from zse.devmgmt import service as devmgmt_service
from zse.devmgmt.protocol import DeviceManagementClientProtocol, DeviceManagementServerProtocol
from zse.devmgmt.wire import DeviceManagement
from zse.errors import InvalidFrame
from zse.events import service as events_service
from zse.events.protocol import EventsClientProtocol, EventsServerProtocol
from zse.events.wire import Events
from zse.messaging.protocol import MessagingClientProtocol, MessagingServerProtocol
from zse.messaging.wire import Messaging
from zse.metering.protocol import MeterServerProtocol
from zse.metering.snapshots import SnapshotCore
from zse.metering.wire import Metering
from zse.zcl.codec import decode_command, refusal
from zse.zcl.delivery import Destination
from zse.zcl.frame import Step, ZclMessage


def _messaging_step(protocol: Any, msg: ZclMessage, now: int) -> Step:
    """As the Messaging shells do (zse/messaging/service.py): each side decodes the other
    side's commands only."""
    mine = isinstance(protocol, MessagingClientProtocol)
    if msg.from_server != mine:
        return Step()
    try:
        command, _ = decode_command(Messaging, msg.command_id, msg.payload, from_server=mine)
    except InvalidFrame as exc:
        return Step(status=refusal(exc))
    return protocol.receive(msg, command, now)  # type: ignore[no-any-return]


#: cluster -> (the shell's step, the cores on both sides, made afresh per example)
CORES: dict[type[Any], tuple[Callable[[Any, ZclMessage, int], Step], Callable[[], list[Any]]]] = {
    Messaging: (
        _messaging_step,
        lambda: [MessagingServerProtocol(), MessagingClientProtocol(Destination.device(0))],
    ),
    Events: (events_service._step, lambda: [EventsServerProtocol(), EventsClientProtocol()]),
    DeviceManagement: (
        devmgmt_service._step,
        lambda: [DeviceManagementServerProtocol(), DeviceManagementClientProtocol()],
    ),
}
NOW = st.sampled_from([0, 1, 800_000_000, 0xFFFFFFFE]) | st.integers(0, 0xFFFFFFFF)


@st.composite
def frames(draw: st.DrawFn, cluster: type[Any]) -> ZclMessage:
    """A command of ``cluster`` with its payload near a valid one (or its id another's)."""
    from_server, command_id, payload = draw(st.sampled_from(command_seeds(cluster)))
    payload = draw(st.just(payload) | near_valid([payload]))
    command_id = draw(st.just(command_id) | st.integers(0, 0x0F))
    return dataclasses.replace(
        frame(command_id, payload),
        cluster_id=cluster.cluster_id,
        frame_control=0x01 | (0x08 if from_server else 0),
        group=draw(st.sampled_from([None, None, 5])),
    )


@pytest.mark.parametrize("cluster", CORES, ids=lambda cluster: cluster.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_garbage_frames_are_refused_or_acted_on(cluster: type[Any], data: st.DataObject) -> None:
    step, make = CORES[cluster]
    cores = make()
    for msg in data.draw(st.lists(frames(cluster), min_size=1, max_size=4), label="frames"):
        now = data.draw(NOW, label="now")
        for core in cores:
            result = step(core, msg, now)
            assert result.status is None or isinstance(result.status, foundation.Status)
            assert all(isinstance(send.payload, bytes) for send in result.sends)
            deadline = core.next_deadline()
            if deadline is not None:
                core.handle_timeout(deadline)


def _metering_server() -> MeterServerProtocol:
    """A meter with supply control (every sender authorised) and snapshots."""
    protocol = supply_meter()
    protocol.snapshots = SnapshotCore(protocol.core)
    return protocol


@settings(max_examples=80, deadline=None)
@given(
    msgs=st.lists(frames(Metering), min_size=1, max_size=4),
    later=st.sampled_from([0, 1, 3600, 30 * 86400]) | st.integers(0, 1 << 31),
)
def test_garbage_metering_frames_get_a_step_from_the_meter(
    msgs: list[ZclMessage], later: int
) -> None:
    """Every Metering command a meter takes (SE D.3.2.3: profiles, fast poll, snapshots,
    sampling, supply control), not only those the meter's own garbage test sends: a step
    (its status a ZCL status, if any), never an exception, timers included."""
    meter = _metering_server()
    for msg in msgs:
        step = meter.handle(msg, T0 + later)
        assert step.status is None or isinstance(step.status, foundation.Status)
        meter.handle_timeout(T0 + later + 3600)
