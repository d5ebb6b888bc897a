"""One epoch for a history entry's ``time`` (found by the lead): it was Unix time for meters in
this process and ZigBee UTCTime for meters as MQTT gateways, so an API client had to know how
the headend was deployed to read it. Now it is Unix time both ways (the gateways' ZigBee
UTCTime turned into it as the API reads the device's record), ``time_iso`` the same instant,
and the OpenAPI document says one epoch."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from tests.headend.helpers import START
from zse.headend.control import Control
from zse.headend.directory import EsiMeters, GatewayMeters
from zse.headend.gateway import _lifecycle
from zse.headend.queue import open_queue
from zse.headend.sim import SimMeters
from zse.headend.store import DeviceOwner
from zse.headend.web import api_routes, openapi
from zse.provisioning.registry import HanRegistry

#: One instant, as ZigBee UTCTime and as Unix time (2000-01-01 is Unix 946684800).
INSTANT = START + 1234
UNIX = INSTANT + 946_684_800
DEVICE = "000D6F000A000001"
CODE = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"


async def test_both_directories_give_the_same_unix_time_for_the_same_instant(
    tmp_path: Path,
) -> None:
    owner = DeviceOwner(eui64=DEVICE, retailer="r", meter="meter-1", device_type="thermostat")
    # in process: the meter's registry records the registration at UNIX (wall-clock time)
    sims = SimMeters(1, tmp_path / "meters", clock=lambda: INSTANT)
    (meter,) = await sims.start()
    registry = await HanRegistry.open(tmp_path / "own.sqlite", clock=lambda: float(UNIX))
    queue = await open_queue(tmp_path / "queue.sqlite")
    try:
        await registry.register(DEVICE, CODE)
        here = EsiMeters([dataclasses.replace(meter, registry=registry)])
        (local,) = await here.history(owner)
        # over gateways: the headend's record of the registration at INSTANT (ZigBee UTCTime)
        control = await Control.open(queue)
        payload = {"mac": "00:0d:6f:00:0a:00:00:01", "install_code": CODE}
        await control.register(DEVICE, "meter-1", payload, time=INSTANT, now=0.0)
        there = GatewayMeters(["meter-1"], control, meter_time=lambda: INSTANT, clock=lambda: 0.0)
        (remote,) = await there.history(owner)
    finally:
        await queue.close()
        await registry.close()
        await sims.close()
    assert local["time"] == remote["time"] == UNIX  # was: UNIX in process, INSTANT over gateways
    for entry in (local, remote):
        at = dt.datetime.fromisoformat(entry["time_iso"])
        assert at.timestamp() == entry["time"] == UNIX
    assert (local["event"], remote["event"]) == ("register", "register")


def test_the_openapi_document_says_one_epoch() -> None:
    document = openapi(api_routes())
    said = document["components"]["schemas"]["HistoryEntry"]["properties"]["time"]
    assert "1970-01-01" in said["description"]
    assert "2000-01-01" not in said["description"]
    assert "ZigBee UTCTime (meters as MQTT gateways)" not in document["info"]["description"]


async def test_a_gateway_time_past_utctime_is_dropped_and_an_old_one_shown_without_a_date(
    tmp_path: Path,
) -> None:
    """A gateway's lifecycle event whose ``time`` does not fit ZigBee UTCTime's 32 bits is
    dropped (it was accepted up to 2**63 - 1, and every later read of the device's history
    then failed, HTTP 500); a row stored so before is shown with its Unix ``time`` and
    ``time_iso`` null, the rest of the history readable."""
    event = {
        "event": "LifecycleChanged",
        "device": DEVICE,
        "lifecycle_event": "joined",
        "from_state": "new",
        "to_state": "pending provisioning",
    }
    with pytest.raises(ValueError, match="not an integer in range"):
        _lifecycle("meter-1", {**event, "time": 2**32})
    last = _lifecycle("meter-1", {**event, "time": 2**32 - 1})
    assert last is not None
    assert last.time == 2**32 - 1
    queue = await open_queue(tmp_path / "queue.sqlite")
    try:
        control = await Control.open(queue)
        payload = {"mac": "00:0d:6f:00:0a:00:00:01", "install_code": CODE}
        await control.register(DEVICE, "meter-1", payload, time=INSTANT, now=0.0)
        stored = dataclasses.replace(last, time=2**40)  # as a gateway's event was stored before
        assert await control.record(stored, now=1.0)
        there = GatewayMeters(["meter-1"], control, meter_time=lambda: INSTANT, clock=lambda: 0.0)
        await there.refresh()
        owner = DeviceOwner(eui64=DEVICE, retailer="r", meter="meter-1", device_type="thermostat")
        history = await there.history(owner)
    finally:
        await queue.close()
    assert [e["time_iso"] is None for e in history] == [False, True]
    assert history[1]["time"] == 2**40 + 946_684_800
