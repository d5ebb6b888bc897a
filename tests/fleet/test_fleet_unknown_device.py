"""A lifecycle event on a device the headend has no record of (found by the docs walk: a
second headend sharing the broker and topic prefix, whose workers are in the same shared
subscription group ``zse-headend``, took this headend's events and dropped them without a
word, its devices stuck ``new``): nothing is recorded, and a warning names the meter and the
device and says another headend may share the broker and prefix, once per (meter, device),
its memory bounded. Both engines."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest

from tests.fleet.test_fleet_control import change
from zse.headend import queue as queue_module
from zse.headend.control import Control
from zse.headend.link import Lifecycle
from zse.headend.queue import open_queue
from zse.provisioning import LifecycleState as S


def provision(device: str, meter: str = "m1") -> Lifecycle:
    return replace(change(S.NEW, S.PENDING_PROVISIONING, 100, meter, "provision"), device=device)


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "zse.headend.control" and r.levelno == logging.WARNING
    ]


async def test_an_unknown_devices_event_is_said_once(
    place: Any, caplog: pytest.LogCaptureFixture
) -> None:
    queue = await open_queue(place("queue"))
    control = await Control.open(queue)
    caplog.set_level(logging.WARNING, logger="zse.headend.control")
    try:
        stranger = "00:0d:6f:00:00:00:00:09"
        assert not await control.record(provision(stranger), now=1.0)
        (warning,) = said(caplog)
        assert "meter 'm1'" in warning
        assert "000D6F0000000009" in warning
        assert "another headend shares the broker and topic prefix" in warning
        assert not await control.record(provision(stranger), now=2.0)
        assert len(said(caplog)) == 1  # once per (meter, device)
        assert not await control.record(provision(stranger, "m2"), now=3.0)
        assert "meter 'm2'" in said(caplog)[-1]
        assert await control.devices() == []  # nothing recorded
        # a device of this headend is recorded without a word
        await control.register("000D6F0000000001", "m1", {}, time=100, now=4.0)
        assert await control.record(provision("00:0d:6f:00:00:00:00:01"), now=5.0)
        assert len(said(caplog)) == 2
    finally:
        await queue.close()


async def test_the_memory_of_devices_said_is_bounded(
    place: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its bound the memory is emptied: a gateway's topics do not fill it; a device
    said before is said again then."""
    monkeypatch.setattr(queue_module, "_FOREIGN_SAID", 2)
    queue = await open_queue(place("queue"))
    control = await Control.open(queue)
    caplog.set_level(logging.WARNING, logger="zse.headend.control")
    try:
        for last in "123":
            assert not await control.record(provision(f"000D6F000000000{last}"), now=1.0)
        assert len(control._unknown) <= 2
        assert not await control.record(provision("000D6F0000000001"), now=2.0)
        assert len(said(caplog)) == 4  # forgotten: said again
    finally:
        await queue.close()


async def test_another_meters_device_is_said_once(
    place: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A meter's gateway reporting a lifecycle event on a device of another meter (a gateway
    misconfigured or taken over) moved nothing but said nothing either; the queue's reports
    already warned of the same."""
    queue = await open_queue(place("queue"))
    control = await Control.open(queue)
    caplog.set_level(logging.WARNING, logger="zse.headend.control")
    try:
        await control.register("000D6F0000000001", "m1", {}, time=100, now=1.0)
        assert not await control.record(provision("00:0d:6f:00:00:00:00:01", "m2"), now=2.0)
        (warning,) = said(caplog)
        assert "meter 'm2'" in warning
        assert "000D6F0000000001" in warning
        assert "a device of meter 'm1'" in warning
        assert not await control.record(provision("00:0d:6f:00:00:00:00:01", "m2"), now=3.0)
        assert len(said(caplog)) == 1  # once per (meter, device)
        (device,) = await control.devices()
        assert device.state is S.NEW  # nothing recorded
    finally:
        await queue.close()
