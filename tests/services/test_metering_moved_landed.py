"""The meter's reporting records of a device that rejoined at another NWK address (or was
de-provisioned) move in memory as they move in the store: not at all when the write fails
or is cancelled before its transaction, and, timed, when the write is cancelled during its
transaction, which the store carries out (``Batch.landed``)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from zigpy.zcl import foundation

from tests.events.test_events_store_failure import CommitWaits, FailingStore
from tests.services.test_start_order import frame
from tests.services.test_supply_told import (
    NAMESPACE,
    MeterPort,
    TransactionSlow,
    cancelled_in_its_transaction,
)
from zse.errors import StoreError
from zse.metering.core import Readings
from zse.metering.protocol import MeteringClientConfig, configure_reporting_payload
from zse.metering.service import MeteringServer
from zse.se.ids import METERING, MeteringAttribute
from zse.store import Batch, Store
from zse.zcl.frame import ZclMessage

START = 800_000_000
OLD, NEW = 0x1234, 0x5678
SUMMATION = MeteringAttribute.CURRENT_SUMM_DELIVERED
CONFIGURE = foundation.GeneralCommand.Configure_Reporting
IHD = "00:0d:6f:00:0e:00:00:01"


class SentTo(MeterPort):
    """The meter's port, with the NWK address of each frame sent."""

    def __init__(self, endpoint_id: int) -> None:
        super().__init__(endpoint_id)
        self.to: list[tuple[int, int]] = []

    async def send(self, dst: Any, dst_ep: int, cluster_id: int, command_id: int,
                   payload: bytes = b"", **kwargs: Any) -> int:  # fmt: skip
        self.to.append((int(dst), command_id))
        return await super().send(dst, dst_ep, cluster_id, command_id, payload, **kwargs)

    async def reply(self, msg: ZclMessage, command_id: int, payload: bytes = b"", **_: Any) -> None:
        return None


class MovesFail(FailingStore, CommitWaits, TransactionSlow):
    """A store whose next commit fails, waits until cancelled, or is slow once begun."""

    key = f"report/{NEW:04x}/01/{SUMMATION:04x}"


async def reporting_to(store: Store) -> tuple[MeteringServer, SentTo]:
    """A meter (its clock the loop's, from START) whose summation is reported to ``OLD``
    every minute, as a record stored before its start."""
    record = {"nwk": OLD, "endpoint": 1, "attribute": SUMMATION, "min": 1, "max": 60, "change": 0}
    key = f"report/{OLD:04x}/01/{SUMMATION:04x}"
    await store.commit(Batch().put(NAMESPACE, key, record))
    port = SentTo(9)
    loop = asyncio.get_running_loop()
    server = MeteringServer(port, clock=lambda: START + int(loop.time()), store=store)
    await server.start()
    await server.feed(Readings(summation_delivered=1000))
    return server, port


def addresses(server: MeteringServer) -> set[int]:
    return {destination.address for destination, _ in server.core.reporting.configurations()}


async def stored_addresses(store: Store) -> set[int]:
    return {
        int(key.split("/")[1], 16)
        for key in await store.load(NAMESPACE)
        if key.startswith("report/")
    }


async def cancelled_while_it_waits(store: MovesFail, call: Any) -> None:
    """``call``, cancelled while its write waits for its transaction (never begun)."""
    store.wait_next = True
    moving = asyncio.ensure_future(call)
    await asyncio.sleep(1)
    moving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await moving


async def failed(store: MovesFail, call: Any) -> None:
    store.fail_next = True
    with pytest.raises(StoreError):
        await call


@pytest.mark.parametrize("outcome", [failed, cancelled_while_it_waits])
@pytest.mark.parametrize("new", [NEW, None], ids=["readdress", "forget"])
async def test_records_not_stored_are_not_moved(tmp_path, outcome, new) -> None:
    """A write that fails, or is cancelled before its transaction began: the records stay
    with the old address, in memory as in the store. They were moved (or dropped) in memory
    first, so the meter reported to the new address (or to nobody) while a restart found
    the old one."""
    async with await MovesFail.open(tmp_path / "esi.db") as store:
        server, _ = await reporting_to(store)
        move = server.forget(OLD) if new is None else server.readdress(OLD, new)
        await outcome(store, move)
        assert (addresses(server), await stored_addresses(store)) == ({OLD}, {OLD})
        await server.stop()


async def test_records_moved_by_a_write_cancelled_during_its_transaction_are_moved(
    tmp_path,
) -> None:
    """Cancelled once its transaction began, which the store carries out: the records are
    at the new address in memory as in the store, and reported there at their time with no
    other input to the meter."""
    async with await MovesFail.open(tmp_path / "esi.db") as store:
        server, port = await reporting_to(store)
        await cancelled_in_its_transaction(store, server.readdress(OLD, NEW))
        assert (addresses(server), await stored_addresses(store)) == ({NEW}, {NEW})
        port.to.clear()
        await asyncio.sleep(120)
        assert {to for to, _ in port.to} == {NEW}
        await server.stop()


async def test_a_configure_reporting_whose_write_fails_configures_nothing(tmp_path) -> None:
    """The device's Configure Reporting is answered FAILURE (the handler raises) and the
    meter reports to it as before. The record was kept in memory: reported to as asked,
    while the store, and so a restart, did not have it."""
    async with await MovesFail.open(tmp_path / "esi.db") as store:
        server, port = await reporting_to(store)
        config = MeteringClientConfig(min_interval=5, max_interval=30)
        payload = configure_reporting_payload(config, (SUMMATION,))
        command = frame(METERING, CONFIGURE, payload, from_server=False, ieee=IHD)
        asked = replace(command, frame_control=0x00)  # a general command (ZCL 2.4.1.1.1)
        store.fail_next = True
        with pytest.raises(StoreError):
            await port.handlers[METERING](asked)
        held = server.core.reporting.configurations()
        assert [(d.address, c.max_interval) for d, c in held] == [(OLD, 60)]
        await server.stop()
