"""Set Event Configuration (SE 1.2 D.10.2.4.5) applied at its Start Date/Time, by the rule of
the utility's timed commands (zse.schedule): 0 or a past time now, a later one waits (bounded,
cancelled by 0xFFFFFFFF), applied once; with a store the waiting ones outlive a restart and
what fell due while stopped is applied once at start."""

from __future__ import annotations

import asyncio
from typing import Any

from zigpy.zcl import foundation

from tests.devmgmt.test_devmgmt_protocol import NOW, REQUEST_DESTINATION, frame
from tests.services.test_start_order import Port
from zse.devmgmt.core import EventConfigurations
from zse.devmgmt.protocol import (
    MAX_WAITING_CONFIGURATIONS,
    DeviceManagementClientProtocol,
    DeviceManagementServerProtocol,
    EventConfigurationChanged,
)
from zse.devmgmt.service import DeviceManagementClient, _step
from zse.devmgmt.wire import ConfigurationControl
from zse.se.ids import DEVICE_MANAGEMENT_CLUSTER
from zse.store import Store

S = foundation.Status
HOUR = 3600


def set_at(start: int, issuer: int, configuration: int = 0x13, ids=(0x0300,)):
    send = DeviceManagementServerProtocol.set_event_configuration(
        REQUEST_DESTINATION,
        issuer_event_id=issuer,
        configuration=configuration,
        control=ConfigurationControl.APPLY_BY_LIST,
        value=list(ids),
        start_time=start,
    )
    return frame(send.command_id, send.payload, from_server=True)


def test_a_configuration_for_later_waits_and_applies_once_at_its_time() -> None:
    client = DeviceManagementClientProtocol(EventConfigurations({0x0300: 0x00}))
    step = _step(client, set_at(NOW + HOUR, 1), NOW)
    assert (step.status, step.events) == (S.SUCCESS, ())
    assert client.configurations.get(0x0300) == 0x00  # not yet
    assert client.next_deadline() == NOW + HOUR
    assert client.handle_timeout(NOW + HOUR - 1).events == ()
    (event,) = client.handle_timeout(NOW + HOUR).events
    assert event == EventConfigurationChanged(
        issuer_event_id=1, event_ids=(0x0300,), configuration=0x13
    )
    assert client.configurations.get(0x0300) == 0x13
    assert client.handle_timeout(NOW + 2 * HOUR).events == ()  # once
    assert client.next_deadline() is None
    step = _step(client, set_at(NOW - 5, 2, configuration=0x03), NOW)  # a past time: now
    assert step.events[0].configuration == 0x03


def test_waiting_configurations_are_bounded_and_cancelled() -> None:
    client = DeviceManagementClientProtocol(EventConfigurations({0x0300: 0x00}))
    for issuer in range(MAX_WAITING_CONFIGURATIONS):
        assert _step(client, set_at(NOW + HOUR + issuer, issuer), NOW).status == S.SUCCESS
    assert _step(client, set_at(NOW + HOUR, 99), NOW).status == S.INSUFFICIENT_SPACE
    assert _step(client, set_at(0xFFFFFFFF, 0), NOW).status == S.SUCCESS  # cancels issue 0
    assert len(client.waiting) == MAX_WAITING_CONFIGURATIONS - 1
    assert _step(client, set_at(NOW + HOUR, 99), NOW).status == S.SUCCESS


class DmPort(Port):
    def set_attribute_source(self, *args: Any, **kwargs: Any) -> None:
        return None


async def test_a_waiting_configuration_outlives_a_restart_and_applies_once(tmp_path) -> None:
    path = tmp_path / "ihd.db"
    now = [NOW]
    table = {0x0300: 0x00}

    def client(store: Store) -> DeviceManagementClient:
        return DeviceManagementClient(
            DmPort(1),
            server_ep=1,
            clock=lambda: now[0],
            configurations=EventConfigurations(table),
            store=store,
        )

    async with await Store.open(path) as store:
        first = client(store)
        await first.start()
        status = await first.endpoint.handlers[DEVICE_MANAGEMENT_CLUSTER](set_at(NOW + HOUR, 7))
        assert status in (None, S.SUCCESS)
        await first.stop()
    now[0] = NOW + 2 * HOUR  # the time passed while stopped
    async with await Store.open(path) as store:
        again = client(store)
        applied = asyncio.Event()
        told: list[EventConfigurationChanged] = []

        def heard(event: EventConfigurationChanged) -> None:
            told.append(event)
            applied.set()

        again.on_event(heard)
        await again.start()
        assert [w.issuer_event_id for w in again.protocol.waiting] == [7]  # stored
        await asyncio.wait_for(applied.wait(), 10)  # at once: the timer's deadline passed
        assert [(e.issuer_event_id, e.configuration) for e in told] == [(7, 0x13)]
        assert again.protocol.configurations.get(0x0300) == 0x13
        await again.stop()
    async with await Store.open(path) as store:  # applied once: not waiting any more
        last = client(store)
        await last.start()
        assert last.protocol.waiting == []
        assert last.protocol.next_deadline() is None
        await last.stop()
