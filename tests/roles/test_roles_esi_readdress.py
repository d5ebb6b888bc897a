"""A device that rejoins at another NWK address (ZB 3.6.1.9) whose reporting records' move
does not end (a store write that fails): the ESI's address map changes only once the records
have moved (stored with them), and the move is made at the device's next address change or
at the ESI's next start (zse.roles.esi ``_addressed``, ``_load_addresses``). The map changed
first: it said the new address while the records stayed at the old one, reported to
whichever device took it, and nothing tried again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import zigpy.types as t

from tests.roles.han_builder import EUIS, Han, build, close, restarted
from tests.roles.test_roles_esi_meter import reporting_addresses, stored_addresses
from zse.errors import StoreError
from zse.metering.service import MeteringServer
from zse.se.ids import MeteringAttribute as A
from zse.store import Batch, Store

IHD = t.EUI64.convert(EUIS["ihd"])
METER = {"formatting": {A.DIVISOR: 1000}}


class MoveFails(Store):
    """A store whose next commit of reporting records (a ``report/`` key) fails (a full
    disk) when ``fail_move`` is set."""

    fail_move = False

    async def commit(self, batch: Batch) -> list[int]:
        if self.fail_move and any(op[2].startswith("report/") for op in batch._ops):
            self.fail_move = False
            raise StoreError("disk full")
        return await super().commit(batch)


async def moved_but_not_followed(tmp_path: Path) -> tuple[Han, MeteringServer, int, int]:
    """The display configured reporting on the ESI's meter, then announced a new address
    whose records' move failed: the HAN, the meter, the display's first and new address."""
    han = await build(tmp_path, store_class=MoveFails, meter=METER)
    await han.esi.provision(EUIS["ihd"])
    await han.add("ihd", metering=True).start()
    await asyncio.sleep(5)
    meter = han.esi.meter
    assert meter is not None
    first = int(han.app.get_device(ieee=IHD).nwk)
    assert reporting_addresses(meter) == {first}
    store = han.registry.store
    assert isinstance(store, MoveFails)
    store.fail_move = True
    moved = first ^ 0x0101
    han.app.handle_join(t.NWK(moved), IHD, t.NWK(0x0000))  # rejoined, new address
    await han.esi.settle()
    assert not store.fail_move  # the move failed
    assert reporting_addresses(meter) == await stored_addresses(meter) == {first}
    return han, meter, first, moved


async def test_a_move_that_failed_is_made_at_the_next_address_change(tmp_path) -> None:
    """The display moves again (zigpy emits no join for an announce at the address it has
    already): its records follow it from where they are."""
    han, meter, _, moved = await moved_but_not_followed(tmp_path)
    try:
        again = moved ^ 0x0202
        han.app.handle_join(t.NWK(again), IHD, t.NWK(0x0000))
        await han.esi.settle()
        assert reporting_addresses(meter) == await stored_addresses(meter) == {again}
    finally:
        await close(han)


async def test_a_move_that_failed_is_made_at_the_next_start(tmp_path) -> None:
    han, _, _, moved = await moved_but_not_followed(tmp_path)
    try:
        esi = await restarted(han, meter=METER)
        await esi.settle()
        assert esi.meter is not None
        assert reporting_addresses(esi.meter) == await stored_addresses(esi.meter) == {moved}
    finally:
        await close(han)
