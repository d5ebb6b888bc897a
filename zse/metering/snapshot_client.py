"""A display asking the meter for snapshots and samples (SE 1.2 Metering): the asyncio side of
the request builders and answer readers in :mod:`zse.metering.snapshots`.

:class:`~zse.metering.service.MeteringClient` offers these as methods. A Publish Snapshot
split over several commands is gathered: its first command answers the request, the others
come after it with the same TSN and are taken by a handler held on the endpoint for the
request's time. A Default Response NOT_FOUND (nothing matches) reads as None; another
refusal is :class:`SnapshotRefused`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from zigpy.zcl import foundation

from zse.errors import InvalidFrame, ZseError
from zse.metering.snapshot_types import ScheduleEntry
from zse.metering.snapshots import (
    ANY_CAUSE,
    PublishedSnapshot,
    SampledData,
    get_sampled_data_request,
    get_snapshot_request,
    published_snapshot,
    sampled_data,
    schedule_snapshot_request,
    start_sampling_request,
    take_snapshot_request,
)
from zse.metering.wire import Metering
from zse.se.ids import METERING, MeteringClientCommand
from zse.zcl.codec import decode_command
from zse.zcl.delivery import Destination
from zse.zcl.endpoint import ZclPort, request
from zse.zcl.frame import Send, ZclMessage

__all__ = [
    "SnapshotRefused",
    "get_sampled_data",
    "get_snapshot",
    "schedule_snapshot",
    "start_sampling",
    "take_snapshot",
]


class SnapshotRefused(ZseError):
    """The meter refused a snapshot or sampling command (a Default Response other than
    NOT_FOUND: it has no such command), or its answer did not read."""


def _not_found(reply: ZclMessage, name: str) -> bool:
    """True for a Default Response NOT_FOUND; :class:`SnapshotRefused` for another one."""
    if reply.is_cluster_command:
        return False
    status = reply.payload[1] if len(reply.payload) >= 2 else None
    if status == foundation.Status.NOT_FOUND:
        return True
    raise SnapshotRefused(f"the meter answered {name} with status {status}")


def _decode(reply: ZclMessage, name: str) -> Any:
    try:
        command, _ = decode_command(Metering, reply.command_id, reply.payload, from_server=True)
    except InvalidFrame as exc:
        raise SnapshotRefused(f"the meter's answer to {name}: {exc}") from None
    return command


async def _ask(endpoint: ZclPort, send: Send, name: str, timeout: float) -> Any | None:
    reply = await request(endpoint, send, timeout=timeout)
    if _not_found(reply, name):
        return None
    return _decode(reply, name)


async def take_snapshot(
    endpoint: ZclPort, meter: Destination, cause: int, *, timeout: float = 8.0
) -> int:
    """Take Snapshot; the new snapshot's id."""
    answer = await _ask(endpoint, take_snapshot_request(meter, cause), "Take Snapshot", timeout)
    if answer is None or int(answer.snapshot_confirmation):
        raise SnapshotRefused("the meter did not take the snapshot")
    return int(answer.snapshot_id)


async def schedule_snapshot(
    endpoint: ZclPort,
    meter: Destination,
    issuer_event_id: int,
    schedules: Sequence[ScheduleEntry],
    *,
    timeout: float = 8.0,
) -> dict[int, int]:
    """Schedule Snapshot; each schedule id's confirmation."""
    send = schedule_snapshot_request(meter, issuer_event_id, schedules)
    answer = await _ask(endpoint, send, "Schedule Snapshot", timeout)
    if answer is None:
        raise SnapshotRefused("the meter answered Schedule Snapshot NOT_FOUND")
    return dict(answer.answers)


async def get_snapshot(
    endpoint: ZclPort,
    meter: Destination,
    *,
    earliest: int = 0,
    latest: int = 0xFFFFFFFF,
    offset: int = 0,
    cause: int = ANY_CAUSE,
    timeout: float = 8.0,
) -> PublishedSnapshot | None:
    """Get Snapshot: the snapshot, every Publish Snapshot command of it joined; None when
    none matches (NOT_FOUND)."""
    later: list[Any] = []
    arrived = asyncio.Event()

    def take(msg: ZclMessage) -> None:
        if (
            msg.from_server
            and msg.command_id == MeteringClientCommand.PUBLISH_SNAPSHOT
            and msg.src_nwk == meter.address
            and msg.src_ep == meter.endpoint
        ):
            later.append(_decode(msg, "Get Snapshot"))
            arrived.set()

    remove = endpoint.add_handler(METERING, take)
    try:
        send = get_snapshot_request(
            meter, earliest=earliest, latest=latest, offset=offset, cause=cause
        )
        first = await _ask(endpoint, send, "Get Snapshot", timeout)
        if first is None:
            return None
        async with asyncio.timeout(timeout):
            while 1 + len(later) < int(first.total_number_of_commands):
                arrived.clear()
                await arrived.wait()
    finally:
        remove()
    mine = [c for c in later if int(c.snapshot_id) == int(first.snapshot_id)]
    try:
        return published_snapshot([first, *mine])
    except InvalidFrame as exc:
        raise SnapshotRefused(str(exc)) from None


async def start_sampling(
    endpoint: ZclPort,
    meter: Destination,
    issuer_event_id: int,
    *,
    sample_type: int,
    interval: int,
    count: int,
    start: int = 0,
    timeout: float = 8.0,
) -> int:
    """Start Sampling; the session's Sample ID (0xFFFF: refused)."""
    send = start_sampling_request(
        meter, issuer_event_id, sample_type=sample_type, interval=interval, count=count, start=start
    )
    answer = await _ask(endpoint, send, "Start Sampling", timeout)
    if answer is None:
        raise SnapshotRefused("the meter answered Start Sampling NOT_FOUND")
    return int(answer.sample_id)


async def get_sampled_data(
    endpoint: ZclPort,
    meter: Destination,
    sample_id: int,
    *,
    sample_type: int,
    earliest: int = 0,
    count: int = 19,
    timeout: float = 8.0,
) -> SampledData | None:
    """Get Sampled Data; None when the meter has no such samples (NOT_FOUND)."""
    send = get_sampled_data_request(
        meter, sample_id, earliest=earliest, sample_type=sample_type, count=count
    )
    answer = await _ask(endpoint, send, "Get Sampled Data", timeout)
    if answer is None:
        return None
    try:
        return sampled_data(answer)
    except InvalidFrame as exc:
        raise SnapshotRefused(str(exc)) from None
